package vxlan

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// Network is a multi-host network: a bridge network (everything bridge
// mode does, on every host) plus a standard VXLAN device on the bridge
// that carries its frames to the other hosts over UDP, in ESP if
// encrypted. The bridge's endpoints, joins and options are the embedded
// bridge network's.
type Network struct {
	*bridge.Network
	VXLAN Options
	State State
}

// New returns a vxlan network with the defaults of its options; Check
// fills those that depend on the others.
func New(base *netmode.Network) *Network { return &Network{Network: bridge.New(base)} }

// Record returns what the network's record stores of the mode: the
// bridge's options and vxlan's, and the state.
func (n *Network) Record() (options []any, state any) {
	return []any{&n.Options, &n.VXLAN}, &n.State // the bridge's options, then vxlan's
}

// FromSwarm says the network finds its peers through the swarm: it was
// given neither peers nor a group.
func (n *Network) FromSwarm() bool { return len(n.VXLAN.Peers) == 0 && !n.VXLAN.Group.IsValid() }

// VNI is the network's VXLAN network identifier.
func (n *Network) VNI() int { return n.VXLAN.VNI }

// CheckNew refuses what bridge mode refuses, and, without a swarm (no
// manager allocates addresses), a pool whose range is the whole subnet: each
// host must hand out addresses from its own --ip-range. Other IPAMs than
// weft's cannot be checked.
func (n *Network) CheckNew(h netmode.Host, v4, v6 []netmode.IPAMData) error {
	if err := n.Network.CheckNew(h, v4, v6); err != nil {
		return err
	}
	if n.FromSwarm() {
		return nil
	}
	for _, data := range append(append([]netmode.IPAMData{}, v4...), v6...) {
		pool, err := netip.ParsePrefix(data.Pool)
		if err != nil {
			continue // the subnets were checked already
		}
		if r, ok := h.DynamicRange(data.AddressSpace, pool.Masked()); ok && r == pool.Masked() {
			return errdefs.Errorf(errdefs.Invalid,
				"mode=vxlan without a swarm: give each host its own --ip-range inside --subnet %s (for example %s here and the next block on the next host), so containers on different hosts never get the same address",
				pool, exampleRange(pool))
		}
	}
	return nil
}

// exampleRange suggests a quarter of the pool as one host's range.
func exampleRange(pool netip.Prefix) netip.Prefix {
	bits := min(pool.Bits()+2, pool.Addr().BitLen())
	return netip.PrefixFrom(pool.Masked().Addr(), bits).Masked()
}

// Ensure builds the bridge network, the VXLAN device on it and its peers;
// an encrypted network gets its IPsec SAs and policies before any peer can
// be sent a frame. It is idempotent, so create, retry and restore all use
// it.
func (n *Network) Ensure(h netmode.Host) error {
	if err := n.checkVNI(h); err != nil {
		return err
	}
	if n.VXLAN.Encrypted {
		// Checked before anything is built: an encrypted network must never
		// carry its traffic in clear text.
		if err := esp.Probe(h.NL()); err != nil {
			return errdefs.Errorf(errdefs.Invalid, "option %s: %v; weft will not send this network's traffic in clear text", OptEncrypted, err)
		}
		if err := n.pickSourcePort(h); err != nil {
			return err
		}
	}
	u, err := n.findUnderlay(h)
	if err != nil {
		return err
	}
	if err := n.fitMTU(u); err != nil {
		return err
	}
	// A vxlan network's bridge carries the same gateway address on every
	// host, so it gets the same MAC too (seeded by the VNI, which
	// standalone hosts share even where their network ids differ): a
	// container's gateway MAC is right whichever host answers.
	if err := n.EnsureBridge(h, fmt.Sprintf("vxlan/%d", n.VXLAN.VNI)); err != nil {
		return err
	}
	spec := Spec{
		Name: Name(n.ID), VNI: n.VXLAN.VNI, Port: n.VXLAN.Port, Local: u.local,
		Underlay: u.dev, Group: n.VXLAN.Group, Bridge: n.Options.Bridge, MTU: n.Config.MTU,
		SourcePort: n.State.ESPSourcePort, Isolated: !n.Options.ICC,
	}
	if err := Ensure(h.NL(), spec); err != nil {
		return err
	}
	if n.FromSwarm() {
		_, _, peers := h.Swarm()
		return n.setPeers(h, u.local, peers)
	}
	var peers []netip.Addr
	for _, p := range n.VXLAN.Peers {
		if p != u.local {
			peers = append(peers, p) // the same list can be given to every host
		}
	}
	return n.setPeers(h, u.local, peers)
}

