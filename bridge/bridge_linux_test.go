package bridge

import (
	"errors"
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
