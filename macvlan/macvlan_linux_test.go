package macvlan

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/internal/vmlab"
)

// hostWithNIC is a throwaway namespace whose "lan0" (a veth end: the CI
// kernel has no dummy links) stands in for a NIC.
func hostWithNIC(t *testing.T) *testlab.NS {
	ns := testlab.NewNS(t)
	ns.MustRun(t, "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	ns.MustRun(t, "ip", "link", "set", "lan0", "up")
	return ns
}

// requireLinkType skips, or fails inside the full-kernel VM, when the
// kernel cannot make links of kind on lan0.
func requireLinkType(t *testing.T, ns *testlab.NS, feature string, args ...string) {
	t.Helper()
	out, err := ns.Run(append([]string{"ip", "link", "add", "wt-probe", "link", "lan0"}, args...)...)
	if err == nil {
		ns.MustRun(t, "ip", "link", "del", "wt-probe")
		return
	}
	if strings.Contains(out, "not supported") || strings.Contains(out, "Unknown device type") {
		vmlab.Missing(t, feature, errors.New(strings.TrimSpace(out)))
	}
	t.Fatal(err)
}

// TestChildRoundTrip: one child link of each kind: created down on its
// parent with its mode (and MAC, for macvlan), refused clearly when the
// name is taken, deleted.
func TestChildRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		spec ChildSpec
		want []string // in `ip -d link show`
	}{
		{ChildSpec{Kind: Macvlan, Name: "wmtest", Parent: "lan0", MTU: 1400, Mode: "private", MAC: net.HardwareAddr{2, 0x42, 10, 50, 0, 11}},
			[]string{"macvlan", "mode private", "mtu 1400", "link/ether 02:42:0a:32:00:0b", "wmtest@lan0"}},
		{ChildSpec{Kind: Ipvlan, Name: "witest", Parent: "lan0", Mode: "l3", Flag: "private"},
			[]string{"ipvlan", "mode l3", "private", "witest@lan0"}},
	} {
		t.Run(string(tc.spec.Kind), func(t *testing.T) {
			ns := hostWithNIC(t)
			if tc.spec.Kind == Ipvlan {
				requireLinkType(t, ns, "ipvlan links", "type", "ipvlan")
			}
			if err := CreateChild(ns.NL, tc.spec); err != nil {
				t.Fatal(err)
			}
			out := ns.MustRun(t, "ip", "-d", "link", "show", tc.spec.Name)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("child lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, ",UP") {
				t.Errorf("child is up; dockerd brings it up in the container:\n%s", out)
			}
			if err := CreateChild(ns.NL, tc.spec); !errors.Is(err, errdefs.Conflict) || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("the same child again: %v", err)
			}
			for range 2 {
				if err := ns.NL.DeleteLink(tc.spec.Name); err != nil {
					t.Fatal(err)
				}
			}
			if ok, _ := ns.NL.LinkExists(tc.spec.Name); ok {
				t.Error("child left after delete")
			}
		})
	}
}

// TestVLANRoundTrip: EnsureVLAN makes the 802.1q link up on its trunk and
// says so; again it finds it; a link of another type under the name is
// refused.
func TestVLANRoundTrip(t *testing.T) {
	ns := hostWithNIC(t)
	requireLinkType(t, ns, "802.1q VLAN links", "type", "vlan", "id", "5")
	p, err := ParseParent("lan0.10")
	if err != nil {
		t.Fatal(err)
	}
	for i, wantCreated := range []bool{true, false} {
		created, err := EnsureVLAN(ns.NL, p)
		if err != nil || created != wantCreated {
			t.Fatalf("call %d: created %v, %v; want %v", i+1, created, err, wantCreated)
		}
		if out := ns.MustRun(t, "ip", "-d", "link", "show", "lan0.10"); !strings.Contains(out, "vlan protocol 802.1Q id 10") || !strings.Contains(out, "UP") {
			t.Errorf("lan0.10:\n%s", out)
		}
	}
	ns.MustRun(t, "ip", "link", "add", "lan0.20", "type", "bridge")
	if _, err := EnsureVLAN(ns.NL, Parent{Name: "lan0.20", Base: "lan0", VLAN: 20}); !errors.Is(err, errdefs.Conflict) {
		t.Errorf("a bridge named lan0.20: %v", err)
	}
	if err := ns.NL.DeleteLink("lan0.10"); err != nil {
		t.Fatal(err)
	}
}

