package driver

import (
	"net"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/macvlan"
)

// macvlanBackend builds macvlan and ipvlan networks: containers get a child
// link of the parent and appear directly on its LAN. There is no bridge and
// no firewall, as with Docker's macvlan and ipvlan drivers.
type macvlanBackend struct{ d *Driver }

// kind says which child links the network hands out.
func (n *Network) kind() macvlan.Kind {
	if n.Config.Mode == ModeIpvlan {
		return macvlan.Ipvlan
	}
	return macvlan.Macvlan
}

// parentLink is the link the network's children hang off.
func (n *Network) parentLink() string {
	if n.ResolvedParent != "" {
		return n.ResolvedParent
	}
	if n.Config.Parent == "" {
		return macvlan.PlaceholderName(n.ID)
	}
	return n.Config.Parent
}

// childSpec describes a child link of the network.
func (n *Network) childSpec(name string) macvlan.ChildSpec {
	spec := macvlan.ChildSpec{Kind: n.kind(), Name: name, Parent: n.parentLink(), MTU: n.Config.MTU}
	if spec.Kind == macvlan.Ipvlan {
		spec.Mode, spec.Flag = n.Config.IpvlanMode, n.Config.IpvlanFlag
	} else {
		spec.Mode = n.Config.MacvlanMode
	}
	return spec
}

func (m macvlanBackend) ensureNetwork(n *Network) error {
	if err := m.resolveParent(n); err != nil {
		return err
	}
	if err := m.checkNeighbours(n); err != nil {
		return err
	}
	if n.Config.Parent == "" && n.ResolvedParent == "" {
		n.OwnsParent = true
		if err := macvlan.EnsureDummy(m.d.nl, n.parentLink()); err != nil {
			return err
		}
	} else if err := m.ensureParent(n); err != nil {
		return err
	}
	parent, err := macvlan.CheckUsable(m.d.nl, n.parentLink())
	if err != nil {
		return err
	}
	if n.Config.MTU > parent.Attrs().MTU {
		return errdefs.Errorf(ErrInvalid, "invalid value \"%d\" for option %s: larger than the MTU %d of parent %s",
			n.Config.MTU, OptMTU, parent.Attrs().MTU, n.parentLink())
	}
	if err := m.probe(n); err != nil {
		return err
	}
	if n.Config.HostShim.IsValid() {
		return macvlan.EnsureShim(m.d.nl, macvlan.ShimSpec{
			Child:   n.childSpec(macvlan.ShimName(n.ID)),
			Address: netip.PrefixFrom(n.Config.HostShim, n.Config.HostShim.BitLen()),
		})
	}
	return nil
}

// probe creates and deletes one child link, so a kernel without ipvlan (or
// macvlan) fails `docker network create` with a clear error rather than the
// first `docker run`.
func (m macvlanBackend) probe(n *Network) error {
	name := macvlan.ProbeName(n.ID)
	m.d.nl.DeleteLink(name)
	spec := n.childSpec(name)
	if spec.Mode == "passthru" {
		return nil // a passthru probe would take the parent over
	}
	if err := macvlan.CreateChild(m.d.nl, spec); err != nil {
		return err
	}
	return m.d.nl.DeleteLink(name)
}

// resolveParent finds this host's parent for a network that names it by a
// pattern (eth*) or by the subnet it sits on: one swarm network then finds
// its parent on every node, whatever the interface is called there.
func (m macvlanBackend) resolveParent(n *Network) error {
	if n.ResolvedParent != "" || (!n.Config.ParentSubnet.IsValid() && !macvlan.IsPattern(n.Config.Parent)) {
		return nil
	}
	found, err := macvlan.FindParent(m.d.nl, n.Config.Parent, n.Config.ParentSubnet)
	if err != nil {
		return err
	}
	n.ResolvedParent = found
	m.d.netLog(n.ID).WithField("parent", found).Info("parent found on this host")
	return nil
}

// ensureParent makes an 802.1q parent exist. weft owns a VLAN link it
// created, and so does every weft network sharing it; the last of them to go
// deletes it. A link the user made is never deleted.
func (m macvlanBackend) ensureParent(n *Network) error {
	p, err := macvlan.ParseParent(n.parentLink())
	if err != nil || p.VLAN == 0 {
		return err
	}
	exists, err := m.d.nl.LinkExists(p.Name)
	if err != nil {
		return err
	}
	if !exists {
		// Recorded before the link is made, so a crash in between still
		// leaves weft the owner of what it made.
		n.OwnsParent = true
		if err := m.d.saveNetwork(n); err != nil {
			return err
		}
	}
	for _, o := range m.d.networks {
		if o.ID != n.ID && !o.Config.bridged() && o.parentLink() == p.Name && o.OwnsParent {
			n.OwnsParent = true
		}
	}
	if !exists && !n.OwnsParent {
		return errdefs.Errorf(ErrInvalid, "parent %s is gone and was not made by weft", p.Name)
	}
	_, err = macvlan.EnsureVLAN(m.d.nl, p)
	return err
}

