package vm

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/labkit"
)

// maxFrames bounds what a capture keeps.
const maxFrames = 50000

// startCapture records every frame crossing the lab's switch (all its
// ports, so most frames twice: in from the sender's port, out to the
// receiver's), like tcpdump -i any in the switch namespace: what an
// observer on the underlay sees. t.Cleanup stops it.
func startCapture(t *testing.T) *labkit.Capture {
	t.Helper()
	ns, err := netns.GetFromPath(filepath.Join(labkit.NetnsDir, lab.SwitchNS))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close() // the socket keeps its namespace
	c, err := labkit.StartCapture(ns, 0, maxFrames)
	if err != nil {
		t.Fatalf("packet socket in the switch namespace: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// underlay sums up frames as an observer sees them.
type underlay struct {
	frames int
	// esp counts IPsec ESP packets.
	esp int
	// vxlanIn counts VXLAN packets (any UDP port) whose inner frame is an
	// IPv4 packet or ARP message with an address in the subnet: that
	// network's traffic in clear.
	vxlanIn int
	// marker counts frames holding the marker bytes anywhere.
	marker int
}

// survey reads frames for ESP, VXLAN carrying subnet and marker.
func survey(frames [][]byte, subnet netip.Prefix, marker []byte) underlay {
	var u underlay
	for _, f := range frames {
		u.frames++
		if bytes.Contains(f, marker) {
			u.marker++
		}
		proto, l4, ok := ipv4Payload(f)
		if !ok {
			continue
		}
		switch proto {
		case unix.IPPROTO_ESP:
			u.esp++
		case unix.IPPROTO_UDP:
			if len(l4) >= 8 && vxlanCarries(l4[8:], subnet) {
				u.vxlanIn++
			}
		}
	}
	return u
}

// ipv4Payload returns the protocol and payload of an Ethernet frame
// carrying IPv4.
func ipv4Payload(f []byte) (proto uint8, payload []byte, ok bool) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IP {
		return 0, nil, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ihl < 20 || len(ip) < ihl {
		return 0, nil, false
	}
	return ip[9], ip[ihl:], true
}

// vxlanCarries reports whether b, a UDP payload, is a VXLAN packet (the I
// flag set, RFC 7348) whose inner frame has an IPv4 or ARP address in
// subnet.
func vxlanCarries(b []byte, subnet netip.Prefix) bool {
	if len(b) < 8+14 || b[0]&0x08 == 0 {
		return false
	}
	inner := b[8:]
	var addrs [][]byte
	switch binary.BigEndian.Uint16(inner[12:14]) {
	case unix.ETH_P_IP:
		if len(inner) >= 14+20 {
			addrs = [][]byte{inner[14+12 : 14+16], inner[14+16 : 14+20]}
		}
	case unix.ETH_P_ARP:
		if len(inner) >= 14+28 {
			addrs = [][]byte{inner[14+14 : 14+18], inner[14+24 : 14+28]}
		}
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a); ok && subnet.Contains(ip) {
			return true
		}
	}
	return false
}
