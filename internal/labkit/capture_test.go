package labkit

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"testing"

	"github.com/weftnet/weft/internal/nsthread"
)

// A capture on one link of a namespace sees a datagram sent across it, and
// a capture on every link sees it on both ends of the pair.
func TestCaptureSeesTraffic(t *testing.T) {
	requireRoot(t, "ip")
	name, err := OwnedName(testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := AddNetns(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	defer func() {
		if err := DeleteNetns(name); err != nil {
			t.Error(err)
		}
	}()
	for _, args := range [][]string{
		{"link", "add", "cap0", "type", "veth", "peer", "name", "cap1"},
		{"addr", "add", "192.0.2.1/24", "dev", "cap0"},
		{"link", "set", "cap0", "up"},
		{"link", "set", "cap1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	index := func(link string) int {
		out, err := exec.Command("ip", "-n", name, "-o", "link", "show", link).Output()
		if err != nil {
			t.Fatal(err)
		}
		var i int
		_, _ = fmt.Sscanf(string(out), "%d:", &i)
		return i
	}
	one, err := StartCapture(ns, index("cap1"), 100)
	if err != nil {
		t.Fatal(err)
	}
	all, err := StartCapture(ns, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// A static neighbour, so the datagram leaves without an ARP exchange.
	marker := []byte("weft-capture-marker")
	if out, err := exec.Command("ip", "-n", name, "neigh", "add", "192.0.2.2", "lladdr", "02:00:00:00:00:02", "dev", "cap0").CombinedOutput(); err != nil {
		t.Fatalf("ip neigh: %v\n%s", err, out)
	}
	err = nsthread.In(ns, func() error {
		c, err := net.Dial("udp", "192.0.2.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(marker)
		return err
	})
	if err != nil {
		t.Fatalf("sending the datagram: %v", err)
	}
	count := func(frames [][]byte) (n int) {
		for _, f := range frames {
			if bytes.Contains(f, marker) {
				n++
			}
		}
		return n
	}
	if n := count(one.Stop()); n != 1 {
		t.Errorf("the capture on cap1 saw the datagram %d times, want once", n)
	}
	if n := count(all.Stop()); n != 2 {
		t.Errorf("the capture on every link saw the datagram %d times, want twice (leaving cap0, arriving on cap1)", n)
	}
}
