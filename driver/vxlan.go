package driver

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
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
	if n.Config.Encrypted {
		// Checked before anything is built: an encrypted network must never
		// carry its traffic in clear text.
		if err := esp.Probe(v.d.nl); err != nil {
			return errdefs.Errorf(ErrInvalid, "option %s: %v; weft will not send this network's traffic in clear text", OptEncrypted, err)
		}
		if err := v.pickSourcePort(n); err != nil {
			return err
		}
	}
	under, local, underMTU, err := v.underlay(n)
	if err != nil {
		return err
	}
	limit, tunnel := underMTU-vxlan.Overhead, "VXLAN" // the frame plus VXLAN's 50 bytes must fit the underlay
	if n.Config.Encrypted {
		limit, tunnel = esp.FitMTU(limit), "VXLAN with ESP"
	}
	if n.Config.MTU == 0 {
		n.Config.MTU = limit
	} else if n.Config.MTU > limit {
		return errdefs.Errorf(ErrInvalid, "invalid value \"%d\" for option %s: %s over %s (MTU %d) carries frames up to %d",
			n.Config.MTU, OptMTU, tunnel, under, underMTU, limit)
	}
	if err := v.bridgeBackend.ensureNetwork(n); err != nil {
		return err
	}
	spec := vxlan.Spec{
		Name: vxlan.Name(n.ID), VNI: n.Config.VNI, Port: n.Config.VXLANPort, Local: local,
		Underlay: under, Group: n.Config.Group, Bridge: n.Config.Bridge, MTU: n.Config.MTU,
		SourcePort: n.ESPSourcePort,
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
	return v.setPeers(n, local, peers)
}

// setPeers points the network at exactly these other hosts: the VXLAN flood
// list and, for an encrypted network, the IPsec SAs and policies.
func (v vxlanBackend) setPeers(n *Network, local netip.Addr, peers []netip.Addr) error {
	if n.Config.Encrypted {
		if !local.IsValid() {
			return errdefs.Errorf(ErrInvalid, "encrypted network %s: this host's VXLAN address is unknown", ifname.ShortID(n.ID))
		}
		// Policies first: a peer in the flood list before its policy would
		// get the first frames in clear text.
		if err := esp.SetPeers(v.d.nl, v.tunnel(n, local), peers); err != nil {
			return err
		}
	}
	return vxlan.SetPeers(v.d.nl, vxlan.Name(n.ID), peers)
}

// tunnel describes an encrypted network's ESP tunnel from this host.
func (v vxlanBackend) tunnel(n *Network, local netip.Addr) esp.Tunnel {
	key, _ := esp.ParseKey(n.Config.EncryptionKey) // validated at create
	return esp.Tunnel{Key: key, VNI: n.Config.VNI, Local: local, Port: n.Config.VXLANPort, SourcePort: n.ESPSourcePort}
}

// pickSourcePort gives an encrypted network a VXLAN source port no other
// encrypted network of this host sends from (its IPsec policies select on
// it). The choice is stored with the network.
func (v vxlanBackend) pickSourcePort(n *Network) error {
	if n.ESPSourcePort != 0 {
		return nil
	}
	taken := map[int]bool{}
	for _, o := range v.d.networks {
		if o.ID != n.ID {
			taken[o.ESPSourcePort] = true
		}
	}
	first := esp.SourcePort(n.Config.VNI)
	for i := range esp.SourcePorts {
		port := esp.FirstSourcePort + (first-esp.FirstSourcePort+i)%esp.SourcePorts
		if !taken[port] {
			n.ESPSourcePort = port
			return nil
		}
	}
	return errdefs.Errorf(errdefs.Exhausted, "option %s: every one of the %d encrypted VXLAN source ports of this host is in use", OptEncrypted, esp.SourcePorts)
}

// checkVNI refuses a VNI and port another weft network of this host uses.
func (v vxlanBackend) checkVNI(n *Network) error {
	for _, o := range v.d.networks {
		if o.ID != n.ID && o.Config.Mode == ModeVXLAN && o.Config.VNI == n.Config.VNI && o.Config.VXLANPort == n.Config.VXLANPort {
			return errdefs.Errorf(ErrConflict, "invalid value \"%d\" for option %s: weft network %s already uses VNI %d on UDP port %d",
				n.Config.VNI, OptVNI, ifname.ShortID(o.ID), n.Config.VNI, n.Config.VXLANPort)
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
	if err := v.d.nl.DeleteLink(vxlan.Name(n.ID)); err != nil {
		v.d.netLog(n.ID).WithError(err).Warn("could not delete vxlan device")
	}
	if n.Config.Encrypted {
		if err := esp.Remove(v.d.nl, v.tunnel(n, netip.Addr{})); err != nil {
			v.d.netLog(n.ID).WithError(err).Warn("could not remove the IPsec SAs and policies")
		}
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
