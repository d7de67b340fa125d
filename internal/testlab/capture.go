package testlab

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/labkit"
)

// Packet is an IPv4 packet seen on a link: its protocol and, for UDP, its
// destination port.
type Packet struct {
	Proto   uint8
	DstPort uint16
}

// Capture records the IPv4 packets crossing one link of a namespace, in
// both directions.
type Capture struct{ frames *labkit.Capture }

// maxFrames bounds what a capture keeps; the kernel tests send a few dozen.
const maxFrames = 100000

// StartCapture opens a packet socket on ifname inside ns; t.Cleanup stops it.
func StartCapture(t testing.TB, ns *NS, ifname string) *Capture {
	t.Helper()
	l, err := ns.NL.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := labkit.StartCapture(ns.handle, l.Attrs().Index, maxFrames)
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.Name, err)
	}
	t.Cleanup(func() { frames.Stop() })
	return &Capture{frames: frames}
}

// Stop ends the capture and returns the IPv4 packets it saw.
func (c *Capture) Stop() []Packet {
	var out []Packet
	for _, f := range c.frames.Stop() {
		if p, ok := parseIPv4(f); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseIPv4 reads an Ethernet frame carrying IPv4.
func parseIPv4(f []byte) (Packet, bool) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IP {
		return Packet{}, false
	}
	ip := f[14:]
	p := Packet{Proto: ip[9]}
	ihl := int(ip[0]&0x0f) * 4
	if p.Proto == unix.IPPROTO_UDP && len(ip) >= ihl+4 {
		p.DstPort = binary.BigEndian.Uint16(ip[ihl+2 : ihl+4])
	}
	return p, true
}
