package driver

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/internal/vmlab"
	"github.com/weftnet/weft/macvlan"
)

// lanHarness is a driver whose host has a NIC "lan0" wired to a LAN machine
// (namespace lan, 10.50.0.100 on "lan1"): a macvlan parent as on a real host.
type lanHarness struct {
	*harness
	lan *testlab.NS
}

func newLANHarness(t *testing.T) *lanHarness {
	h := &lanHarness{harness: newHarness(t), lan: testlab.NewNS(t)}
	testlab.Wire(t, h.ns, "lan0", h.lan, "lan1")
	h.lan.MustRun(t, "ip", "addr", "add", "10.50.0.100/24", "dev", "lan1")
	return h
}

// requireKernel skips when the kernel lacks a link type, with the reason;
// inside the full-kernel VM nothing may be missing, so it fails instead
// (vmlab.Missing).
func requireKernel(t *testing.T, h *harness, kind string) {
	t.Helper()
	name := "wt-probe"
	out, err := h.ns.Run("ip", "link", "add", name, "type", kind)
	if kind == "ipvlan" || kind == "vlan" {
		h.ns.MustRun(t, "ip", "link", "add", "wt-base", "type", "veth", "peer", "name", "wt-peer")
		defer h.ns.MustRun(t, "ip", "link", "del", "wt-base")
		args := map[string][]string{
			"ipvlan": {"ip", "link", "add", name, "link", "wt-base", "type", "ipvlan"},
			"vlan":   {"ip", "link", "add", name, "link", "wt-base", "type", "vlan", "id", "5"},
		}[kind]
		out, err = h.ns.Run(args...)
	}
	if err == nil {
		h.ns.MustRun(t, "ip", "link", "del", name)
	}
	if err != nil && strings.Contains(out, "not supported") || err != nil && strings.Contains(out, "Unknown device type") {
		vmlab.Missing(t, kind+" links", errors.New(strings.TrimSpace(out)))
	}
}

func macvlanReq(id string, generic map[string]string, subnet string) *NetworkRequest {
	pool := strings.TrimSuffix(subnet, ".0/24") + ".0/24"
	gw := strings.TrimSuffix(subnet, ".0/24") + ".1/24"
	req := createReq(generic, IPAMData{Pool: pool, Gateway: gw})
	req.NetworkID = id
	return req
}

// attach creates an endpoint, moves its link into a new "container"
// namespace as dockerd would after Join, and configures it there.
func (h *harness) attach(t *testing.T, netID, epID, cidr string, cidr6 ...string) *testlab.NS {
	t.Helper()
	req := &EndpointRequest{NetworkID: netID, EndpointID: epID, Address: cidr}
	if len(cidr6) > 0 {
		req.AddressIPv6 = cidr6[0]
	}
	resp, err := h.d.CreateEndpoint(req)
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	join, err := h.d.Join(netID, epID, "")
	if err != nil {
		t.Fatal(err)
	}
	c := testlab.NewNS(t)
	h.ns.MustRun(t, "ip", "link", "set", join.Link, "netns", c.Name)
	c.MustRun(t, "ip", "link", "set", join.Link, "name", "eth0")
	if resp.MAC != "" {
		c.MustRun(t, "ip", "link", "set", "eth0", "address", resp.MAC)
	}
	c.MustRun(t, "ip", "addr", "add", cidr, "dev", "eth0")
	for _, a := range cidr6 {
		c.MustRun(t, "ip", "addr", "add", a, "dev", "eth0", "nodad")
	}
	c.MustRun(t, "ip", "link", "set", "eth0", "up")
	for _, r := range join.Routes {
		c.MustRun(t, "ip", "route", "add", r.Destination.String(), "dev", "eth0")
	}
	return c
}

func pings(ns *testlab.NS, ip string) bool {
	_, err := ns.Run("busybox", "ping", "-c", "1", "-W", "1", ip)
	return err == nil
}

