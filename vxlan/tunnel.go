package vxlan

import (
	"net/netip"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// SwarmChanged points a network that finds its peers through the swarm at
// the nodes the swarm has now; other networks are left as they are.
func (n *Network) SwarmChanged(h netmode.Host) error {
	if !n.FromSwarm() {
		return nil
	}
	self, _, peers := h.Swarm()
	return n.setPeers(h, self, peers)
}

// setPeers points the network at exactly these other hosts: the VXLAN flood
// list and, for an encrypted network, the IPsec SAs and policies.
func (n *Network) setPeers(h netmode.Host, local netip.Addr, peers []netip.Addr) error {
	if n.VXLAN.Encrypted {
		if !local.IsValid() {
			return errdefs.Errorf(errdefs.Invalid, "encrypted network %s: this host's VXLAN address is unknown", ifname.ShortID(n.ID))
		}
		// Policies first: a peer in the flood list before its policy would
		// get the first frames in clear text.
		if err := esp.SetPeers(h.NL(), n.tunnel(local), peers); err != nil {
			return err
		}
	}
	return SetPeers(h.NL(), Name(n.ID), peers)
}

// tunnel describes an encrypted network's ESP tunnel from this host.
func (n *Network) tunnel(local netip.Addr) esp.Tunnel {
	key, _ := esp.ParseKey(n.VXLAN.EncryptionKey) // validated at create
	return esp.Tunnel{Key: key, VNI: n.VXLAN.VNI, Local: local, Port: n.VXLAN.Port, SourcePort: n.State.ESPSourcePort}
}

// pickSourcePort gives an encrypted network a VXLAN source port no other
// encrypted network of this host sends from (its IPsec policies select on
// it). The choice is stored with the network.
func (n *Network) pickSourcePort(h netmode.Host) error {
	if n.State.ESPSourcePort != 0 {
		return nil
	}
	taken := map[int]bool{}
	for _, o := range siblings(h) {
		taken[o.State.ESPSourcePort] = true
	}
	first := esp.SourcePort(n.VXLAN.VNI)
	for i := range esp.SourcePorts {
		port := esp.FirstSourcePort + (first-esp.FirstSourcePort+i)%esp.SourcePorts
		if !taken[port] {
			n.State.ESPSourcePort = port
			return nil
		}
	}
	return errdefs.Errorf(errdefs.Exhausted, "option %s: every one of the %d encrypted VXLAN source ports of this host is in use", OptEncrypted, esp.SourcePorts)
}
