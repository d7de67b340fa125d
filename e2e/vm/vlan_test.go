package vm

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// strayAddr is an address of vlan10's subnet that the pc holds on VLAN 20,
// above those IPAM gives the containers (.2 upwards).
const strayAddr = "192.168.10.250"

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
	vlanLink(t, l.pc, "20", "192.168.20.2")
	mustRun(t, l.pc, "ip", "addr", "add", strayAddr+"/24", "dev", "eth1.20")
	for _, d := range []struct{ name, driver string }{
		{"weft", "-d " + Plugin + " -o mode=macvlan"},
		{"docker-macvlan", "-d macvlan"},
	} {
		t.Run(d.name, func(t *testing.T) { vlanTrunk(t, l, strings.Fields(d.driver)) })
	}
}

// vlanTrunk is TestVLANTrunk with one driver: the flags that pick it.
func vlanTrunk(t *testing.T, l *lanLab, driver []string) {
	h := l.h1
	network(t, h, slices.Concat(driver, []string{"-o", "parent=eth1.10", "--subnet", "192.168.10.0/24", "vlan10"})...)
	network(t, h, slices.Concat(driver, []string{"-o", "parent=eth1.20", "--subnet", "192.168.20.0/24", "vlan20"})...)
	for vid, want := range map[string]string{"eth1.10": "802.1Q id 10", "eth1.20": "802.1Q id 20"} {
		if out := mustRun(t, h.Host, "ip", "-d", "link", "show", vid); !strings.Contains(out, want) {
			t.Errorf("the driver's %s on the Docker host:\n%s\nwant an 802.1q link (%s)", vid, out, want)
		}
	}
	run(t, h, "v10-a", "--network", "vlan10")
	run(t, h, "v10-b", "--network", "vlan10")
	run(t, h, "v20-a", "--network", "vlan20")

	for _, c := range []string{"v10-a", "v10-b"} {
		if ip := containerIP(t, h, c, "vlan10"); ip == strayAddr {
			t.Fatalf("%s got %s, the pc's address on VLAN 20: the check below would prove nothing", c, ip)
		}
	}
	reaches(t, h, "v10-a", "v10-b")
	reaches(t, h, "v10-a", "192.168.10.1")
	reaches(t, h, "v20-a", "192.168.20.1")
	reaches(t, h, "v20-a", "192.168.20.2") // the pc answers on VLAN 20...
	cutOff(t, h, "v10-a", strayAddr)       // ...but not to VLAN 10, whatever the address
	// The positive control: on VLAN 20 the stray address answers (the
	// router, bound to eth1.20 without a route there, asks for it on-link).
	if out, err := l.router.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", strconv.Itoa(int(pingWait.Seconds())), "-I", "eth1.20", strayAddr); err != nil {
		t.Errorf("the pc's %s does not answer on VLAN 20 either, so the VLAN 10 check proves nothing: %v\n%s", strayAddr, err, out)
	}

	// A second network on eth1.10 shares it; the link goes with the last.
	network(t, h, slices.Concat(driver, []string{"-o", "parent=eth1.10", "--subnet", "192.168.11.0/24", "vlan10b"})...)
	docker(t, h, "rm", "-f", "v10-a", "v10-b")
	docker(t, h, "network", "rm", "vlan10")
	if !linkExists(t, h.Host, "eth1.10") {
		t.Errorf("eth1.10 is gone with vlan10, although vlan10b still uses it")
	}
	docker(t, h, "network", "rm", "vlan10b")
	if linkExists(t, h.Host, "eth1.10") {
		t.Errorf("eth1.10 outlives its last network")
	}
	if !linkExists(t, h.Host, "eth1.20") {
		t.Errorf("eth1.20 is gone, although vlan20 still uses it")
	}
}
