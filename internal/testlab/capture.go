package testlab

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsthread"
)

// Packet is an IPv4 packet seen on a link: its protocol and, for UDP, its
// destination port.
type Packet struct {
	Proto   uint8
	DstPort uint16
}

// Capture records the IPv4 packets crossing one link of a namespace, in
// both directions, like a minimal tcpdump.
type Capture struct {
	fd      int
	mu      sync.Mutex
	packets []Packet
	quit    chan struct{} // closed by Stop
	done    chan struct{} // closed when the reader has returned
	stop    sync.Once
}

// StartCapture opens a packet socket on ifname inside ns; t.Cleanup stops it.
func StartCapture(t testing.TB, ns *NS, ifname string) *Capture {
	t.Helper()
	l, err := ns.NL.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := socketIn(ns.handle, l.Attrs().Index)
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.Name, err)
	}
	c := &Capture{fd: fd, quit: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { c.Stop() })
	return c
}

// socketIn opens an AF_PACKET socket bound to the link with this index in
// namespace ns. The socket keeps its namespace after the thread leaves it.
func socketIn(ns netns.NsHandle, index int) (int, error) {
	fd := -1
	err := nsthread.In(ns, func() error {
		proto := int(htons(unix.ETH_P_ALL))
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto); err != nil {
			return err
		}
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index})
		if err == nil {
			tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
			err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		}
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
		return err
	})
	return fd, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the receive timeout, so Stop is noticed
		}
		if p, ok := parseIPv4(buf[:n]); ok {
			c.mu.Lock()
			c.packets = append(c.packets, p)
			c.mu.Unlock()
		}
	}
}

// Stop ends the capture and returns what it saw.
func (c *Capture) Stop() []Packet {
	c.stop.Do(func() {
		close(c.quit)
		<-c.done
		unix.Close(c.fd)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.packets...)
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
