package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// addLANPort gives the Docker host a second NIC, "lan1", on the lab switch:
// the parent of the macvlan networks below (never the machine's own eth0,
// and not lab0, which the host itself needs).
func addLANPort(t *testing.T) {
	t.Helper()
	sw := "v-" + host.Name + "-lan"
	if _, err := theLab.RunSwitch(ctx(t), "ip", "link", "add", sw, "type", "veth", "peer", "name", "lan1", "netns", host.NetNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { theLab.RunSwitch(context.Background(), "ip", "link", "del", sw) })
	for _, cmd := range [][]string{{"ip", "link", "set", sw, "master", lab.SwitchBridge}, {"ip", "link", "set", sw, "up"}} {
		if _, err := theLab.RunSwitch(ctx(t), cmd...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := host.Run(ctx(t), "ip", "link", "set", "lan1", "up"); err != nil {
		t.Fatal(err)
	}
}

// macvlanNet creates a macvlan network on lan1 whose containers take
// addresses from 198.18.0.192/27 of the lab LAN.
func macvlanNet(t *testing.T, name string, opts ...string) {
	t.Helper()
	args := []string{"-o", "mode=macvlan", "-o", "parent=lan1", "--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.192/27"}
	network(t, name, append(args, opts...)...)
}

// TestMacvlanOnLAN: containers appear on the LAN itself: a LAN machine
// reaches them directly, they reach it and each other (bridge mode), and with
// host_shim the Docker host reaches them too.
func TestMacvlanOnLAN(t *testing.T) {
	requireLab(t)
	addLANPort(t)
	net := netName(t, "n")
	macvlanNet(t, net, "--aux-address", "host=198.18.0.250", "-o", "host_shim=198.18.0.250")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net, "--ip", "198.18.0.200")
	ipA := containerIP(t, host, net+"-a")
	if _, err := ext.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", "2", ipA); err != nil {
		t.Errorf("a LAN machine cannot reach the macvlan container %s directly: %v", ipA, err)
	}
	reaches(t, net+"-a", ext.Addr.String())
	reaches(t, net+"-a", net+"-b")
	reaches(t, net+"-b", ipA)
	if _, err := host.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", "2", "198.18.0.200"); err != nil {
		t.Errorf("the Docker host cannot reach its container through host_shim: %v", err)
	}
	links, err := sh(t, net+"-a", "ip -o link show")
	if err != nil || strings.Count(links, "\n")+1 != 2 {
		t.Errorf("container must have only lo and eth0: %v\n%s", err, links)
	}
}

// TestMacvlanPrivateAndPassthru: private keeps containers apart, as
// Docker's own macvlan driver does on the same engine; passthru takes one
// container.
func TestMacvlanPrivateAndPassthru(t *testing.T) {
	requireLab(t)
	addLANPort(t)
	for _, d := range []netDriver{
		{name: "weft", args: []string{"-d", Plugin, "--ipam-driver", Plugin, "-o", "mode=macvlan"}},
		{name: "docker-macvlan", args: []string{"-d", "macvlan"}},
	} {
		t.Run(d.name, func(t *testing.T) {
			priv := netName(t, "priv")
			d.network(t, priv, "-o", "parent=lan1", "-o", "macvlan_mode=private",
				"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.192/27")
			run(t, priv+"-a", "--network", priv)
			run(t, priv+"-b", "--network", priv)
			// Each reaches the LAN and answers it; only each other they do not.
			ipB := containerIP(t, host, priv+"-b")
			reaches(t, priv+"-a", ext.Addr.String())
			hostReaches(t, ext, ipB)
			cutOff(t, host, priv+"-a", ipB)
		})
	}

	pass := netName(t, "pass")
	macvlanNet(t, pass, "-o", "macvlan_mode=passthru")
	run(t, pass+"-a", "--network", pass)
	reaches(t, pass+"-a", ext.Addr.String())
	msg := dockerFails(t, host, "run", "--rm", "--network", pass, lab.Image, "true")
	if !strings.Contains(msg, "passthru") || !strings.Contains(msg, "single container") {
		t.Errorf("second passthru container: error %q does not explain passthru takes one container", msg)
	}
}

// TestMacvlanInternal: without a parent, an internal network on a link weft
// owns: containers talk to each other and reach nothing else.
func TestMacvlanInternal(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "-o", "mode=macvlan", "--internal", "--subnet", "10.70.0.0/24")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	reaches(t, net+"-a", net+"-b")
	// weft gives a container of an internal network no route out.
	cutOff(t, host, net+"-a", ext.Addr.String(), probe.NoRoute)
}

// TestMacvlanBadInput: clear errors, nothing left behind.
func TestMacvlanBadInput(t *testing.T) {
	requireLab(t)
	addLANPort(t)
	before := hostState(t)
	tests := []struct {
		name string
		opts []string
		want []string
	}{
		{"missing parent", []string{"-o", "parent=eth9"}, []string{`"eth9"`, "no interface"}},
		{"loopback parent", []string{"-o", "parent=lo"}, []string{"loopback"}},
		{"vlan id out of range", []string{"-o", "parent=lan1.4095"}, []string{"VLAN id 4095", "1 to 4094"}},
		{"bad mode", []string{"-o", "parent=lan1", "-o", "macvlan_mode=bridged"}, []string{"macvlan_mode", "bridge, passthru, private, vepa"}},
		{"bridge option", []string{"-o", "parent=lan1", "-o", "com.docker.network.bridge.name=x"}, []string{"applies to mode=bridge"}},
		{"mtu above parent", []string{"-o", "parent=lan1", "-o", "com.docker.network.driver.mtu=9000"}, []string{"MTU 1500 of parent lan1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"network", "create", "-d", Plugin, "--ipam-driver", Plugin, "-o", "mode=macvlan", "--subnet", "10.71.0.0/24"}, tt.opts...)
			msg := dockerFails(t, host, append(args, "bad-macvlan")...)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if after := hostState(t); after != before {
		t.Errorf("refused creates left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
