package driver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

// vxlanReq is a vxlan network on 10.91.0.0/24 between the underlay peers.
// Options set to unset are left out.
func vxlanReq(generic map[string]string) *NetworkRequest {
	g := map[string]string{OptMode: netmode.VXLAN, vxlan.OptVNI: "4242", vxlan.OptPeers: "10.90.0.1,10.90.0.2,10.90.0.3"}
	for k, v := range generic {
		if v == unset {
			delete(g, k)
		} else {
			g[k] = v
		}
	}
	req := createReq(g, IPAMData{Pool: "10.91.0.0/24", Gateway: "10.91.0.1/24"})
	req.NetworkID = netID
	return req
}

// unset marks an option vxlanReq leaves out.
const unset = "\x00unset"

// TestVXLANAcrossHosts: two hosts with weft, one plain Linux VXLAN endpoint;
// containers on different hosts and the plain device reach each other.
func TestVXLANAcrossHosts(t *testing.T) {
	h1, h2 := newHarness(t), newHarness(t)
	plain := testlab.NewNS(t)
	wireUnderlay(t, h1.ns, h2.ns, plain)
	for _, h := range []*harness{h1, h2} {
		if err := h.d.CreateNetwork(vxlanReq(nil)); err != nil {
			t.Fatal(err)
		}
	}
	out := h1.ns.MustRun(t, "ip", "-d", "link", "show", vxlan.Name(netID))
	for _, want := range []string{"vxlan id 4242", "dstport 4789", "mtu 1450", "master wf-aaaaaaaaaaaa"} {
		if !strings.Contains(out, want) {
			t.Errorf("vxlan device lacks %q:\n%s", want, out)
		}
	}
	if fdb := h1.ns.MustRun(t, "bridge", "fdb", "show", "dev", vxlan.Name(netID)); !strings.Contains(fdb, "dst 10.90.0.2") || strings.Contains(fdb, "dst 10.90.0.1 ") {
		t.Errorf("flood list must hold the peers but not the host itself:\n%s", fdb)
	}
	c1 := h1.attach(t, netID, epID, "10.91.0.11/24")
	h2.attach(t, netID, "cccccccccccc3333", "10.91.0.12/24")
	if !pings(c1, "10.91.0.12") {
		t.Error("containers on two hosts cannot reach each other over VXLAN")
	}
	// Standard VXLAN: a plain Linux device with the same VNI and peers.
	plain.MustRun(t, "ip", "link", "add", "vx0", "type", "vxlan", "id", "4242", "dstport", "4789", "local", "10.90.0.3", "dev", "under0")
	for _, peer := range []string{"10.90.0.1", "10.90.0.2"} {
		plain.MustRun(t, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", peer)
	}
	plain.MustRun(t, "ip", "addr", "add", "10.91.0.99/24", "dev", "vx0")
	plain.MustRun(t, "ip", "link", "set", "vx0", "mtu", "1450", "up")
	if !pings(plain, "10.91.0.11") || !pings(plain, "10.91.0.12") {
		t.Error("a plain Linux VXLAN device with the same VNI cannot reach weft's containers")
	}
	// Deleting the network removes the device and the bridge.
	must(t, h1.d.DeleteEndpoint(netID, epID))
	if err := h1.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	if h1.linkExists(t, vxlan.Name(netID)) || h1.linkExists(t, "wf-aaaaaaaaaaaa") {
		t.Error("vxlan device or bridge left after DeleteNetwork")
	}
}

// TestVXLANMulticastGroup: with -o group, the hosts find each other through
// the multicast group on the underlay, and the kernel's flood entry for the
// group stays in place.
func TestVXLANMulticastGroup(t *testing.T) {
	h1, h2 := newHarness(t), newHarness(t)
	wireUnderlay(t, h1.ns, h2.ns)
	group := map[string]string{vxlan.OptPeers: unset, vxlan.OptGroup: "239.1.1.1", vxlan.OptUnderlay: "under0"}
	for _, h := range []*harness{h1, h2} {
		if err := h.d.CreateNetwork(vxlanReq(group)); err != nil {
			t.Fatal(err)
		}
	}
	if fdb := h1.ns.MustRun(t, "bridge", "fdb", "show", "dev", vxlan.Name(netID)); !strings.Contains(fdb, "00:00:00:00:00:00 dst 239.1.1.1") {
		t.Fatalf("the flood entry for the group is gone:\n%s", fdb)
	}
	c1 := h1.attach(t, netID, epID, "10.91.0.11/24")
	h2.attach(t, netID, "cccccccccccc3333", "10.91.0.12/24")
	if !pings(c1, "10.91.0.12") {
		t.Error("containers on two hosts cannot reach each other through the multicast group")
	}
}

// wireUnderlay puts the namespaces on one switch (a bridge in a namespace of
// its own), each with a link under0 holding 10.90.0.1, .2, ... in order.
func wireUnderlay(t *testing.T, hosts ...*testlab.NS) {
	t.Helper()
	sw := testlab.NewNS(t)
	sw.MustRun(t, "ip", "link", "add", "sw0", "type", "bridge")
	sw.MustRun(t, "ip", "link", "set", "sw0", "up")
	for i, ns := range hosts {
		port := fmt.Sprintf("p%d", i+1)
		testlab.Wire(t, sw, port, ns, "under0")
		sw.MustRun(t, "ip", "link", "set", port, "master", "sw0")
		ns.MustRun(t, "ip", "addr", "add", fmt.Sprintf("10.90.0.%d/24", i+1), "dev", "under0")
	}
}

func TestVXLANBadInput(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name    string
		generic map[string]string
		want    []string
	}{
		{"no peers", map[string]string{vxlan.OptPeers: unset}, []string{"mode=vxlan needs the other hosts", vxlan.OptPeers, vxlan.OptGroup}},
		{"vni too big", map[string]string{vxlan.OptVNI: "16777216"}, []string{vxlan.OptVNI, "1 to 16777215"}},
		{"bad peer", map[string]string{vxlan.OptPeers: "10.90.0.2,host-b"}, []string{vxlan.OptPeers, "IPv4 addresses separated by commas"}},
		{"group without underlay", map[string]string{vxlan.OptPeers: unset, vxlan.OptGroup: "239.1.1.1"}, []string{vxlan.OptGroup, vxlan.OptUnderlay}},
		{"unicast group", map[string]string{vxlan.OptPeers: unset, vxlan.OptGroup: "10.1.1.1"}, []string{vxlan.OptGroup, "multicast"}},
		{"no route to peer", map[string]string{vxlan.OptPeers: "10.250.0.2"}, []string{"no route to VXLAN peer 10.250.0.2"}},
		{"macvlan option", map[string]string{macvlan.OptParent: "eth1"}, []string{macvlan.OptParent, "applies to mode=macvlan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.d.CreateNetwork(vxlanReq(tt.generic))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if h.linkExists(t, "wf-aaaaaaaaaaaa") || h.linkExists(t, vxlan.Name(netID)) {
				t.Error("refused create left links behind")
			}
		})
	}
}

