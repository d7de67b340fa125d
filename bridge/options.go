package bridge

import (
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// The -o options of bridge mode, Docker's own bridge option names.
const (
	OptName            = "com.docker.network.bridge.name"
	OptICC             = "com.docker.network.bridge.enable_icc"
	OptMasquerade      = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBindingIPv4 = "com.docker.network.bridge.host_binding_ipv4"
)

// OptionNames lists bridge mode's -o options, beyond those of every mode.
var OptionNames = []string{OptName, OptICC, OptMasquerade, OptHostBindingIPv4}

// Options are a bridge network's -o options. The network's record stores
// them in its "config" object.
type Options struct {
	Bridge     string `json:"bridge"`
	ICC        bool   `json:"icc"`
	Masquerade bool   `json:"masquerade"`
	// HostBindingIPv4 is where -p publishes without an address; invalid
	// for every address of the host.
	HostBindingIPv4 netip.Addr `json:"host_binding_ipv4,omitzero"`
}

// SetOption applies one of OptionNames.
func (n *Network) SetOption(key, value string) error {
	var err error
	switch key {
	case OptName:
		if err := ifname.CheckNew(value); err != nil {
			return errdefs.Errorf(errdefs.Invalid, "invalid value for option %s: %v", key, err)
		}
		n.Options.Bridge = value
	case OptICC:
		n.Options.ICC, err = netmode.ParseBool(key, value)
	case OptMasquerade:
		n.Options.Masquerade, err = netmode.ParseBool(key, value)
	case OptHostBindingIPv4:
		ip, perr := netip.ParseAddr(value)
		if perr != nil || !ip.Is4() {
			return netmode.OptionError(key, value, "use an IPv4 address of this host, such as 0.0.0.0 or 192.0.2.10")
		}
		if !ip.IsUnspecified() {
			n.Options.HostBindingIPv4 = ip
		}
	default:
		return errdefs.Errorf(errdefs.Invalid, "option %s is not an option of bridge networks", key)
	}
	return err
}

// Check has nothing to check: each bridge option stands alone.
func (n *Network) Check(_, _ []netmode.IPAMData) error { return nil }
