package macvlan

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/nl"
)

// ChildSpec describes one container's link, or the host shim.
type ChildSpec struct {
	Kind   Kind
	Name   string
	Parent string
	MTU    int
	MAC    net.HardwareAddr // macvlan only; ipvlan children share the parent's MAC
	Mode   string           // macvlan_mode or ipvlan_mode
	Flag   string           // ipvlan_flag
}

// CreateChild creates the child link, down, in the host namespace; dockerd
// moves it into the container after Join.
func CreateChild(h *nl.Handle, spec ChildSpec) error {
	parent, err := h.LinkByName(spec.Parent)
	if err != nil {
		return fmt.Errorf("parent of the network: %w", err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Name
	attrs.ParentIndex = parent.Attrs().Index
	attrs.MTU = spec.MTU
	var l netlink.Link
	switch spec.Kind {
	case Macvlan:
		mode := MacvlanModes[spec.Mode]
		if mode != netlink.MACVLAN_MODE_PASSTHRU {
			// A passthru child takes over the parent's MAC; setting one would
			// change the parent's.
			attrs.HardwareAddr = spec.MAC
		}
		l = &netlink.Macvlan{LinkAttrs: attrs, Mode: mode}
	case Ipvlan:
		l = &netlink.IPVlan{LinkAttrs: attrs, Mode: IpvlanModes[spec.Mode], Flag: IpvlanFlags[spec.Flag]}
	default:
		return fmt.Errorf("unknown child kind %q", spec.Kind)
	}
	if err := h.LinkAdd(l); err != nil {
		return childError(spec, err)
	}
	return nil
}

// childError explains the kernel's refusals in the user's terms.
func childError(spec ChildSpec, err error) error {
	switch {
	case unsupported(err):
		return errdefs.Errorf(errdefs.Invalid, "this kernel cannot create %s links (load the %s module)", spec.Kind, spec.Kind)
	case nl.IsBusy(err):
		return errdefs.Errorf(errdefs.Conflict,
			"cannot add a %s link to %s: the interface already carries links of another kind or a passthru link (one parent serves either macvlan or ipvlan networks, and macvlan_mode=passthru takes the parent whole)",
			spec.Kind, spec.Parent)
	case nl.IsExist(err):
		return errdefs.Errorf(errdefs.Conflict, "cannot add %s link %q: a link with that name or MAC already exists", spec.Kind, spec.Name)
	}
	return fmt.Errorf("create %s link %q on %s: %w", spec.Kind, spec.Name, spec.Parent, err)
}

// ShimSpec is the host's own link on a macvlan or ipvlan network: without
// it the host cannot reach its containers (the kernel keeps a parent and its
// children apart), the thing Docker's documentation tells users to build by
// hand.
type ShimSpec struct {
	Child   ChildSpec
	Address netip.Prefix // the host's address on the network, as /32 or /128
}

// EnsureShim creates the shim (if missing), gives it its address and brings
// it up. Routes to containers are added per container with RouteVia.
func EnsureShim(h *nl.Handle, spec ShimSpec) error {
	if ok, err := h.LinkExists(spec.Child.Name); err != nil {
		return err
	} else if !ok {
		if err := CreateChild(h, spec.Child); err != nil {
			return err
		}
	}
	l, err := h.LinkByName(spec.Child.Name)
	if err != nil {
		return err
	}
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipNet(spec.Address)}); err != nil {
		return fmt.Errorf("address %s on shim %q: %w", spec.Address, spec.Child.Name, err)
	}
	return h.LinkSetUp(l)
}

// RouteVia routes one container address through the shim.
func RouteVia(h *nl.Handle, shim string, dst netip.Addr) error {
	l, err := h.LinkByName(shim)
	if err != nil {
		return err
	}
	return h.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.PrefixFrom(dst, dst.BitLen())), Scope: netlink.SCOPE_LINK})
}

// Unroute removes a container's route through the shim; a missing route is fine.
func Unroute(h *nl.Handle, shim string, dst netip.Addr) error {
	l, err := h.LinkByName(shim)
	if nl.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = h.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.PrefixFrom(dst, dst.BitLen())), Scope: netlink.SCOPE_LINK})
	if nl.IsNotFound(err) || nl.IsNoSuchProcess(err) {
		return nil
	}
	return err
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
