package macvlan

import (
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/netmode"
)

// The -o options of macvlan and ipvlan networks (OptParent is in parent.go).
const (
	OptParentSubnet = "parent_subnet"
	OptMacvlanMode  = "macvlan_mode"
	OptIpvlanMode   = "ipvlan_mode"
	OptIpvlanFlag   = "ipvlan_flag"
	OptHostShim     = "host_shim"
)

// MacvlanOptions and IpvlanOptions list the -o options of each mode,
// beyond those of every mode.
var (
	MacvlanOptions = []string{OptParent, OptParentSubnet, OptMacvlanMode, OptHostShim}
	IpvlanOptions  = []string{OptParent, OptParentSubnet, OptIpvlanMode, OptIpvlanFlag, OptHostShim}
)

// Options are a macvlan or ipvlan network's -o options. The network's
// record stores them in its "config" object.
type Options struct {
	Parent       string       `json:"parent,omitempty"` // as the user gave it (a name or a name pattern); "" for none
	ParentSubnet netip.Prefix `json:"parent_subnet,omitzero"`
	MacvlanMode  string       `json:"macvlan_mode,omitempty"`
	IpvlanMode   string       `json:"ipvlan_mode,omitempty"`
	IpvlanFlag   string       `json:"ipvlan_flag,omitempty"`
	HostShim     netip.Addr   `json:"host_shim,omitzero"`
}

// State is what a network learns on this host and keeps across restarts;
// the record stores it beside "config".
type State struct {
	// OwnsParent: weft created the parent link (a VLAN sub-interface or a
	// placeholder) and deletes it when the last network using it goes.
	OwnsParent bool `json:"owns_parent,omitempty"`
	// ResolvedParent is the interface a parent pattern or parent_subnet
	// found on this host, kept so the choice survives restarts.
	ResolvedParent string `json:"resolved_parent,omitempty"`
}

// SetOption applies one of the mode's options.
func (n *Network) SetOption(key, value string) error {
	switch key {
	case OptParent:
		if _, err := ParseParent(value); err != nil {
			return err
		}
		n.Options.Parent = value
	case OptParentSubnet:
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return netmode.OptionError(key, value, "use the CIDR of the LAN the parent interface sits on, such as 192.0.2.0/24")
		}
		n.Options.ParentSubnet = p.Masked()
	case OptMacvlanMode:
		if _, ok := MacvlanModes[value]; !ok {
			return netmode.OptionError(key, value, "use "+Names(MacvlanModes))
		}
		n.Options.MacvlanMode = value
	case OptIpvlanMode:
		if _, ok := IpvlanModes[value]; !ok {
			return netmode.OptionError(key, value, "use "+Names(IpvlanModes))
		}
		n.Options.IpvlanMode = value
	case OptIpvlanFlag:
		if _, ok := IpvlanFlags[value]; !ok {
			return netmode.OptionError(key, value, "use "+Names(IpvlanFlags))
		}
		n.Options.IpvlanFlag = value
	case OptHostShim:
		ip, err := netip.ParseAddr(value)
		if err != nil {
			return netmode.OptionError(key, value, "use an address of the network's subnet for the host, such as 192.0.2.250")
		}
		n.Options.HostShim = ip
	default:
		return errdefs.Errorf(errdefs.Invalid, "option %s is not an option of %s networks", key, n.Config.Mode)
	}
	return nil
}

// Check runs the checks that need every option and the IPAM data.
func (n *Network) Check(v4, v6 []netmode.IPAMData) error {
	if err := n.checkHostShim(v4, v6); err != nil {
		return err
	}
	if n.Options.Parent != "" && n.Options.ParentSubnet.IsValid() {
		return errdefs.Errorf(errdefs.Invalid, "options %s and %s exclude each other: name the parent, or the subnet it sits on", OptParent, OptParentSubnet)
	}
	if n.Config.Internal {
		// As Docker's macvlan and ipvlan do: an internal network gets a
		// private placeholder parent, so nothing reaches the LAN.
		n.Options.Parent, n.Options.ParentSubnet = "", netip.Prefix{}
	}
	return nil
}

// checkHostShim requires the host's address on the network to lie in the
// network's subnet and to be reserved with --aux-address, so IPAM never
// hands it to a container.
func (n *Network) checkHostShim(v4, v6 []netmode.IPAMData) error {
	shim := n.Options.HostShim
	if !shim.IsValid() {
		return nil
	}
	if n.Config.Internal {
		return errdefs.Errorf(errdefs.Invalid, "option %s cannot be used with --internal: nothing outside an internal network reaches it", OptHostShim)
	}
	data, subnets := v4, n.Config.IPv4Subnets
	if shim.Is6() {
		data, subnets = v6, n.Config.IPv6Subnets
	}
	inside := false
	for _, s := range subnets {
		inside = inside || s.Pool.Contains(shim)
	}
	if !inside {
		return netmode.OptionError(OptHostShim, shim.String(), "use an address inside the network's --subnet")
	}
	for _, d := range data {
		for _, aux := range d.AuxAddresses {
			if p, err := netmode.ParseAddrOrPrefix(aux, 0); err == nil && p.Addr() == shim {
				return nil
			}
		}
	}
	return errdefs.Errorf(errdefs.Invalid,
		"option %s=%s: reserve the address with --aux-address host=%s as well, so no container is given it",
		OptHostShim, shim, shim)
}