// checkNeighbours refuses what the kernel would refuse later, with a clear
// text: one parent carries macvlan or ipvlan children, not both, and a
// passthru network takes its parent whole.
func (m macvlanBackend) checkNeighbours(n *Network) error {
	for _, o := range m.d.networks {
		if o.ID == n.ID || o.Config.bridged() || o.parentLink() != n.parentLink() {
			continue
		}
		switch {
		case o.kind() != n.kind():
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: weft %s network %s already uses it, and one parent carries either macvlan or ipvlan networks",
				n.parentLink(), OptParent, o.Config.Mode, ifname.ShortID(o.ID))
		case o.Config.MacvlanMode == "passthru" || n.Config.MacvlanMode == "passthru":
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: weft network %s already uses it, and macvlan_mode=passthru needs a parent of its own",
				n.parentLink(), OptParent, ifname.ShortID(o.ID))
		}
	}
	return nil
}

func (m macvlanBackend) deleteNetwork(n *Network) {
	log := m.d.netLog(n.ID)
	if n.Config.HostShim.IsValid() {
		if err := m.d.nl.DeleteLink(macvlan.ShimName(n.ID)); err != nil {
			log.WithError(err).Warn("could not delete host shim")
		}
	}
	if !n.OwnsParent {
		return
	}
	for _, o := range m.d.networks {
		if !o.Config.bridged() && o.parentLink() == n.parentLink() {
			return // still in use by another weft network
		}
	}
	if err := m.d.nl.DeleteLink(n.parentLink()); err != nil {
		log.WithError(err).Warn("could not delete parent link weft created")
	}
}

func (m macvlanBackend) nameEndpoint(n *Network, ep *Endpoint) {
	ep.Link = macvlan.ChildName(n.kind(), ep.ID)
}

func (m macvlanBackend) createEndpoint(n *Network, ep *Endpoint) error {
	if n.Config.MacvlanMode == "passthru" {
		for _, o := range m.d.endpoints {
			if o.NetworkID == n.ID && o.ID != ep.ID {
				return errdefs.Errorf(ErrConflict, "macvlan_mode=passthru gives the parent %s to a single container, and network %s has one already",
					n.parentLink(), ifname.ShortID(n.ID))
			}
		}
	}
	spec := n.childSpec(ep.Link)
	spec.MAC, _ = net.ParseMAC(ep.MAC)
	if err := macvlan.CreateChild(m.d.nl, spec); err != nil {
		return err
	}
	if n.Config.HostShim.IsValid() {
		if addr := ep.addressLike(n.Config.HostShim); addr.IsValid() {
			return macvlan.RouteVia(m.d.nl, macvlan.ShimName(n.ID), addr)
		}
	}
	return nil
}

func (m macvlanBackend) deleteEndpoint(n *Network, ep *Endpoint) {
	if n != nil && n.Config.HostShim.IsValid() {
		if addr := ep.addressLike(n.Config.HostShim); addr.IsValid() {
			if err := macvlan.Unroute(m.d.nl, macvlan.ShimName(n.ID), addr); err != nil {
				m.d.epLog(ep.NetworkID, ep.ID).WithError(err).Warn("could not remove the host route to the container")
			}
		}
	}
	m.d.deleteLinks(ep, ep.Link)
}

func (m macvlanBackend) join(n *Network, ep *Endpoint) netmode.JoinInfo {
	var j netmode.JoinInfo
	if n.Config.Internal {
		return j
	}
	if n.kind() == macvlan.Ipvlan && n.Config.IpvlanMode != "l2" {
		// ipvlan l3: the parent routes; containers send everything out of
		// their link, with no gateway on the segment (as Docker's ipvlan l3).
		if ep.IPv4.IsValid() {
			j.Routes = append(j.Routes, netmode.Route{Destination: netip.PrefixFrom(netip.IPv4Unspecified(), 0)})
		}
		if ep.IPv6.IsValid() {
			j.Routes = append(j.Routes, netmode.Route{Destination: netip.PrefixFrom(netip.IPv6Unspecified(), 0)})
		}
		return j
	}
	j.Gateway, j.GatewayIPv6 = n.gateways(ep)
	return j
}

// addressLike returns the endpoint's address of the same family as a.
func (ep *Endpoint) addressLike(a netip.Addr) netip.Addr {
	if a.Is6() {
		return ep.IPv6.Addr()
	}
	return ep.IPv4.Addr()
}
