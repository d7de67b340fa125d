package vm

import (
	"context"
	"strings"
	"testing"
)

// TestIPvlanL2 runs the README's ipvlan example in l2 mode on the LAN behind
// eth1: containers take LAN addresses, reach each other and the LAN's
// gateway, a LAN machine reaches them directly, and all of them share
// eth1's MAC address on the wire, which is what ipvlan is for. Docker's own
// ipvlan driver runs the same scenario.
func TestIPvlanL2(t *testing.T) {
	inVM(t)
	timed(t)
	l := theLAN(t)
	for _, d := range []struct{ name, net, driver string }{
		{"weft", "my-ipvlan-l2", "-d " + Plugin + " --ipam-driver " + Plugin + " -o mode=ipvlan"},
		{"docker-ipvlan", "docker-ipvlan-l2", "-d ipvlan"},
	} {
		t.Run(d.name, func(t *testing.T) {
			ipvlanL2(t, l, d.net, strings.Fields(d.driver))
		})
	}
}

func ipvlanL2(t *testing.T, l *lanLab, net string, driver []string) {
	h := l.h1
	network(t, h, append(driver, "-o", "parent=eth1",
		"--subnet", "192.168.1.0/24", "--gateway", routerAddr, "--ip-range", "192.168.1.192/27", net)...)
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
// reaches them through a route to the Docker host. Docker's own ipvlan
// driver runs the same with one network: it refuses a second on the parent.
func TestIPvlanL3(t *testing.T) {
	inVM(t)
	timed(t)
	l := theLAN(t)
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

	t.Run("weft", func(t *testing.T) {
		h := l.h1
		driver := []string{"-d", Plugin, "-o", "mode=ipvlan", "-o", "ipvlan_mode=l3", "-o", "parent=eth1"}
		net, net2 := "my-ipvlan-l3", "my-ipvlan-l3b"
		network(t, h, append(driver, "--subnet", "10.80.0.0/24", net)...)
		network(t, h, append(driver, "--subnet", "10.81.0.0/24", net2)...)
		ipvlanL3(t, l, net)
		run(t, h, "l3-c", "--network", net2)
		a, c := containerIP(t, h, "l3-a", net), containerIP(t, h, "l3-c", net2)
		reaches(t, h, "l3-a", c) // another subnet on the same parent: no router involved
		reaches(t, h, "l3-c", a)
		reaches(t, h, "l3-c", pcAddr)
		hostReaches(t, l.pc, c)
	})
	t.Run("docker-ipvlan", func(t *testing.T) {
		h := l.h1
		driver := []string{"-d", "ipvlan", "-o", "ipvlan_mode=l3", "-o", "parent=eth1"}
		net := "docker-ipvlan-l3"
		network(t, h, append(driver, "--subnet", "10.80.0.0/24", net)...)
		ipvlanL3(t, l, net)
		out, err := h.Docker(ctx(t), append(append([]string{"network", "create"}, driver...), "--subnet", "10.81.0.0/24", net+"b")...)
		if err == nil {
			h.Docker(context.Background(), "network", "rm", net+"b")
			t.Errorf("Docker's ipvlan driver took a second network on eth1: %s", out)
		} else {
			t.Logf("Docker's ipvlan driver, a second network on eth1: %v", err)
		}
	})
}

// ipvlanL3 checks two containers on l3 network net, with its subnet routed
// to the Docker host on the LAN.
func ipvlanL3(t *testing.T, l *lanLab, net string) {
	h := l.h1
	run(t, h, "l3-a", "--network", net)
	run(t, h, "l3-b", "--network", net)
	a := containerIP(t, h, "l3-a", net)
	routes := docker(t, h, "exec", "l3-a", "ip", "route")
	if !strings.Contains(routes, "default dev eth0") || strings.Contains(routes, " via ") {
		t.Errorf("l3 container routes:\n%s\nwant a default route through eth0 and no gateway", routes)
	}
	reaches(t, h, "l3-a", "l3-b")
	// Out through the parent's routes (the Docker host's LAN route), back
	// through the router's route to the Docker host.
	reaches(t, h, "l3-a", routerAddr)
	reaches(t, h, "l3-a", pcAddr)
	hostReaches(t, l.router, a)
	hostReaches(t, l.pc, a)
}
