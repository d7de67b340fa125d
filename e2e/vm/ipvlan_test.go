package vm

import (
	"context"
	"strings"
	"testing"
)

// TestIPvlanL2 runs the README's ipvlan example in l2 mode on the LAN behind
// eth1: containers take LAN addresses, reach each other and the LAN's
// gateway, a LAN machine reaches them directly, and all of them share
// eth1's MAC address on the wire, which is what ipvlan is for.
func TestIPvlanL2(t *testing.T) {
	inVM(t)
	timed(t)
	l := theLAN(t)
	h := l.h1
	net := "my-ipvlan-l2"
	network(t, h, "-d", Plugin, "--ipam-driver", Plugin, "-o", "mode=ipvlan", "-o", "parent=eth1",
		"--subnet", "192.168.1.0/24", "--gateway", routerAddr, "--ip-range", "192.168.1.192/27", net)
	run(t, h, "l2-a", "--network", net)
	run(t, h, "l2-b", "--network", net)
	a, b := containerIP(t, h, "l2-a", net), containerIP(t, h, "l2-b", net)
	for _, ip := range []string{a, b} {
		if !strings.HasPrefix(ip, "192.168.1.") {
			t.Errorf("container address %s is not on the LAN 192.168.1.0/24", ip)
		}
	}
	reaches(t, h, "l2-a", "l2-b") // by name, through Docker's DNS
	reaches(t, h, "l2-b", a)
	reaches(t, h, "l2-a", routerAddr) // the gateway, a LAN machine
	hostReaches(t, l.pc, b)           // another LAN machine, directly

	// ipvlan: one MAC address on the wire, eth1's.
	parentMAC := strings.TrimSpace(mustRun(t, h.Host, "cat", "/sys/class/net/eth1/address"))
	for _, c := range []string{"l2-a", "l2-b"} {
		if mac := docker(t, h, "exec", c, "cat", "/sys/class/net/eth0/address"); mac != parentMAC {
			t.Errorf("%s's eth0 has MAC %s, want eth1's %s (ipvlan)", c, mac, parentMAC)
		}
	}
	if neigh := mustRun(t, l.pc, "ip", "neigh", "show", b); !strings.Contains(neigh, parentMAC) {
		t.Errorf("the LAN machine sees %s at %q, want the Docker host's eth1 MAC %s", b, neigh, parentMAC)
	}
}

// TestIPvlanL3 runs the README's ipvlan l3 example: no gateway on the
// segment, the containers' traffic routed through the parent. Containers of
// two l3 networks on one parent reach each other across their subnets, reach
// a LAN machine through the Docker host's route, and the LAN's router
// reaches them through a route to the Docker host.
func TestIPvlanL3(t *testing.T) {
	inVM(t)
	timed(t)
	l := theLAN(t)
	h := l.h1
	net, net2 := "my-ipvlan-l3", "my-ipvlan-l3b"
	network(t, h, "-d", Plugin, "-o", "mode=ipvlan", "-o", "ipvlan_mode=l3", "-o", "parent=eth1", "--subnet", "10.80.0.0/24", net)
	network(t, h, "-d", Plugin, "-o", "mode=ipvlan", "-o", "ipvlan_mode=l3", "-o", "parent=eth1", "--subnet", "10.81.0.0/24", net2)
	run(t, h, "l3-a", "--network", net)
	run(t, h, "l3-b", "--network", net)
	run(t, h, "l3-c", "--network", net2)
	a, c := containerIP(t, h, "l3-a", net), containerIP(t, h, "l3-c", net2)

	// The router routes the container subnets to the Docker host; the pc,
	// with no such route, sends through the router.
	for _, s := range []string{"10.80.0.0/24", "10.81.0.0/24"} {
		mustRun(t, l.router, "ip", "route", "add", s, "via", h1LANAddr)
		mustRun(t, l.pc, "ip", "route", "add", s, "via", routerAddr)
		t.Cleanup(func() {
			l.router.Run(context.Background(), "ip", "route", "del", s, "via", h1LANAddr)
			l.pc.Run(context.Background(), "ip", "route", "del", s, "via", routerAddr)
		})
	}
	mustRun(t, l.router, "sysctl", "-w", "net.ipv4.ip_forward=1")

	routes := docker(t, h, "exec", "l3-a", "ip", "route")
	if !strings.Contains(routes, "default dev eth0") || strings.Contains(routes, " via ") {
		t.Errorf("l3 container routes:\n%s\nwant a default route through eth0 and no gateway", routes)
	}
	reaches(t, h, "l3-a", "l3-b")
	reaches(t, h, "l3-a", c) // another subnet on the same parent: no router involved
	reaches(t, h, "l3-c", a)
	// Out through the parent's routes (the Docker host's LAN route), back
	// through the router's route to the Docker host.
	reaches(t, h, "l3-a", routerAddr)
	reaches(t, h, "l3-c", pcAddr)
	hostReaches(t, l.router, a)
	hostReaches(t, l.pc, c)
}
