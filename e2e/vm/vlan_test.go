package vm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/lab"
)

// The pc's addresses on VLAN 20, above those IPAM gives the containers (.2
// upwards): its own, and strayAddr, one of vlan10's subnet.
const (
	pcVLAN20Addr = "192.168.20.200"
	strayAddr    = "192.168.10.250"
)

// TestVLANTrunk runs the README's 802.1q trunk example: vlan10 and vlan20 on
// eth1.10 and eth1.20, which weft creates, shares between networks and
// removes with their last network. Containers reach machines on their own
// VLAN only: a LAN machine holding an address of vlan10's subnet but on VLAN
// 20 is out of reach of vlan10's containers. Docker's own macvlan driver runs
// the same scenario.
func TestVLANTrunk(t *testing.T) {
	inVM(t)
	timed(t)
	l := theLAN(t)
	// The router is on both VLANs; the pc only on VLAN 20, where it also
	// holds an address of vlan10's subnet (strayAddr).
	vlanLink(t, l.router, "10", "192.168.10.1")
	vlanLink(t, l.router, "20", "192.168.20.1")
	vlanLink(t, l.pc, "20", pcVLAN20Addr)
	mustRun(t, l.pc, "ip", "addr", "add", strayAddr+"/24", "dev", "eth1.20")
	t.Run("weft", func(t *testing.T) { vlanTrunk(t, l, []string{"-d", Plugin, "-o", "mode=macvlan"}, false) })
	t.Run("docker-macvlan", func(t *testing.T) { vlanTrunk(t, l, []string{"-d", "macvlan"}, true) })
}

// vlanTrunk is TestVLANTrunk with one driver: the flags that pick it, and
// whether it is Docker's.
func vlanTrunk(t *testing.T, l *lanLab, driver []string, isDocker bool) {
	h := l.h1
	// The router is each VLAN's gateway. Without --gateway, Docker 29's
	// macvlan driver reserves no address for one, and its first container
	// took the router's .1.
	network(t, h, slices.Concat(driver, []string{"-o", "parent=eth1.10", "--subnet", "192.168.10.0/24", "--gateway", "192.168.10.1", "vlan10"})...)
	network(t, h, slices.Concat(driver, []string{"-o", "parent=eth1.20", "--subnet", "192.168.20.0/24", "--gateway", "192.168.20.1", "vlan20"})...)
	for vid, want := range map[string]string{"eth1.10": "802.1Q id 10", "eth1.20": "802.1Q id 20"} {
		if out := mustRun(t, h.Host, "ip", "-d", "link", "show", vid); !strings.Contains(out, want) {
			t.Errorf("the driver's %s on the Docker host:\n%s\nwant an 802.1q link (%s)", vid, out, want)
		}
	}
	run(t, h, "v10-a", "--network", "vlan10")
	run(t, h, "v10-b", "--network", "vlan10")
	run(t, h, "v20-a", "--network", "vlan20")

	// A container holding an address of the router or the pc would answer
	// the checks below itself.
	for c, net := range map[string]string{"v10-a": "vlan10", "v10-b": "vlan10", "v20-a": "vlan20"} {
		if ip := containerIP(t, h, c, net); slices.Contains([]string{strayAddr, pcVLAN20Addr, "192.168.10.1", "192.168.20.1"}, ip) {
			t.Fatalf("%s got %s, an address of the router or the pc: the checks below would prove nothing", c, ip)
		}
	}
	reaches(t, h, "v10-a", "v10-b")
	reaches(t, h, "v10-a", "192.168.10.1")
	reaches(t, h, "v20-a", "192.168.20.1")
	reaches(t, h, "v20-a", pcVLAN20Addr) // the pc answers on VLAN 20...
	cutOff(t, h, "v10-a", strayAddr)     // ...but not to VLAN 10, whatever the address
	// The positive control: on VLAN 20 the stray address answers (the
	// router, bound to eth1.20 without a route there, asks for it on-link).
	if out, err := l.router.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", strconv.Itoa(int(pingWait.Seconds())), "-I", "eth1.20", strayAddr); err != nil {
		t.Errorf("the pc's %s does not answer on VLAN 20 either, so the VLAN 10 check proves nothing: %v\n%s\n%s", strayAddr, err, out, lanState(l))
	}

	// A second network on eth1.10 shares it; the link goes with the last.
	// Docker 20.10's macvlan driver takes one network per parent (29.8's
	// takes several).
	shared := true
	second := slices.Concat([]string{"network", "create"}, driver, []string{"-o", "parent=eth1.10", "--subnet", "192.168.11.0/24", "vlan10b"})
	if _, err := h.Docker(ctx(t), second...); err != nil {
		if !isDocker || !strings.Contains(err.Error(), "is already using parent interface eth1.10") {
			t.Fatalf("a second network on eth1.10: %v", err)
		}
		t.Logf("Docker %s's macvlan driver, a second network on eth1.10: %v", engineVersion, err)
		shared = false
	}
	docker(t, h, "rm", "-f", "v10-a", "v10-b")
	docker(t, h, "network", "rm", "vlan10")
	if shared {
		if !linkExists(t, h.Host, "eth1.10") {
			t.Errorf("eth1.10 is gone with vlan10, although vlan10b still uses it")
		}
		docker(t, h, "network", "rm", "vlan10b")
	}
	if linkExists(t, h.Host, "eth1.10") {
		t.Errorf("eth1.10 outlives its last network")
	}
	if !linkExists(t, h.Host, "eth1.20") {
		t.Errorf("eth1.20 is gone, although vlan20 still uses it")
	}
}

// lanState is the LAN machines' addresses, routes and neighbours.
func lanState(l *lanLab) string {
	var b strings.Builder
	for _, h := range []*lab.Host{l.router, l.pc, l.h1.Host} {
		out, err := h.Run(context.Background(), "sh", "-c", "ip addr; ip route; ip neigh; cat /proc/sys/net/ipv4/ip_forward")
		fmt.Fprintf(&b, "--- %s (%v)\n%s", h.Name, err, out)
	}
	return b.String()
}
