package vxlan

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/internal/nl"
)

// underlay is where the tunnel leaves this host.
type underlay struct {
	dev   string     // the device
	local netip.Addr // the tunnel's source address
	mtu   int        // the device's MTU
}

// findUnderlay finds where the network's tunnel leaves this host, from what
// the network was given: on a swarm, the device holding this node's
// advertised address; with -o underlay, that device and its first IPv4
// address; else the device and source address the kernel routes the first
// other host through.
func (n *Network) findUnderlay(h netmode.Host) (underlay, error) {
	switch {
	case n.FromSwarm():
		self, ok, _ := h.Swarm()
		if !ok {
			return underlay{}, errdefs.Errorf(errdefs.Invalid,
				"mode=vxlan needs the other hosts: -o %s=IP,IP,... or -o %s=MULTICAST-GROUP, or a swarm (with weft installed with SCOPE=global)", OptPeers, OptGroup)
		}
		return holding(h.NL(), self)
	case n.VXLAN.Underlay != "":
		return named(h.NL(), n.VXLAN.Underlay)
	default:
		return routed(h.NL(), n.VXLAN.Peers)
	}
}

// holding finds the device holding the local address (a swarm node's
// advertised address).
func holding(h *nl.Handle, local netip.Addr) (underlay, error) {
	links, err := h.LinkList()
	if err != nil {
		return underlay{}, err
	}
	for _, l := range links {
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == local {
				return underlay{dev: l.Attrs().Name, local: local, mtu: l.Attrs().MTU}, nil
			}
		}
	}
	return underlay{}, errdefs.Errorf(errdefs.Invalid, "no interface of this host holds the swarm address %s", local)
}

// named takes the device the user named and its first IPv4 address.
func named(h *nl.Handle, dev string) (underlay, error) {
	l, err := h.LinkByName(dev)
	if err != nil {
		return underlay{}, errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: no interface of that name on this host", dev, OptUnderlay)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return underlay{}, errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: it has no IPv4 address to send VXLAN from", dev, OptUnderlay)
	}
	local, _ := netip.AddrFromSlice(addrs[0].IP)
	return underlay{dev: dev, local: local.Unmap(), mtu: l.Attrs().MTU}, nil
}

// routed finds the device and source address the kernel would use to reach
// the first peer that is not this host (the same peer list can be given to
// every host).
func routed(h *nl.Handle, peers []netip.Addr) (underlay, error) {
	for _, peer := range peers {
		routes, err := h.RouteGet(peer.AsSlice())
		if err != nil || len(routes) == 0 {
			return underlay{}, errdefs.Errorf(errdefs.Invalid, "no route to VXLAN peer %s from this host: %v", peer, err)
		}
		if routes[0].Type == unix.RTN_LOCAL {
			continue // this host's own address
		}
		l, err := h.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return underlay{}, err
		}
		local, _ := netip.AddrFromSlice(routes[0].Src)
		return underlay{dev: l.Attrs().Name, local: local.Unmap(), mtu: l.Attrs().MTU}, nil
	}
	return underlay{}, errdefs.Errorf(errdefs.Invalid, "every VXLAN peer given is an address of this host; list the other hosts too")
}