// fitMTU makes the network's MTU fit the underlay: the frame plus VXLAN's
// 50 bytes (and ESP's) must fit one underlay packet. Without -o mtu the
// largest that fits is taken, and stored.
func (n *Network) fitMTU(u underlay) error {
	limit, tunnel := u.mtu-Overhead, "VXLAN"
	if n.VXLAN.Encrypted {
		limit, tunnel = esp.FitMTU(limit), "VXLAN with ESP"
	}
	if n.Config.MTU == 0 {
		n.Config.MTU = limit
	} else if n.Config.MTU > limit {
		return errdefs.Errorf(errdefs.Invalid, "invalid value \"%d\" for option %s: %s over %s (MTU %d) carries frames up to %d",
			n.Config.MTU, netmode.OptMTU, tunnel, u.dev, u.mtu, limit)
	}
	return nil
}

// checkVNI refuses a VNI and port another weft network of this host uses.
func (n *Network) checkVNI(h netmode.Host) error {
	for _, o := range siblings(h) {
		if o.VXLAN.VNI == n.VXLAN.VNI && o.VXLAN.Port == n.VXLAN.Port {
			return errdefs.Errorf(errdefs.Conflict, "invalid value \"%d\" for option %s: weft network %s already uses VNI %d on UDP port %d",
				n.VXLAN.VNI, OptVNI, ifname.ShortID(o.ID), n.VXLAN.VNI, n.VXLAN.Port)
		}
	}
	return nil
}

// siblings are weft's other vxlan networks on this host.
func siblings(h netmode.Host) []*Network {
	var out []*Network
	for _, o := range h.Others() {
		if v, ok := o.(*Network); ok {
			out = append(out, v)
		}
	}
	return out
}

// Teardown removes the VXLAN device, the IPsec SAs and policies, and the
// bridge network. Failures are logged: a delete always goes through.
func (n *Network) Teardown(h netmode.Host) {
	if err := h.NL().DeleteLink(Name(n.ID)); err != nil {
		h.Log().WithError(err).Warn("could not delete vxlan device")
	}
	if n.VXLAN.Encrypted {
		if err := esp.Remove(h.NL(), n.tunnel(netip.Addr{})); err != nil {
			h.Log().WithError(err).Warn("could not remove the IPsec SAs and policies")
		}
	}
	n.Network.Teardown(h)
}

// LinksMade names the links weft made for the network: the bridge and the
// VXLAN device.
func (n *Network) LinksMade() []string { return append(n.Network.LinksMade(), Name(n.ID)) }

// Encryption is what the firewall needs to know of an encrypted network:
// clear-text VXLAN for it is dropped. ok is false for a network in clear.
func (n *Network) Encryption() (e firewall.EncryptedVXLAN, ok bool) {
	if !n.VXLAN.Encrypted {
		return e, false
	}
	return firewall.EncryptedVXLAN{VNI: uint32(n.VXLAN.VNI), Port: uint16(n.VXLAN.Port)}, true
}

// NetworkLinks names the links a network's id gives in vxlan mode, beyond
// its bridge's.
func NetworkLinks(networkID string) []string { return []string{Name(networkID)} }
