package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testlab"
)

// TestEnsureRoundTrip: Ensure makes a bridge, up, with its MTU, stable MAC
// and gateway addresses; a second Ensure changes nothing and fails nothing;
// a link of another type under the name is refused; the bridge deletes.
func TestEnsureRoundTrip(t *testing.T) {
	ns := testlab.NewNS(t)
	spec := Spec{Name: "wf-test", MTU: 1400, Seed: "net-1", Addresses: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd00:1::1/64"),
	}}
	for range 2 {
		if err := Ensure(ns.NL, spec); err != nil {
			t.Fatal(err)
		}
		l, err := ns.NL.LinkByName(spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Type() != "bridge" || l.Attrs().MTU != 1400 || l.Attrs().Flags&net.FlagUp == 0 || l.Attrs().HardwareAddr.String() != stableMAC("net-1").String() {
			t.Errorf("bridge %s %+v", l.Type(), l.Attrs())
		}
		addrs := ns.MustRun(t, "ip", "-o", "addr", "show", "dev", spec.Name)
		for _, want := range []string{"10.1.0.1/24", "fd00:1::1/64"} {
			if strings.Count(addrs, want) != 1 {
				t.Errorf("bridge holds %q %d times, want once:\n%s", want, strings.Count(addrs, want), addrs)
			}
		}
	}
	if mac := stableMAC("net-1"); mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
		t.Errorf("MAC %s is not locally administered unicast", mac)
	}
	ns.MustRun(t, "ip", "link", "add", "wf-taken", "type", "veth", "peer", "name", "wf-taken1")
	if err := Ensure(ns.NL, Spec{Name: "wf-taken"}); !errors.Is(err, ErrExists) {
		t.Errorf("Ensure over a veth: %v, want ErrExists", err)
	}
	if err := ns.NL.DeleteLink(spec.Name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := ns.NL.LinkExists(spec.Name); ok {
		t.Error("bridge left after delete")
	}
}

// TestVethRoundTrip: CreateVeth puts the host end on the bridge, up, with
// hairpin on, and leaves the container end down with its MAC; the same
// pair again is refused and leaves the first alone; deleting one end
// deletes both.
func TestVethRoundTrip(t *testing.T) {
	ns := testlab.NewNS(t)
	if err := Ensure(ns.NL, Spec{Name: "wf-test"}); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:42:0a:01:00:02")
	spec := VethSpec{Host: "whtest", Container: "wctest", Bridge: "wf-test", MTU: 1400, MAC: mac}
	if err := CreateVeth(ns.NL, spec); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		host := ns.MustRun(t, "ip", "-d", "link", "show", spec.Host)
		for _, want := range []string{"master wf-test", "mtu 1400", "hairpin on", ",UP"} {
			if !strings.Contains(host, want) {
				t.Errorf("host end lacks %q:\n%s", want, host)
			}
		}
		ctr := ns.MustRun(t, "ip", "link", "show", spec.Container)
		if !strings.Contains(ctr, "link/ether 02:42:0a:01:00:02") || strings.Contains(ctr, ",UP") {
			t.Errorf("container end:\n%s", ctr)
		}
	}
	check()
	if err := CreateVeth(ns.NL, spec); err == nil {
		t.Error("a second pair with the same names was made")
	}
	check()
	if err := CreateVeth(ns.NL, VethSpec{Host: "whother", Container: "wcother", Bridge: "wf-missing"}); err == nil {
		t.Error("a pair on a missing bridge was made")
	} else if ok, _ := ns.NL.LinkExists("whother"); ok {
		t.Error("a failed CreateVeth left its host end")
	}
	if err := ns.NL.DeleteLink(spec.Host); err != nil {
		t.Fatal(err)
	}
	if ok, _ := ns.NL.LinkExists(spec.Container); ok {
		t.Error("container end left after the host end was deleted")
	}
}

// TestIsolatedPorts: containers on isolated ports (icc=false) cannot reach
// each other, in the bridge itself: the namespace has no iptables rules and
// br_netfilter's hand-over off, as on a Docker 27.3+ host that never loaded
// it. The gateway and a container on a port that is not isolated stay
// reachable (the controls).
func TestIsolatedPorts(t *testing.T) {
	ns := testlab.NewNS(t)
	if err := Ensure(ns.NL, Spec{Name: "wf-iso", Addresses: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	// Absent where the module is not loaded; then nothing is handed over.
	_, _ = ns.Run("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=0")
	ctr := func(i int, isolated bool) *testlab.NS {
		c := testlab.NewNS(t)
		host, inside := fmt.Sprintf("whiso%d", i), fmt.Sprintf("wciso%d", i)
		if err := CreateVeth(ns.NL, VethSpec{Host: host, Container: inside, Bridge: "wf-iso", Isolated: isolated}); err != nil {
			t.Fatal(err)
		}
		ns.MustRun(t, "ip", "link", "set", inside, "netns", c.Name)
		c.MustRun(t, "ip", "addr", "add", fmt.Sprintf("10.9.0.%d/24", 10+i), "dev", inside)
		c.MustRun(t, "ip", "link", "set", inside, "up")
		return c
	}
	a, b := ctr(1, true), ctr(2, true)
	ctr(3, false) // the open port
	if out := ns.MustRun(t, "ip", "-d", "link", "show", "whiso1"); !strings.Contains(out, "isolated on") {
		t.Errorf("isolated port:\n%s", out)
	}
	ping := func(from *testlab.NS, to string) bool {
		out, err := from.Run("busybox", "ping", "-c", "2", "-W", "2", to)
		if err != nil && !strings.Contains(out, "packets received") {
			t.Fatalf("ping %s proves nothing: %v %s", to, err, out)
		}
		return err == nil
	}
	if !ping(a, "10.9.0.1") {
		t.Error("an isolated container does not reach the gateway")
	}
	if !ping(a, "10.9.0.13") {
		t.Error("an isolated container does not reach a container on an open port")
	}
	if ping(a, "10.9.0.12") || ping(b, "10.9.0.11") {
		t.Error("two containers on isolated ports reach each other")
	}
}
