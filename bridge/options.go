package bridge

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/firewall"
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
	// Added to Docker's bridge since 20.10 (see gateway.go).
	OptGatewayModeIPv4 = "com.docker.network.bridge.gateway_mode_ipv4"
	OptGatewayModeIPv6 = "com.docker.network.bridge.gateway_mode_ipv6"
	OptTrusted         = "com.docker.network.bridge.trusted_host_interfaces"
	OptInhibitIPv4     = "com.docker.network.bridge.inhibit_ipv4"
	OptHostIPv4        = "com.docker.network.host_ipv4"
	OptHostIPv6        = "com.docker.network.host_ipv6"
)

// OptionNames lists bridge mode's -o options, beyond those of every mode.
var OptionNames = []string{
	OptName, OptICC, OptMasquerade, OptHostBindingIPv4,
	OptGatewayModeIPv4, OptGatewayModeIPv6, OptTrusted, OptInhibitIPv4, OptHostIPv4, OptHostIPv6,
}

// Options are a bridge network's -o options. The network's record stores
// them in its "config" object; records written before an option existed
// read as its default.
type Options struct {
	Bridge     string `json:"bridge"`
	ICC        bool   `json:"icc"`
	Masquerade bool   `json:"masquerade"`
	// HostBindingIPv4 is where -p publishes without an address; invalid
	// for every address of the host.
	HostBindingIPv4 netip.Addr `json:"host_binding_ipv4,omitzero"`
	// GatewayModeIPv4 and GatewayModeIPv6: "" is nat.
	GatewayModeIPv4 firewall.GatewayMode `json:"gateway_mode_ipv4,omitempty"`
	GatewayModeIPv6 firewall.GatewayMode `json:"gateway_mode_ipv6,omitempty"`
	// Trusted are host interfaces allowed to reach published ports at the
	// container's own address.
	Trusted []string `json:"trusted_host_interfaces,omitempty"`
	// InhibitIPv4 leaves the bridge without its IPv4 gateway address:
	// something else on the bridge (a router) holds it.
	InhibitIPv4 bool `json:"inhibit_ipv4,omitempty"`
	// HostIPv4 and HostIPv6 are the source address of outbound traffic
	// (SNAT) instead of masquerading; invalid for none.
	HostIPv4 netip.Addr `json:"host_ipv4,omitzero"`
	HostIPv6 netip.Addr `json:"host_ipv6,omitzero"`
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
	case OptInhibitIPv4:
		n.Options.InhibitIPv4, err = netmode.ParseBool(key, value)
	default:
		return n.setGatewayOption(key, value)
	}
	return err
}

// setGatewayOption applies the options on how the network meets the world
// beyond the host.
func (n *Network) setGatewayOption(key, value string) error {
	var err error
	switch key {
	case OptGatewayModeIPv4:
		n.Options.GatewayModeIPv4, err = parseGatewayMode(key, value)
	case OptGatewayModeIPv6:
		n.Options.GatewayModeIPv6, err = parseGatewayMode(key, value)
	case OptTrusted:
		n.Options.Trusted, err = parseTrusted(key, value)
	case OptHostIPv4:
		n.Options.HostIPv4, err = parseHostIP(key, value, false)
	case OptHostIPv6:
		n.Options.HostIPv6, err = parseHostIP(key, value, true)
	default:
		return errdefs.Errorf(errdefs.Invalid, "option %s is not an option of bridge networks", key)
	}
	return err
}

func parseGatewayMode(key, value string) (firewall.GatewayMode, error) {
	m := firewall.GatewayMode(value)
	if !slices.Contains(firewall.GatewayModes, m) {
		var names []string
		for _, g := range firewall.GatewayModes {
			names = append(names, string(g))
		}
		return "", netmode.OptionError(key, value, "use one of "+strings.Join(names, ", "))
	}
	if m == firewall.GatewayNAT {
		return "", nil
	}
	return m, nil
}

// parseTrusted reads Docker's colon-separated list of interface names.
func parseTrusted(key, value string) ([]string, error) {
	var names []string
	for _, name := range strings.Split(value, ":") {
		if name == "" {
			continue
		}
		if err := ifname.CheckNew(name); err != nil {
			return nil, netmode.OptionError(key, value, "use interface names separated by ':', such as eth1:vxlan.1 ("+err.Error()+")")
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

func parseHostIP(key, value string, v6 bool) (netip.Addr, error) {
	ip, err := netip.ParseAddr(value)
	if err != nil || ip.Zone() != "" || ip.Is4In6() || ip.Is6() != v6 || ip.IsUnspecified() || ip.IsMulticast() {
		if v6 {
			return netip.Addr{}, netmode.OptionError(key, value, "use an IPv6 address of this host, such as 2001:db8::10")
		}
		return netip.Addr{}, netmode.OptionError(key, value, "use an IPv4 address of this host, such as 192.0.2.10")
	}
	return ip, nil
}

// Check refuses the combinations Docker's bridge refuses: an isolated
// family needs an internal network.
func (n *Network) Check(_, _ []netmode.IPAMData) error {
	modes := []struct {
		key  string
		mode firewall.GatewayMode
	}{{OptGatewayModeIPv4, n.Options.GatewayModeIPv4}, {OptGatewayModeIPv6, n.Options.GatewayModeIPv6}}
	for _, m := range modes {
		if m.mode == firewall.GatewayIsolated && !n.Config.Internal {
			return errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: isolated needs an internal network (docker network create --internal)", m.mode, m.key)
		}
	}
	return nil
}
