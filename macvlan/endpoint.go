package macvlan

import (
	"net"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// NewEndpoint names the endpoint's child link and gives it a MAC, unless
// it carries its parent's.
func (n *Network) NewEndpoint(ep *netmode.Endpoint, mac string) error {
	ep.Link = ChildName(n.Kind(), ep.ID)
	switch {
	case mac != "" && n.SharesParentMAC():
		return errdefs.Errorf(errdefs.Invalid, "--mac-address cannot be used on this network: its containers use the MAC address of parent %s", n.ParentLink())
	case n.SharesParentMAC():
		return nil
	}
	return netmode.ChooseMAC(ep, mac)
}

// CreateEndpoint makes the endpoint's child link, and the host's route to
// it through the shim.
func (n *Network) CreateEndpoint(h netmode.Host, ep *netmode.Endpoint) error {
	if n.Options.MacvlanMode == "passthru" {
		for _, o := range h.Endpoints() {
			if o.ID != ep.ID {
				return errdefs.Errorf(errdefs.Conflict, "macvlan_mode=passthru gives the parent %s to a single container, and network %s has one already",
					n.ParentLink(), ifname.ShortID(n.ID))
			}
		}
	}
	spec := n.childSpec(ep.Link)
	spec.MAC, _ = net.ParseMAC(ep.MAC)
	if err := CreateChild(h.NL(), spec); err != nil {
		return err
	}
	if n.Options.HostShim.IsValid() {
		if addr := ep.AddressLike(n.Options.HostShim); addr.IsValid() {
			return RouteVia(h.NL(), ShimName(n.ID), addr)
		}
	}
	return nil
}

// DeleteEndpoint removes the host's route to the container and its child
// link. Failures are logged: a delete always goes through.
func (n *Network) DeleteEndpoint(h netmode.Host, ep *netmode.Endpoint) {
	if n.Options.HostShim.IsValid() {
		if addr := ep.AddressLike(n.Options.HostShim); addr.IsValid() {
			if err := Unroute(h.NL(), ShimName(n.ID), addr); err != nil {
				h.Log().WithError(err).WithField("endpoint", ifname.ShortID(ep.ID)).Warn("could not remove the host route to the container")
			}
		}
	}
	netmode.DeleteLinks(h, ep, ep.Link)
}

// Join routes the container through the LAN's gateway; ipvlan l3 and l3s
// containers get connected default routes instead.
func (n *Network) Join(ep *netmode.Endpoint) netmode.JoinInfo {
	var j netmode.JoinInfo
	if n.Config.Internal {
		return j
	}
	if n.Kind() == Ipvlan && n.Options.IpvlanMode != "l2" {
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
	j.Gateway, j.GatewayIPv6 = n.Config.Gateways(ep)
	return j
}