// TestSwarmDiscoveryFeedsFloodList: a vxlan network without peers takes
// them from swarm discovery; a node that leaves is dropped (with the MACs
// learnt behind it) unless a newer gossip member of it lives, one that comes
// back is added again, and the node list survives a plugin restart (Docker
// does not replay it).
func TestSwarmDiscoveryFeedsFloodList(t *testing.T) {
	h := newHarness(t)
	peerNS := testlab.NewNS(t)
	testlab.Wire(t, h.ns, "under0", peerNS, "under1")
	h.ns.MustRun(t, "ip", "addr", "add", "10.90.0.1/24", "dev", "under0")
	req := vxlanReq(map[string]string{vxlan.OptPeers: unset})
	if err := h.d.CreateNetwork(req); err == nil || !strings.Contains(err.Error(), "or a swarm") {
		t.Fatalf("swarm vxlan before this node knows its swarm address: %v", err)
	}
	self, peer := netip.MustParseAddr("10.90.0.1"), netip.MustParseAddr("10.90.0.2")
	if err := h.d.Discover(self, true, true); err != nil {
		t.Fatal(err)
	}
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	fdb := func() string { return h.ns.MustRun(t, "bridge", "fdb", "show", "dev", vxlan.Name(netID)) }
	must(t, h.d.Discover(peer, false, true))
	if !strings.Contains(fdb(), "dst 10.90.0.2") {
		t.Fatalf("joined node not in the flood list:\n%s", fdb())
	}
	// A MAC learnt behind the node, as the kernel records one.
	h.ns.MustRun(t, "bridge", "fdb", "add", "02:42:0a:5b:00:05", "dev", vxlan.Name(netID), "dst", "10.90.0.2", "self", "dynamic")
	must(t, h.d.Discover(peer, false, false))
	if strings.Contains(fdb(), "dst 10.90.0.2") {
		t.Fatalf("node that left still in the flood list, or MACs learnt behind it kept:\n%s", fdb())
	}
	// The peer's dockerd crashes and comes back: its new gossip member
	// joins before the old one is declared dead.
	must(t, h.d.Discover(peer, false, true))
	must(t, h.d.Discover(peer, false, true))
	must(t, h.d.Discover(peer, false, false))
	if !strings.Contains(fdb(), "00:00:00:00:00:00 dst 10.90.0.2") {
		t.Fatalf("the death of a node's old gossip member dropped the node, whose new member lives:\n%s", fdb())
	}
	// The same crash seen from the node itself.
	must(t, h.d.Discover(self, true, false))
	if got, ok := h.d.nodes.Self(); !ok || got != self {
		t.Fatalf("the death of this node's old gossip member made it forget its own address (%s, %v)", got, ok)
	}
	h.ns.MustRun(t, "ip", "link", "del", vxlan.Name(netID)) // a reboot
	h.restart(t)
	if !strings.Contains(fdb(), "dst 10.90.0.2") || strings.Contains(fdb(), "dst 10.90.0.1 ") {
		t.Fatalf("after a restart the flood list must hold the remembered peer, not this node:\n%s", fdb())
	}
	// Joining a swarm anew under another address replaces the old self.
	must(t, h.d.Discover(netip.MustParseAddr("10.90.0.9"), true, true))
	if got, _ := h.d.nodes.Self(); got != netip.MustParseAddr("10.90.0.9") || h.d.nodes.Len() != 2 {
		t.Errorf("self is %s with %d nodes known; want 10.90.0.9 and 2 (the old self dropped)", got, h.d.nodes.Len())
	}
	// A node known from the store leaves at its first departure.
	must(t, h.d.Discover(peer, false, false))
	if strings.Contains(fdb(), "dst 10.90.0.2") {
		t.Errorf("remembered node still in the flood list after it left:\n%s", fdb())
	}
}
