package vxlan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/internal/testlab"
)

// hostWithUnderlay is a throwaway namespace with an underlay link under0 at
// 10.90.0.1/24 (a veth end standing in for the NIC) and a bridge wf-test.
func hostWithUnderlay(t *testing.T) *testlab.NS {
	ns := testlab.NewNS(t)
	ns.MustRun(t, "ip", "link", "add", "under0", "type", "veth", "peer", "name", "under1")
	ns.MustRun(t, "ip", "addr", "add", "10.90.0.1/24", "dev", "under0")
	ns.MustRun(t, "ip", "link", "set", "under0", "up")
	if err := bridge.Ensure(ns.NL, bridge.Spec{Name: "wf-test"}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestEnsureRoundTrip: Ensure makes the VXLAN device on the bridge, up; a
// second Ensure keeps it (same ifindex); a device of another VNI is rebuilt;
// the device deletes.
func TestEnsureRoundTrip(t *testing.T) {
	ns := hostWithUnderlay(t)
	spec := Spec{Name: "wx-test", VNI: 4242, Port: 4789, Local: netip.MustParseAddr("10.90.0.1"), Underlay: "under0", Bridge: "wf-test", MTU: 1450}
	index := func() int {
		t.Helper()
		l, err := ns.NL.LinkByName(spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	check := func(want ...string) {
		t.Helper()
		out := ns.MustRun(t, "ip", "-d", "link", "show", spec.Name)
		for _, w := range append(want, "dstport 4789", "local 10.90.0.1", "dev under0", "master wf-test", "mtu 1450", ",UP") {
			if !strings.Contains(out, w) {
				t.Errorf("vxlan device lacks %q:\n%s", w, out)
			}
		}
	}
	if err := Ensure(ns.NL, spec); err != nil {
		t.Fatal(err)
	}
	check("vxlan id 4242")
	first := index()
	if err := Ensure(ns.NL, spec); err != nil {
		t.Fatal(err)
	}
	if index() != first {
		t.Error("a second Ensure rebuilt the device")
	}
	spec.VNI = 4343
	if err := Ensure(ns.NL, spec); err != nil {
		t.Fatal(err)
	}
	check("vxlan id 4343")
	for range 2 {
		if err := ns.NL.DeleteLink(spec.Name); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSetPeers: the flood list becomes exactly the peers given, again and
// again; a peer dropped takes the MACs learnt behind it along.
func TestSetPeers(t *testing.T) {
	ns := hostWithUnderlay(t)
	if err := Ensure(ns.NL, Spec{Name: "wx-test", VNI: 42, Port: 4789, Local: netip.MustParseAddr("10.90.0.1"), Underlay: "under0", Bridge: "wf-test"}); err != nil {
		t.Fatal(err)
	}
	p2, p3 := netip.MustParseAddr("10.90.0.2"), netip.MustParseAddr("10.90.0.3")
	fdb := func() string { return ns.MustRun(t, "bridge", "fdb", "show", "dev", "wx-test") }
	for range 2 {
		if err := SetPeers(ns.NL, "wx-test", []netip.Addr{p2, p3}); err != nil {
			t.Fatal(err)
		}
		if out := fdb(); strings.Count(out, "00:00:00:00:00:00 dst 10.90.0.2") != 1 || strings.Count(out, "00:00:00:00:00:00 dst 10.90.0.3") != 1 {
			t.Fatalf("flood list:\n%s", out)
		}
	}
	ns.MustRun(t, "bridge", "fdb", "add", "02:42:0a:5b:00:05", "dev", "wx-test", "dst", "10.90.0.3", "self", "dynamic")
	if err := SetPeers(ns.NL, "wx-test", []netip.Addr{p2}); err != nil {
		t.Fatal(err)
	}
	if out := fdb(); strings.Contains(out, "10.90.0.3") || !strings.Contains(out, "dst 10.90.0.2") {
		t.Errorf("after dropping 10.90.0.3:\n%s", out)
	}
}

// TestUnderlay: the three ways a network names where its tunnel leaves:
// the route to the first other peer, a device by name, the device holding
// the swarm address; and their refusals.
func TestUnderlay(t *testing.T) {
	ns := hostWithUnderlay(t)
	ns.MustRun(t, "ip", "link", "add", "bare0", "type", "veth", "peer", "name", "bare1")
	self := netip.MustParseAddr("10.90.0.1")
	want := underlay{dev: "under0", local: self, mtu: 1500}
	for name, find := range map[string]func() (underlay, error){
		"routed":  func() (underlay, error) { return routed(ns.NL, []netip.Addr{self, netip.MustParseAddr("10.90.0.2")}) },
		"named":   func() (underlay, error) { return named(ns.NL, "under0") },
		"holding": func() (underlay, error) { return holding(ns.NL, self) },
	} {
		if got, err := find(); err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}
	for name, c := range map[string]struct {
		find func() (underlay, error)
		want string
	}{
		"only this host": {func() (underlay, error) { return routed(ns.NL, []netip.Addr{self}) }, "every VXLAN peer given is an address of this host"},
		"no route":       {func() (underlay, error) { return routed(ns.NL, []netip.Addr{netip.MustParseAddr("10.250.0.2")}) }, "no route to VXLAN peer 10.250.0.2"},
		"missing device": {func() (underlay, error) { return named(ns.NL, "eth9") }, `invalid value "eth9" for option underlay: no interface of that name`},
		"no address":     {func() (underlay, error) { return named(ns.NL, "bare0") }, "it has no IPv4 address to send VXLAN from"},
		"not held":       {func() (underlay, error) { return holding(ns.NL, netip.MustParseAddr("10.99.0.1")) }, "no interface of this host holds the swarm address 10.99.0.1"},
	} {
		if _, err := c.find(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
