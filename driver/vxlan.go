package driver

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/link"
	"github.com/weftnet/weft/vxlan"
)

// vxlanBackend builds multi-host networks: a bridge network (everything
// bridge mode does, on every host) plus a standard VXLAN device on the
// bridge that carries its frames to the other hosts over UDP.
type vxlanBackend struct{ bridgeBackend }

func (v vxlanBackend) ensureNetwork(n *Network) error {
	if err := v.checkVNI(n); err != nil {
		return err
	}
	under, local, underMTU, err := v.underlay(n)
	if err != nil {
		return err
	}
	if limit := underMTU - vxlan.Overhead; n.Config.MTU == 0 {
		// The frame plus VXLAN's 50 bytes must fit the underlay.
		n.Config.MTU = limit
	} else if n.Config.MTU > limit {
		return errdefs.Errorf(ErrInvalid, "invalid value \"%d\" for option %s: VXLAN over %s (MTU %d) carries frames up to %d",
			n.Config.MTU, OptMTU, under, underMTU, limit)
	}
	if err := v.bridgeBackend.ensureNetwork(n); err != nil {
		return err
	}
	spec := vxlan.Spec{
		Name: vxlan.Name(n.ID), VNI: n.Config.VNI, Port: n.Config.VXLANPort, Local: local,
		Underlay: under, Group: n.Config.Group, Bridge: n.Config.Bridge, MTU: n.Config.MTU,
	}
	if err := vxlan.Ensure(v.d.nl, spec); err != nil {
		return err
	}
	peers := v.d.swarmPeers()
	if !n.swarmVXLAN() {
		peers = nil
		for _, p := range n.Config.Peers {
			if p != local {
				peers = append(peers, p) // the same list can be given to every host
			}
		}
	}
	return vxlan.SetPeers(v.d.nl, spec.Name, peers)
}

// checkVNI refuses a VNI and port another weft network of this host uses.
func (v vxlanBackend) checkVNI(n *Network) error {
	for _, o := range v.d.networks {
		if o.ID != n.ID && o.Config.Mode == ModeVXLAN && o.Config.VNI == n.Config.VNI && o.Config.VXLANPort == n.Config.VXLANPort {
			return errdefs.Errorf(ErrConflict, "invalid value \"%d\" for option %s: weft network %s already uses VNI %d on UDP port %d",
				n.Config.VNI, OptVNI, short(o.ID), n.Config.VNI, n.Config.VXLANPort)
		}
	}
	return nil
}

// underlay picks the device and source address of the tunnel: the option,
// else whatever the kernel routes the first peer through.
func (v vxlanBackend) underlay(n *Network) (dev string, local netip.Addr, mtu int, err error) {
	if n.swarmVXLAN() {
		self, ok := v.d.selfNode()
		if !ok {
			return "", netip.Addr{}, 0, errdefs.Errorf(ErrInvalid,
				"mode=vxlan needs the other hosts: -o %s=IP,IP,... or -o %s=MULTICAST-GROUP, or a swarm (with weft installed with SCOPE=global)", OptPeers, OptGroup)
		}
		dev, mtu, err := vxlan.UnderlayOf(v.d.nl, self)
		return dev, self, mtu, err
	}
	if n.Config.Underlay == "" {
		return vxlan.Underlay(v.d.nl, n.Config.Peers)
	}
	l, err := v.d.nl.LinkByName(n.Config.Underlay)
	if err != nil {
		return "", netip.Addr{}, 0, errdefs.Errorf(ErrInvalid, "invalid value %q for option %s: no interface of that name on this host", n.Config.Underlay, OptUnderlay)
	}
	addrs, err := v.d.nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return "", netip.Addr{}, 0, errdefs.Errorf(ErrInvalid, "invalid value %q for option %s: it has no IPv4 address to send VXLAN from", n.Config.Underlay, OptUnderlay)
	}
	local, _ = netip.AddrFromSlice(addrs[0].IP)
	return n.Config.Underlay, local.Unmap(), l.Attrs().MTU, nil
}

func (v vxlanBackend) deleteNetwork(n *Network) {
	if err := link.Delete(v.d.nl, vxlan.Name(n.ID)); err != nil {
		v.d.netLog(n.ID).WithError(err).Warn("could not delete vxlan device")
	}
	v.bridgeBackend.deleteNetwork(n)
}

// bridgeSeed makes a bridge's MAC stable. A vxlan network's bridge carries
// the same gateway address on every host, so it gets the same MAC too
// (seeded by the VNI, which standalone hosts share even where their network
// ids differ): a container's gateway MAC is right whichever host answers.
func (n *Network) bridgeSeed() string {
	if n.Config.Mode == ModeVXLAN {
		return fmt.Sprintf("vxlan/%d", n.Config.VNI)
	}
	return n.ID
}
