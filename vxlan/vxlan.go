// Package vxlan is weft's vxlan network mode: a bridge network on every
// host (package bridge) plus a standard Linux VXLAN device (UDP 4789 by
// default) on the bridge, its flood list of peer VTEPs from -o peers, a
// multicast group or the swarm, and for an encrypted network the IPsec
// tunnels (package esp) set up before any peer gets a frame. Any plain
// Linux VXLAN device with the same VNI and port interoperates. Every
// netlink call goes through internal/nl.
package vxlan

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
)

// Protocol constants.
const (
	DefaultPort = 4789      // IANA's VXLAN port
	MaxVNI      = 1<<24 - 1 // VNIs are 24 bits
	Overhead    = 50        // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
	Prefix      = "wx-"     // device names: wx-<12 chars of the network id>
)

// Name names a network's VXLAN device.
func Name(networkID string) string { return ifname.ForID(Prefix, networkID) }

// Spec describes a VXLAN device.
type Spec struct {
	Name     string
	VNI      int
	Port     int
	Local    netip.Addr // source address of the tunnel
	Underlay string     // device the tunnel leaves through
	Group    netip.Addr // multicast group, or invalid for a unicast flood list
	Bridge   string     // the bridge the device joins
	// Isolated makes the device an isolated bridge port (icc=false): no
	// frame passes between it and the containers' isolated ports.
	Isolated bool
	MTU      int
	// SourcePort pins the UDP source port (an encrypted network's IPsec
	// policies select it); 0 leaves the kernel's flow-hashed range.
	SourcePort int
}

// Ensure creates the device if it is missing (an existing one with another
// VNI or ports is rebuilt), attaches it to the bridge and brings it up.
func Ensure(h *nl.Handle, spec Spec) error {
	present := false
	if l, err := h.LinkByName(spec.Name); err == nil {
		if v, ok := l.(*netlink.Vxlan); ok && v.VxlanId == spec.VNI && v.Port == spec.Port && v.PortLow == spec.SourcePort {
			present = true
		} else if err := h.LinkDel(l); err != nil {
			return fmt.Errorf("replace vxlan %q: %w", spec.Name, err)
		}
	}
	br, err := h.LinkByName(spec.Bridge)
	if err != nil {
		return err
	}
	if !present {
		if err := create(h, spec, br.Attrs().Index); err != nil {
			return err
		}
	}
	l, err := h.LinkByName(spec.Name)
	if err != nil {
		return err
	}
	if err := h.LinkSetMaster(l, br); err != nil {
		return err
	}
	if spec.Isolated {
		if err := h.LinkSetIsolated(l, true); err != nil {
			return fmt.Errorf("isolate vxlan %q on its bridge: %w", spec.Name, err)
		}
	}
	return h.LinkSetUp(l)
}

func create(h *nl.Handle, spec Spec, bridgeIndex int) error {
	under, err := h.LinkByName(spec.Underlay)
	if err != nil {
		return errdefs.Errorf(errdefs.Invalid, "underlay %s: %v", spec.Underlay, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Name
	attrs.MTU = spec.MTU
	attrs.MasterIndex = bridgeIndex
	dev := &netlink.Vxlan{
		LinkAttrs: attrs, VxlanId: spec.VNI, Port: spec.Port, VtepDevIndex: under.Attrs().Index,
		SrcAddr: spec.Local.AsSlice(), Learning: true,
	}
	if spec.Group.IsValid() {
		dev.Group = spec.Group.AsSlice()
	}
	if spec.SourcePort != 0 {
		dev.PortLow, dev.PortHigh = spec.SourcePort, spec.SourcePort+1 // the range is [low, high)
	}
	if err := h.LinkAdd(dev); err != nil {
		// Our own name is free (checked above), so EEXIST means the kernel
		// already has a device with this VNI and port.
		if nl.IsExist(err) {
			return errdefs.Errorf(errdefs.Conflict, "VNI %d on UDP port %d is already used by another VXLAN device on this host", spec.VNI, spec.Port)
		}
		return fmt.Errorf("create vxlan %q (vni %d): %w", spec.Name, spec.VNI, err)
	}
	return nil
}

// zeroMAC is the flood-list entry's MAC: frames with no learnt destination
// go to every peer listed under it.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// SetPeers makes the device's flood list exactly peers: missing entries are
// added, stale ones removed. A peer dropped from the list also loses the
// MACs the device learnt behind it: the kernel would keep them for its
// ageing time (5 minutes), sending their frames into the void, also those
// of a container elsewhere that got a departed one's address and MAC.
func SetPeers(h *nl.Handle, name string, peers []netip.Addr) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	entries, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list flood list of %q: %w", name, err)
	}
	want := map[netip.Addr]bool{}
	for _, p := range peers {
		want[p] = true
	}
	have := map[netip.Addr]bool{}
	for _, e := range entries {
		if ip, ok := netip.AddrFromSlice(e.IP); ok && e.HardwareAddr.String() == zeroMAC.String() {
			have[ip.Unmap()] = true
		}
	}
	for _, e := range entries {
		ip, ok := netip.AddrFromSlice(e.IP)
		if !ok || !have[ip.Unmap()] || want[ip.Unmap()] {
			continue
		}
		// The flood entry of a dropped peer, or a MAC learnt behind it.
		if err := h.NeighDel(&e); err != nil && !nl.IsNotFound(err) {
			return fmt.Errorf("remove %s behind %s from %q: %w", e.HardwareAddr, ip.Unmap(), name, err)
		}
	}
	for p := range want {
		if !have[p] {
			if err := h.NeighAppend(floodEntry(l.Attrs().Index, p)); err != nil && !nl.IsExist(err) {
				return fmt.Errorf("add peer %s to %q: %w", p, name, err)
			}
		}
	}
	return nil
}

func floodEntry(index int, peer netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: peer.AsSlice(), HardwareAddr: zeroMAC,
	}
}
