package esp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nl"
)

// Source ports: each encrypted network's VXLAN device sends from one port of
// this block, below Linux's ephemeral range (32768-60999), which unencrypted
// VXLAN devices draw their source ports from; so no other traffic ever
// matches an encrypted network's policies.
const (
	FirstSourcePort = 16384
	SourcePorts     = 16384
)

// SourcePort proposes a source port for the network with this VNI; a host
// takes the next free one if another encrypted network has it (the port only
// has to be unique on one host).
func SourcePort(vni int) int { return FirstSourcePort + vni%SourcePorts }

const udp = netlink.Proto(unix.IPPROTO_UDP)

// Tunnel is one encrypted network's VXLAN traffic as this host sends and
// receives it.
type Tunnel struct {
	Key        Key
	VNI        int
	Local      netip.Addr // this host's VTEP address
	Port       int        // VXLAN's UDP port, the same on every host
	SourcePort int        // this host's VXLAN source port for the network
}

// SetPeers makes the tunnel's SAs and policies exactly those for peers:
// missing ones are added, those of hosts no longer listed removed. SAs
// already in place are kept, so a restarted plugin does not reset their
// sequence numbers.
func SetPeers(h *nl.Handle, t Tunnel, peers []netip.Addr) error {
	want := map[netip.Addr]bool{}
	for _, p := range peers {
		if p != t.Local {
			want[p] = true
		}
	}
	have, err := t.installed(h)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range have.states {
		src, _ := netip.AddrFromSlice(s.Src)
		dst, _ := netip.AddrFromSlice(s.Dst)
		if !t.between(src.Unmap(), dst.Unmap(), want) {
			if err := h.XfrmStateDel(&s); err != nil && !nl.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove SA spi %#x: %w", s.Spi, err))
			}
		}
	}
	for _, p := range have.policies {
		dst, _ := netip.AddrFromSlice(p.Dst.IP)
		if !want[dst.Unmap()] {
			if err := h.XfrmPolicyDel(&p); err != nil && !nl.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove policy to %s: %w", dst, err))
			}
		}
	}
	for peer := range want {
		if err := t.connect(h, peer, have); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Remove deletes all the tunnel's SAs and policies; t.Local may be unset.
func Remove(h *nl.Handle, t Tunnel) error { return SetPeers(h, t, nil) }

// between says whether an SA from src to dst joins this host (as it is
// now) to one of peers.
func (t Tunnel) between(src, dst netip.Addr, peers map[netip.Addr]bool) bool {
	return src == t.Local && peers[dst] || dst == t.Local && peers[src]
}

// installed is what the kernel holds of the tunnel.
type installed struct {
	states   []netlink.XfrmState
	policies []netlink.XfrmPolicy
}

// installed finds the tunnel's SAs (their SPIs are derived, so a state with
// the SPI this tunnel would give it between its two ends is the tunnel's)
// and its output policies (selected by the tunnel's own source port). Local
// is not needed, so Remove works when the underlay address is gone.
func (t Tunnel) installed(h *nl.Handle) (installed, error) {
	var in installed
	states, err := h.XfrmStateList(netlink.FAMILY_V4)
	if err != nil {
		return in, fmt.Errorf("list IPsec SAs: %w", err)
	}
	for _, s := range states {
		src, _ := netip.AddrFromSlice(s.Src)
		dst, _ := netip.AddrFromSlice(s.Dst)
		src, dst = src.Unmap(), dst.Unmap()
		if s.Proto == netlink.XFRM_PROTO_ESP && s.Spi == deriveSA(t.Key, t.VNI, src, dst).spi {
			in.states = append(in.states, s)
		}
	}
	policies, err := h.XfrmPolicyList(netlink.FAMILY_V4)
	if err != nil {
		return in, fmt.Errorf("list IPsec policies: %w", err)
	}
	for _, p := range policies {
		if p.Dir == netlink.XFRM_DIR_OUT && p.Proto == udp && p.SrcPort == t.SourcePort && p.DstPort == t.Port && p.Dst != nil {
			in.policies = append(in.policies, p)
		}
	}
	return in, nil
}

// connect installs the SAs both ways between this host and peer, and the
// policy that sends the network's VXLAN packets to peer through ESP.
func (t Tunnel) connect(h *nl.Handle, peer netip.Addr, have installed) error {
	out, in := deriveSA(t.Key, t.VNI, t.Local, peer), deriveSA(t.Key, t.VNI, peer, t.Local)
	for _, s := range []struct {
		src, dst netip.Addr
		sa       sa
	}{{t.Local, peer, out}, {peer, t.Local, in}} {
		if have.hasState(s.sa.spi, s.dst) {
			continue
		}
		state := &netlink.XfrmState{
			Src: s.src.AsSlice(), Dst: s.dst.AsSlice(), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
			Spi: s.sa.spi, Reqid: s.sa.spi,
			Aead: &netlink.XfrmStateAlgo{Name: Algorithm, Key: s.sa.key, ICVLen: icvBits},
			// No replay window: a peer that reboots starts its sequence
			// numbers again under the same derived key, and a window would
			// drop its traffic until this host forgot the SA.
			ReplayWindow: 0,
		}
		if err := h.XfrmStateAdd(state); err != nil && !nl.IsExist(err) {
			return fmt.Errorf("add IPsec SA %s -> %s: %w", s.src, s.dst, err)
		}
	}
	policy := &netlink.XfrmPolicy{
		Src: host(t.Local), Dst: host(peer), Proto: udp, SrcPort: t.SourcePort, DstPort: t.Port,
		Dir: netlink.XFRM_DIR_OUT,
		Tmpls: []netlink.XfrmPolicyTmpl{{
			Src: t.Local.AsSlice(), Dst: peer.AsSlice(), Proto: netlink.XFRM_PROTO_ESP,
			Mode: netlink.XFRM_MODE_TRANSPORT, Spi: out.spi, Reqid: out.spi,
		}},
	}
	if err := h.XfrmPolicyUpdate(policy); err != nil {
		return fmt.Errorf("add IPsec policy to %s: %w", peer, err)
	}
	return nil
}

func (in installed) hasState(spi int, dst netip.Addr) bool {
	for _, s := range in.states {
		if d, _ := netip.AddrFromSlice(s.Dst); s.Spi == spi && d.Unmap() == dst {
			return true
		}
	}
	return false
}

func host(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// FitMTU is the MTU a VXLAN device may have when encrypted, where mtu is
// what it may have in clear: ESP adds its header (8), IV (8), trailer (2)
// and ICV (16), and pads what it encrypts (the VXLAN packet from the UDP
// header on, inner frame plus 32 bytes with the trailer) to 4 bytes.
func FitMTU(mtu int) int {
	m := mtu - 34
	return m - (m+32)%4
}
