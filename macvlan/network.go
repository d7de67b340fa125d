package macvlan

import (
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// Network is a macvlan or ipvlan network's part that this package owns:
// its options, what it learnt on this host, and its links. Containers get
// a child link of the parent and appear directly on its LAN; there is no
// bridge and no firewall, as with Docker's macvlan and ipvlan drivers.
type Network struct {
	*netmode.Network
	Options Options
	State   State
}

// New returns a network of base's mode (macvlan or ipvlan) with the
// defaults of its options.
func New(base *netmode.Network) *Network {
	n := &Network{Network: base}
	if n.Kind() == Ipvlan {
		n.Options.IpvlanMode, n.Options.IpvlanFlag = "l2", "bridge"
	} else {
		n.Options.MacvlanMode = "bridge"
	}
	return n
}

// Record returns what the network's record stores of the mode: its
// options and its state.
func (n *Network) Record() (options []any, state any) { return []any{&n.Options}, &n.State }

// Kind says which child links the network hands out.
func (n *Network) Kind() Kind {
	if n.Config.Mode == netmode.Ipvlan {
		return Ipvlan
	}
	return Macvlan
}

// ParentLink is the link the network's children hang off.
func (n *Network) ParentLink() string {
	if n.State.ResolvedParent != "" {
		return n.State.ResolvedParent
	}
	if n.Options.Parent == "" {
		return PlaceholderName(n.ID)
	}
	return n.Options.Parent
}

// SharesParentMAC says the network's children carry the parent's MAC:
// ipvlan children and a passthru macvlan child.
func (n *Network) SharesParentMAC() bool {
	return n.Kind() == Ipvlan || n.Options.MacvlanMode == "passthru"
}

// childSpec describes a child link of the network.
func (n *Network) childSpec(name string) ChildSpec {
	spec := ChildSpec{Kind: n.Kind(), Name: name, Parent: n.ParentLink(), MTU: n.Config.MTU}
	if spec.Kind == Ipvlan {
		spec.Mode, spec.Flag = n.Options.IpvlanMode, n.Options.IpvlanFlag
	} else {
		spec.Mode = n.Options.MacvlanMode
	}
	return spec
}

// CheckNew has nothing to check before the network is built: Ensure's
// checks hold for a restore too.
func (n *Network) CheckNew(netmode.Host, []netmode.IPAMData, []netmode.IPAMData) error { return nil }

// Ensure makes the parent and the host shim exist; it is idempotent, so
// create, retry and restore all use it.
func (n *Network) Ensure(h netmode.Host) error {
	if err := n.resolveParent(h); err != nil {
		return err
	}
	if err := n.checkNeighbours(h); err != nil {
		return err
	}
	if n.Options.Parent == "" && n.State.ResolvedParent == "" {
		n.State.OwnsParent = true
		if err := EnsureDummy(h.NL(), n.ParentLink()); err != nil {
			return err
		}
	} else if err := n.ensureParent(h); err != nil {
		return err
	}
	parent, err := CheckUsable(h.NL(), n.ParentLink())
	if err != nil {
		return err
	}
	if n.Config.MTU > parent.Attrs().MTU {
		return errdefs.Errorf(errdefs.Invalid, "invalid value \"%d\" for option %s: larger than the MTU %d of parent %s",
			n.Config.MTU, netmode.OptMTU, parent.Attrs().MTU, n.ParentLink())
	}
	if err := n.probe(h); err != nil {
		return err
	}
	if n.Options.HostShim.IsValid() {
		return EnsureShim(h.NL(), ShimSpec{
			Child:   n.childSpec(ShimName(n.ID)),
			Address: netip.PrefixFrom(n.Options.HostShim, n.Options.HostShim.BitLen()),
		})
	}
	return nil
}

// probe creates and deletes one child link, so a kernel without ipvlan (or
// macvlan) fails `docker network create` with a clear error rather than the
// first `docker run`.
func (n *Network) probe(h netmode.Host) error {
	name := ProbeName(n.ID)
	_ = h.NL().DeleteLink(name) // a leftover of a crash; CreateChild reports what matters
	spec := n.childSpec(name)
	if spec.Mode == "passthru" {
		return nil // a passthru probe would take the parent over
	}
	if err := CreateChild(h.NL(), spec); err != nil {
		return err
	}
	return h.NL().DeleteLink(name)
}

// resolveParent finds this host's parent for a network that names it by a
// pattern (eth*) or by the subnet it sits on: one swarm network then finds
// its parent on every node, whatever the interface is called there.
func (n *Network) resolveParent(h netmode.Host) error {
	if n.State.ResolvedParent != "" || (!n.Options.ParentSubnet.IsValid() && !IsPattern(n.Options.Parent)) {
		return nil
	}
	found, err := FindParent(h.NL(), n.Options.Parent, n.Options.ParentSubnet)
	if err != nil {
		return err
	}
	n.State.ResolvedParent = found
	h.Log().WithField("parent", found).Info("parent found on this host")
	return nil
}

// ensureParent makes an 802.1q parent exist. weft owns a VLAN link it
// created, and so does every weft network sharing it; the last of them to go
// deletes it. A link the user made is never deleted.
func (n *Network) ensureParent(h netmode.Host) error {
	p, err := ParseParent(n.ParentLink())
	if err != nil || p.VLAN == 0 {
		return err
	}
	exists, err := h.NL().LinkExists(p.Name)
	if err != nil {
		return err
	}
	if !exists {
		// Recorded before the link is made, so a crash in between still
		// leaves weft the owner of what it made.
		n.State.OwnsParent = true
		if err := h.Save(); err != nil {
			return err
		}
	}
	for _, o := range siblings(h) {
		if o.ParentLink() == p.Name && o.State.OwnsParent {
			n.State.OwnsParent = true
		}
	}
	if !exists && !n.State.OwnsParent {
		return errdefs.Errorf(errdefs.Invalid, "parent %s is gone and was not made by weft", p.Name)
	}
	_, err = EnsureVLAN(h.NL(), p)
	return err
}

// checkNeighbours refuses what the kernel would refuse later, with a clear
// text: one parent carries macvlan or ipvlan children, not both, and a
// passthru network takes its parent whole.
func (n *Network) checkNeighbours(h netmode.Host) error {
	for _, o := range siblings(h) {
		if o.ParentLink() != n.ParentLink() {
			continue
		}
		switch {
		case o.Kind() != n.Kind():
			return errdefs.Errorf(errdefs.Conflict, "invalid value %q for option %s: weft %s network %s already uses it, and one parent carries either macvlan or ipvlan networks",
				n.ParentLink(), OptParent, o.Config.Mode, ifname.ShortID(o.ID))
		case o.Options.MacvlanMode == "passthru" || n.Options.MacvlanMode == "passthru":
			return errdefs.Errorf(errdefs.Conflict, "invalid value %q for option %s: weft network %s already uses it, and macvlan_mode=passthru needs a parent of its own",
				n.ParentLink(), OptParent, ifname.ShortID(o.ID))
		}
	}
	return nil
}

// siblings are weft's other macvlan and ipvlan networks on this host.
func siblings(h netmode.Host) []*Network {
	var out []*Network
	for _, o := range h.Others() {
		if m, ok := o.(*Network); ok {
			out = append(out, m)
		}
	}
	return out
}

// Teardown removes the host shim, and the parent weft made once no other
// weft network uses it. Failures are logged: a delete always goes through.
func (n *Network) Teardown(h netmode.Host) {
	if n.Options.HostShim.IsValid() {
		if err := h.NL().DeleteLink(ShimName(n.ID)); err != nil {
			h.Log().WithError(err).Warn("could not delete host shim")
		}
	}
	if !n.State.OwnsParent {
		return
	}
	for _, o := range siblings(h) {
		if o.ParentLink() == n.ParentLink() {
			return // still in use by another weft network
		}
	}
	if err := h.NL().DeleteLink(n.ParentLink()); err != nil {
		h.Log().WithError(err).Warn("could not delete parent link weft created")
	}
}

// LinksMade names the links weft made for the network: its host shim and
// a parent it owns, never a parent the user gave.
func (n *Network) LinksMade() []string {
	var names []string
	if n.Options.HostShim.IsValid() {
		names = append(names, ShimName(n.ID))
	}
	if n.State.OwnsParent {
		names = append(names, n.ParentLink())
	}
	return names
}