// TestPlaceholderRoundTrip: the parent of a network without one is a
// dummy link where the kernel has them, else an empty bridge; either is up
// and made once.
func TestPlaceholderRoundTrip(t *testing.T) {
	ns := testlab.NewNS(t)
	for range 2 {
		if err := EnsureDummy(ns.NL, "wd-test"); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ns.NL.LinkByName("wd-test")
	if err != nil {
		t.Fatal(err)
	}
	if (l.Type() != "dummy" && l.Type() != "bridge") || l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("placeholder is a %s link, flags %v", l.Type(), l.Attrs().Flags)
	}
	if err := ns.NL.DeleteLink("wd-test"); err != nil {
		t.Fatal(err)
	}
}

// TestShimRoundTrip: the host shim gets its address and comes up, routes
// to containers go through it, and removing a route twice is fine.
func TestShimRoundTrip(t *testing.T) {
	ns := hostWithNIC(t)
	spec := ShimSpec{Child: ChildSpec{Kind: Macvlan, Name: "wstest", Parent: "lan0", Mode: "bridge"}, Address: netip.MustParsePrefix("10.50.0.250/32")}
	for range 2 {
		if err := EnsureShim(ns.NL, spec); err != nil {
			t.Fatal(err)
		}
	}
	if out := ns.MustRun(t, "ip", "-o", "addr", "show", "dev", "wstest"); strings.Count(out, "10.50.0.250/32") != 1 {
		t.Errorf("shim addresses:\n%s", out)
	}
	ctr := netip.MustParseAddr("10.50.0.11")
	if err := RouteVia(ns.NL, "wstest", ctr); err != nil {
		t.Fatal(err)
	}
	if routes := ns.MustRun(t, "ip", "route"); !strings.Contains(routes, "10.50.0.11 dev wstest") {
		t.Errorf("no route to the container through the shim:\n%s", routes)
	}
	for range 2 {
		if err := Unroute(ns.NL, "wstest", ctr); err != nil {
			t.Fatal(err)
		}
	}
	if routes := ns.MustRun(t, "ip", "route"); strings.Contains(routes, "10.50.0.11") {
		t.Errorf("route left:\n%s", routes)
	}
	if err := ns.NL.DeleteLink("wstest"); err != nil {
		t.Fatal(err)
	}
	if err := Unroute(ns.NL, "wstest", ctr); err != nil {
		t.Errorf("unroute through a deleted shim: %v", err)
	}
}

// TestFindParent: a pattern picks the first usable interface by name, never
// one weft made; a subnet picks the interface holding an address in it.
func TestFindParent(t *testing.T) {
	ns := hostWithNIC(t)
	ns.NL.SetMark("test")
	if err := EnsureDummy(ns.NL, "lan-weft"); err != nil { // weft's: never a parent
		t.Fatal(err)
	}
	ns.MustRun(t, "ip", "link", "add", "lan2", "type", "veth", "peer", "name", "lan3")
	ns.MustRun(t, "ip", "addr", "add", "10.50.0.5/24", "dev", "lan2")
	for _, c := range []struct {
		pattern string
		subnet  string
		want    string
	}{
		{"lan*", "", "lan0"},
		{"lan*.10", "", "lan0.10"},
		{"", "10.50.0.0/24", "lan2"},
	} {
		var subnet netip.Prefix
		if c.subnet != "" {
			subnet = netip.MustParsePrefix(c.subnet)
		}
		if got, err := FindParent(ns.NL, c.pattern, subnet); err != nil || got != c.want {
			t.Errorf("FindParent(%q, %q) = %q, %v; want %q", c.pattern, c.subnet, got, err, c.want)
		}
	}
	if _, err := FindParent(ns.NL, "eth*", netip.Prefix{}); !errors.Is(err, errdefs.Invalid) {
		t.Errorf("a pattern matching nothing: %v", err)
	}
}