func TestMacvlanModesWithTraffic(t *testing.T) {
	for _, tt := range []struct {
		mode         string
		siblingsTalk bool
	}{
		{"bridge", true},
		{"private", false},
		{"vepa", false}, // the LAN side does not reflect frames back (no hairpin upstream)
	} {
		t.Run(tt.mode, func(t *testing.T) {
			h := newLANHarness(t)
			req := macvlanReq(netID, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0", macvlan.OptMacvlanMode: tt.mode}, "10.50.0.0/24")
			if err := h.d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			c1 := h.attach(t, netID, epID, "10.50.0.11/24")
			h.attach(t, netID, "cccccccccccc3333", "10.50.0.12/24")
			if !pings(c1, "10.50.0.100") {
				t.Errorf("macvlan %s: container cannot reach the LAN", tt.mode)
			}
			if !pings(h.lan, "10.50.0.12") {
				t.Errorf("macvlan %s: the LAN cannot reach the container", tt.mode)
			}
			if got := pings(c1, "10.50.0.12"); got != tt.siblingsTalk {
				t.Errorf("macvlan %s: containers on one parent reach each other = %v, want %v", tt.mode, got, tt.siblingsTalk)
			}
			if pings(h.ns, "10.50.0.11") {
				t.Errorf("the host reaches its macvlan container without a shim; the kernel should keep them apart")
			}
		})
	}
}

func TestMacvlanPassthruTakesOneContainer(t *testing.T) {
	h := newLANHarness(t)
	req := macvlanReq(netID, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0", macvlan.OptMacvlanMode: "passthru"}, "10.50.0.0/24")
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	c1 := h.attach(t, netID, epID, "10.50.0.11/24")
	if !pings(c1, "10.50.0.100") {
		t.Error("passthru container cannot reach the LAN")
	}
	_, err := h.d.CreateEndpoint(&EndpointRequest{NetworkID: netID, EndpointID: "dddddddddddd4444", Address: "10.50.0.12/24"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "single container") {
		t.Fatalf("second passthru container: %v", err)
	}
	if ok, _ := h.ns.NL.LinkExists(macvlan.ChildName(macvlan.Macvlan, "dddddddddddd4444")); ok {
		t.Error("refused endpoint left its link behind")
	}
}

// TestHostShim: with host_shim the host reaches its own macvlan containers.
func TestHostShim(t *testing.T) {
	h := newLANHarness(t)
	req := macvlanReq(netID, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0", macvlan.OptHostShim: "10.50.0.250"}, "10.50.0.0/24")
	req.IPv4Data[0].AuxAddresses = map[string]string{"host": "10.50.0.250/24"}
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	c1 := h.attach(t, netID, epID, "10.50.0.11/24")
	if !pings(h.ns, "10.50.0.11") {
		t.Error("the host cannot reach its container through the shim")
	}
	if !pings(c1, "10.50.0.250") {
		t.Error("the container cannot reach the host's shim address")
	}
	if err := h.d.DeleteEndpoint(netID, epID); err != nil {
		t.Fatal(err)
	}
	if routes := h.ns.MustRun(t, "ip", "route"); strings.Contains(routes, "10.50.0.11") {
		t.Errorf("route to the deleted container left behind:\n%s", routes)
	}
	if err := h.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.ns.NL.LinkExists(macvlan.ShimName(netID)); ok {
		t.Error("shim left after the network was deleted")
	}
}

// TestNoParentIsInternal: without a parent the network gets a private
// placeholder; its containers reach each other and nothing else, and the
// placeholder goes with the network.
func TestNoParentIsInternal(t *testing.T) {
	for _, mode := range []string{netmode.Macvlan, netmode.Ipvlan} {
		t.Run(mode, func(t *testing.T) {
			h := newLANHarness(t)
			if mode == netmode.Ipvlan {
				requireKernel(t, h.harness, "ipvlan")
			}
			req := macvlanReq(netID, map[string]string{OptMode: mode}, "10.51.0.0/24")
			req.Internal = true
			if err := h.d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			c1 := h.attach(t, netID, epID, "10.51.0.11/24")
			h.attach(t, netID, "cccccccccccc3333", "10.51.0.12/24")
			if !pings(c1, "10.51.0.12") {
				t.Error("containers of an internal network cannot reach each other")
			}
			if err := h.d.DeleteNetwork(netID); err != nil {
				t.Fatal(err)
			}
			if ok, _ := h.ns.NL.LinkExists(macvlan.PlaceholderName(netID)); ok {
				t.Error("placeholder parent left after the network was deleted")
			}
		})
	}
}

func TestMacvlanBadParents(t *testing.T) {
	h := newLANHarness(t)
	h.ns.MustRun(t, "ip", "link", "add", "br-test", "type", "bridge")
	h.ns.MustRun(t, "ip", "link", "add", "port0", "type", "veth", "peer", "name", "port1")
	h.ns.MustRun(t, "ip", "link", "set", "port0", "master", "br-test")
	h.ns.MustRun(t, "ip", "link", "set", "lan0", "mtu", "1500")
	tests := []struct {
		name    string
		generic map[string]string
		want    []string
	}{
		{"missing", map[string]string{macvlan.OptParent: "eth9"}, []string{`"eth9"`, "parent", "no interface"}},
		{"loopback", map[string]string{macvlan.OptParent: "lo"}, []string{`"lo"`, "loopback"}},
		{"bridge port", map[string]string{macvlan.OptParent: "port0"}, []string{`"port0"`, "port of br-test"}},
		{"vlan 0", map[string]string{macvlan.OptParent: "lan0.0"}, []string{"VLAN id 0", "1 to 4094"}},
		{"vlan 4095", map[string]string{macvlan.OptParent: "lan0.4095"}, []string{"VLAN id 4095", "1 to 4094"}},
		{"vlan name too long", map[string]string{macvlan.OptParent: "verylongname.100"}, []string{"parent", "at most 15"}},
		{"mtu above parent", map[string]string{macvlan.OptParent: "lan0", netmode.OptMTU: "9000"}, []string{"9000", "MTU 1500 of parent lan0"}},
		{"bad macvlan mode", map[string]string{macvlan.OptParent: "lan0", macvlan.OptMacvlanMode: "bridged"}, []string{"macvlan_mode", "bridge, passthru, private, vepa"}},
		{"bridge option", map[string]string{macvlan.OptParent: "lan0", bridge.OptICC: "false"}, []string{bridge.OptICC, "applies to mode=bridge", "mode=macvlan accepts"}},
		{"shim not reserved", map[string]string{macvlan.OptParent: "lan0", macvlan.OptHostShim: "10.50.0.250"}, []string{"--aux-address host=10.50.0.250"}},
		{"shim outside", map[string]string{macvlan.OptParent: "lan0", macvlan.OptHostShim: "10.9.0.250"}, []string{macvlan.OptHostShim, "inside the network's --subnet"}},
	}
	before := h.ns.MustRun(t, "ip", "-o", "link")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.generic[OptMode] = netmode.Macvlan
			err := h.d.CreateNetwork(macvlanReq(netID, tt.generic, "10.50.0.0/24"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if after := h.ns.MustRun(t, "ip", "-o", "link"); linkNames(after) != linkNames(before) {
		t.Errorf("refused creates left links:\nbefore %s\nafter  %s", linkNames(before), linkNames(after))
	}
	h.restart(t)
	if len(h.d.networks) != 0 {
		t.Errorf("refused creates left %d stored networks", len(h.d.networks))
	}
}

// TestOneParentOneKind: a parent carries macvlan or ipvlan networks, and a
// passthru network needs its parent alone; several bridge-mode macvlan
// networks share one parent.
func TestOneParentOneKind(t *testing.T) {
	h := newLANHarness(t)
	if err := h.d.CreateNetwork(macvlanReq("n1", map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0"}, "10.50.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := h.d.CreateNetwork(macvlanReq("n2", map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0"}, "10.52.0.0/24")); err != nil {
		t.Fatalf("a second macvlan network on the same parent: %v", err)
	}
	err := h.d.CreateNetwork(macvlanReq("n3", map[string]string{OptMode: netmode.Ipvlan, macvlan.OptParent: "lan0"}, "10.53.0.0/24"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "either macvlan or ipvlan") {
		t.Errorf("ipvlan on a macvlan parent: %v", err)
	}
	err = h.d.CreateNetwork(macvlanReq("n4", map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0", macvlan.OptMacvlanMode: "passthru"}, "10.54.0.0/24"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "passthru needs a parent of its own") {
		t.Errorf("passthru on a shared parent: %v", err)
	}
}

// TestVLANParent: parent=lan0.10 makes the 802.1q link, shared by networks
// using it, deleted with the last of them; a link the user made stays.
func TestVLANParent(t *testing.T) {
	h := newLANHarness(t)
	requireKernel(t, h.harness, "vlan")
	for _, id := range []string{"n1", "n2"} {
		subnet := map[string]string{"n1": "10.60.0.0/24", "n2": "10.61.0.0/24"}[id]
		if err := h.d.CreateNetwork(macvlanReq(id, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0.10"}, subnet)); err != nil {
			t.Fatal(err)
		}
	}
	if out := h.ns.MustRun(t, "ip", "-d", "link", "show", "lan0.10"); !strings.Contains(out, "vlan protocol 802.1Q id 10") {
		t.Fatalf("lan0.10 is not VLAN 10: %s", out)
	}
	// Traffic on VLAN 10 reaches a LAN machine on VLAN 10 only.
	h.lan.MustRun(t, "ip", "link", "add", "link", "lan1", "name", "lan1.10", "type", "vlan", "id", "10")
	h.lan.MustRun(t, "ip", "addr", "add", "10.60.0.100/24", "dev", "lan1.10")
	h.lan.MustRun(t, "ip", "link", "set", "lan1.10", "up")
	c1 := h.attach(t, "n1", epID, "10.60.0.11/24")
	if !pings(c1, "10.60.0.100") {
		t.Error("container on VLAN 10 cannot reach the LAN machine on VLAN 10")
	}
	if pings(c1, "10.50.0.100") {
		t.Error("container on VLAN 10 reaches the untagged LAN")
	}
	must(t, h.d.DeleteEndpoint("n1", epID))
	must(t, h.d.DeleteNetwork("n1"))
	if ok, _ := h.ns.NL.LinkExists("lan0.10"); !ok {
		t.Fatal("lan0.10 deleted while network n2 still uses it")
	}
	h.restart(t) // ownership survives a plugin restart
	must(t, h.d.DeleteNetwork("n2"))
	if ok, _ := h.ns.NL.LinkExists("lan0.10"); ok {
		t.Fatal("lan0.10, made by weft, left after its last network was deleted")
	}
	// A VLAN link the user made is used and left alone.
	h.ns.MustRun(t, "ip", "link", "add", "link", "lan0", "name", "lan0.20", "type", "vlan", "id", "20")
	if err := h.d.CreateNetwork(macvlanReq("n3", map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0.20"}, "10.62.0.0/24")); err != nil {
		t.Fatal(err)
	}
	must(t, h.d.DeleteNetwork("n3"))
	if ok, _ := h.ns.NL.LinkExists("lan0.20"); !ok {
		t.Fatal("weft deleted a VLAN link the user made")
	}
}

// TestVLANUnsupportedKernel: where the kernel has no 802.1q, parent=x.10 is
// refused clearly at create time and leaves nothing.
func TestVLANUnsupportedKernel(t *testing.T) {
	h := newLANHarness(t)
	if _, err := h.ns.Run("ip", "link", "add", "link", "lan0", "name", "lan0.99", "type", "vlan", "id", "99"); err == nil {
		h.ns.MustRun(t, "ip", "link", "del", "lan0.99")
		t.Skip("this kernel has 802.1q; TestVLANParent covers it")
	}
	err := h.d.CreateNetwork(macvlanReq(netID, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: "lan0.10"}, "10.60.0.0/24"))
	if err == nil || !strings.Contains(err.Error(), "802.1q") {
		t.Fatalf("VLAN parent on a kernel without 802.1q: %v", err)
	}
	h.restart(t)
	if len(h.d.networks) != 0 {
		t.Error("refused create left a stored network")
	}
}

// TestIpvlanModesWithTraffic: l2 containers use the LAN's gateway; l3 ones
// route through the parent with a connected default route and no gateway.
func TestIpvlanModesWithTraffic(t *testing.T) {
	for _, mode := range []string{"l2", "l3", "l3s"} {
		t.Run(mode, func(t *testing.T) {
			h := newLANHarness(t)
			requireKernel(t, h.harness, "ipvlan")
			req := macvlanReq(netID, map[string]string{OptMode: netmode.Ipvlan, macvlan.OptParent: "lan0", macvlan.OptIpvlanMode: mode}, "10.50.0.0/24")
			if err := h.d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			c1 := h.attach(t, netID, epID, "10.50.0.11/24")
			c2 := h.attach(t, netID, "cccccccccccc3333", "10.50.0.12/24")
			join, _ := h.d.Join(netID, epID, "")
			if mode == "l2" {
				if text(join.Gateway) != "10.50.0.1" || len(join.Routes) != 0 {
					t.Errorf("l2 join %+v: want gateway 10.50.0.1", join)
				}
			} else if text(join.Gateway) != "" || len(join.Routes) != 1 || join.Routes[0].Destination.String() != "0.0.0.0/0" {
				t.Errorf("%s join %+v: want no gateway and a connected default route", mode, join)
			}
			if !pings(c1, "10.50.0.12") {
				t.Errorf("ipvlan %s: containers on one parent cannot reach each other", mode)
			}
			_ = c2
			if mode == "l2" && !pings(c1, "10.50.0.100") {
				t.Error("ipvlan l2: container cannot reach the LAN")
			}
		})
	}
}

func linkNames(ipLinkOutput string) string {
	var names []string
	for _, l := range strings.Split(ipLinkOutput, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return fmt.Sprint(names)
}

// TestTwoVLANsIsolated: the seeds' vlan10 and vlan20 networks on one
// parent: a LAN machine with an address of vlan10's subnet but on VLAN 20 is
// out of reach of vlan10's containers, one on VLAN 10 is reachable.
func TestTwoVLANsIsolated(t *testing.T) {
	h := newLANHarness(t)
	requireKernel(t, h.harness, "vlan")
	for id, spec := range map[string][2]string{"vlan10": {"lan0.10", "10.60.0.0/24"}, "vlan20": {"lan0.20", "10.61.0.0/24"}} {
		if err := h.d.CreateNetwork(macvlanReq(id, map[string]string{OptMode: netmode.Macvlan, macvlan.OptParent: spec[0]}, spec[1])); err != nil {
			t.Fatal(err)
		}
	}
	// Two LAN machines on one trunk: the VLAN 20 one gets a namespace of its
	// own, or Linux would answer for both addresses on either VLAN.
	vlan20Host := testlab.NewNS(t)
	for vid, m := range map[string]struct {
		ns   *testlab.NS
		addr string
	}{"10": {h.lan, "10.60.0.100/24"}, "20": {vlan20Host, "10.60.0.200/24"}} {
		h.lan.MustRun(t, "ip", "link", "add", "link", "lan1", "name", "lan1."+vid, "type", "vlan", "id", vid)
		if m.ns != h.lan {
			h.lan.MustRun(t, "ip", "link", "set", "lan1."+vid, "netns", m.ns.Name)
		}
		m.ns.MustRun(t, "ip", "addr", "add", m.addr, "dev", "lan1."+vid)
		m.ns.MustRun(t, "ip", "link", "set", "lan1."+vid, "up")
	}
	c10 := h.attach(t, "vlan10", epID, "10.60.0.11/24")
	c20 := h.attach(t, "vlan20", "cccccccccccc3333", "10.61.0.11/24")
	if !pings(c10, "10.60.0.100") {
		t.Error("vlan10 container cannot reach the LAN machine on VLAN 10")
	}
	if pings(c10, "10.60.0.200") {
		t.Error("vlan10 container reaches a machine on VLAN 20: the VLANs are not isolated")
	}
	if pings(c20, "10.60.0.100") {
		t.Error("vlan20 container reaches VLAN 10")
	}
}

// TestIpvlanPrivateFlag: ipvlan_flag=private keeps a parent's containers
// apart while they still reach the LAN.
func TestIpvlanPrivateFlag(t *testing.T) {
	h := newLANHarness(t)
	requireKernel(t, h.harness, "ipvlan")
	req := macvlanReq(netID, map[string]string{OptMode: netmode.Ipvlan, macvlan.OptParent: "lan0", macvlan.OptIpvlanFlag: "private"}, "10.50.0.0/24")
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	c1 := h.attach(t, netID, epID, "10.50.0.11/24")
	h.attach(t, netID, "cccccccccccc3333", "10.50.0.12/24")
	if !pings(c1, "10.50.0.100") {
		t.Error("ipvlan private: container cannot reach the LAN")
	}
	if pings(c1, "10.50.0.12") {
		t.Error("ipvlan private: containers on one parent reach each other")
	}
}

// TestMacvlanIpvlanDualStackAndMTU: IPv6 beside IPv4 and a set MTU, with
// traffic, on both kinds of child link.
func TestMacvlanIpvlanDualStackAndMTU(t *testing.T) {
	for _, mode := range []string{netmode.Macvlan, netmode.Ipvlan} {
		t.Run(mode, func(t *testing.T) {
			h := newLANHarness(t)
			if mode == netmode.Ipvlan {
				requireKernel(t, h.harness, "ipvlan")
			}
			h.lan.MustRun(t, "ip", "addr", "add", "fd00:50::100/64", "dev", "lan1", "nodad")
			req := macvlanReq(netID, map[string]string{OptMode: mode, macvlan.OptParent: "lan0", netmode.OptMTU: "1400"}, "10.50.0.0/24")
			req.IPv6 = true
			req.IPv6Data = []IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
			if err := h.d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			c1 := h.attach(t, netID, epID, "10.50.0.11/24", "fd00:50::11/64")
			h.attach(t, netID, "cccccccccccc3333", "10.50.0.12/24", "fd00:50::12/64")
			if mtu := strings.TrimSpace(c1.MustRun(t, "cat", "/sys/class/net/eth0/mtu")); mtu != "1400" {
				t.Errorf("container link MTU %s, want 1400", mtu)
			}
			for _, target := range []string{"fd00:50::12", "fd00:50::100"} {
				if _, err := c1.Run("busybox", "ping", "-6", "-c", "1", "-W", "2", target); err != nil {
					t.Errorf("%s: IPv6 ping to %s failed: %v", mode, target, err)
				}
			}
			join, _ := h.d.Join(netID, epID, "")
			if text(join.GatewayIPv6) != "fd00:50::1" {
				t.Errorf("join %+v: want the IPv6 gateway fd00:50::1", join)
			}
		})
	}
}

// TestParentFoundPerHost: a pattern or the subnet an interface sits on finds
// this host's parent (what lets one swarm network span hosts whose NICs have
// different names); the choice is kept across restarts.
func TestParentFoundPerHost(t *testing.T) {
	h := newLANHarness(t)
	h.ns.MustRun(t, "ip", "addr", "add", "10.50.0.5/24", "dev", "lan0")
	for id, opt := range map[string]map[string]string{
		"by-pattern": {OptMode: netmode.Macvlan, macvlan.OptParent: "la*"},
		"by-subnet":  {OptMode: netmode.Macvlan, macvlan.OptParentSubnet: "10.50.0.0/24"},
	} {
		if err := h.d.CreateNetwork(macvlanReq(id, opt, map[string]string{"by-pattern": "10.56.0.0/24", "by-subnet": "10.57.0.0/24"}[id])); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := h.d.networks[id].mode.(*macvlan.Network).ParentLink(); got != "lan0" {
			t.Errorf("%s found parent %q, want lan0", id, got)
		}
	}
	h.attach(t, "by-subnet", epID, "10.57.0.11/24")
	h.restart(t)
	if got := h.d.networks["by-subnet"].mode.(*macvlan.Network).State.ResolvedParent; got != "lan0" {
		t.Errorf("after restart the resolved parent is %q, want lan0", got)
	}
	err := h.d.CreateNetwork(macvlanReq("none", map[string]string{OptMode: netmode.Macvlan, macvlan.OptParentSubnet: "10.99.0.0/24"}, "10.58.0.0/24"))
	if err == nil || !strings.Contains(err.Error(), "no interface of this host has an address in it") {
		t.Errorf("parent_subnet matching nothing: %v", err)
	}
}

// TestIpvlanVLANRestoreAfterReboot: after a reboot (links gone, store kept)
// a restarted weft rebuilds the VLAN parent it made; dockerd's deletes of
// the dead endpoint and the network then succeed and remove it again.
func TestIpvlanVLANRestoreAfterReboot(t *testing.T) {
	h := newLANHarness(t)
	requireKernel(t, h.harness, "ipvlan")
	requireKernel(t, h.harness, "vlan")
	req := macvlanReq(netID, map[string]string{OptMode: netmode.Ipvlan, macvlan.OptParent: "lan0.30"}, "10.63.0.0/24")
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	h.attach(t, netID, epID, "10.63.0.11/24")
	h.ns.MustRun(t, "ip", "link", "del", "lan0.30") // the reboot: the VLAN and its children are gone
	h.restart(t)
	if out := h.ns.MustRun(t, "ip", "-d", "link", "show", "lan0.30"); !strings.Contains(out, "id 30") {
		t.Fatalf("VLAN parent not rebuilt from the store: %s", out)
	}
	h.attach(t, netID, "cccccccccccc3333", "10.63.0.12/24") // a restarted container joins again
	for _, ep := range []string{epID, "cccccccccccc3333"} {
		if err := h.d.DeleteEndpoint(netID, ep); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.ns.NL.LinkExists("lan0.30"); ok {
		t.Error("VLAN parent weft made left after its network was deleted")
	}
}
