package driver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/internal/vmlab"
	"github.com/weftnet/weft/vxlan"
)

// testKey is the key the operator gives every host of an encrypted network.
const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

var encrypted = map[string]string{vxlan.OptEncrypted: "", vxlan.OptEncryptionKey: testKey, vxlan.OptPeers: "10.90.0.1,10.90.0.2"}

// TestVXLANEncrypted: with -o encrypted, containers on two hosts reach each
// other while the wire between the hosts carries ESP and never a VXLAN
// packet in clear; full-size frames fit without fragmenting; clear-text
// VXLAN for the network from a host without the key is dropped; the SAs
// survive a plugin restart and come back after a reboot; deleting the
// network removes them. The CI kernel has no ESP: this runs in the VM.
func TestVXLANEncrypted(t *testing.T) {
	h1, h2, intruder := newHarness(t), newHarness(t), testlab.NewNS(t)
	if err := esp.Probe(h1.ns.NL); err != nil {
		vmlab.Missing(t, "IPsec ESP", err)
	}
	wireUnderlay(t, h1.ns, h2.ns, intruder)
	for _, h := range []*harness{h1, h2} {
		if err := h.d.CreateNetwork(vxlanReq(encrypted)); err != nil {
			t.Fatal(err)
		}
	}
	// 1500 - 50 (VXLAN) - 34 (ESP): a full frame fits one underlay packet.
	if out := h1.ns.MustRun(t, "ip", "-d", "link", "show", vxlan.Name(netID)); !strings.Contains(out, "mtu 1416") || !strings.Contains(out, "srcport ") {
		t.Errorf("encrypted vxlan device wants MTU 1416 and a pinned source port:\n%s", out)
	}
	c1 := h1.attach(t, netID, epID, "10.91.0.11/24")
	h2.attach(t, netID, "cccccccccccc3333", "10.91.0.12/24")

	wire := testlab.StartCapture(t, h2.ns, "under0")
	fragsBefore := ipStat(t, h1.ns, "FragCreates")
	if !pings(c1, "10.91.0.12") {
		t.Fatal("containers on two hosts cannot reach each other over encrypted VXLAN")
	}
	if _, err := c1.Run("busybox", "ping", "-c", "1", "-W", "1", "-s", "1388", "10.91.0.12"); err != nil {
		t.Errorf("a full-MTU ping (1416 bytes) does not cross: %v", err)
	}
	if after := ipStat(t, h1.ns, "FragCreates"); after != fragsBefore {
		t.Errorf("the host fragmented %s packets: the MTU leaves too little room for ESP", after)
	}
	var espPackets, clear int
	for _, p := range wire.Stop() {
		switch {
		case p.Proto == unix.IPPROTO_ESP:
			espPackets++
		case p.Proto == unix.IPPROTO_UDP && p.DstPort == vxlan.DefaultPort:
			clear++
		}
	}
	if espPackets == 0 || clear != 0 {
		t.Errorf("on the wire: %d ESP packets, %d VXLAN packets in clear; want ESP only", espPackets, clear)
	}
	states := sas(t, h1)
	if len(states) != 2 {
		t.Fatalf("host 1 has %d SAs, want 2 (one each way)", len(states))
	}
	for _, s := range states {
		if s.Statistics.Packets == 0 {
			t.Errorf("SA %s -> %s counted no packets", s.Src, s.Dst)
		}
	}

	// A plain VXLAN device with the VNI but no key: its frames arrive in
	// clear and weft's WEFT-INPUT rule drops them.
	intruder.MustRun(t, "ip", "link", "add", "vx0", "type", "vxlan", "id", "4242", "dstport", "4789", "local", "10.90.0.3", "dev", "under0")
	intruder.MustRun(t, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "10.90.0.1")
	intruder.MustRun(t, "ip", "addr", "add", "10.91.0.99/24", "dev", "vx0")
	intruder.MustRun(t, "ip", "link", "set", "vx0", "mtu", "1416", "up")
	if pings(intruder, "10.91.0.11") {
		t.Error("clear-text VXLAN from a host without the key reached a container of the encrypted network")
	}
	if rules := h1.ns.MustRun(t, "iptables", "-L", firewall.ChainInput, "-v", "-x", "-n"); !droppedSome(rules) {
		t.Errorf("WEFT-INPUT dropped nothing:\n%s", rules)
	}

	// A plugin restart keeps the SAs as they are: same SPIs, counters going on.
	h1.restart(t)
	if after := sas(t, h1); len(after) != 2 || after[0].Statistics.Packets < states[0].Statistics.Packets {
		t.Errorf("SAs after a plugin restart: %+v, before: %+v", after, states)
	}
	// A reboot loses the kernel state; the store brings it back, and host 2
	// accepts host 1's sequence numbers starting again.
	h1.ns.MustRun(t, "ip", "xfrm", "state", "flush")
	h1.ns.MustRun(t, "ip", "xfrm", "policy", "flush")
	h1.ns.MustRun(t, "ip", "link", "del", vxlan.Name(netID))
	h1.restart(t)
	if len(sas(t, h1)) != 2 || !pings(c1, "10.91.0.12") {
		t.Error("after a reboot the encrypted network does not carry traffic again")
	}

	must(t, h1.d.DeleteEndpoint(netID, epID))
	if err := h1.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	policies, _ := h1.ns.NL.XfrmPolicyList(netlink.FAMILY_V4)
	if n := len(sas(t, h1)); n != 0 || len(policies) != 0 {
		t.Errorf("%d SAs and %d policies left after DeleteNetwork", n, len(policies))
	}
}

// TestVXLANEncryptedSwarmPeers: on a swarm, a node that joins gets SAs and
// a policy on the encrypted network, one that leaves loses them.
func TestVXLANEncryptedSwarmPeers(t *testing.T) {
	h := newHarness(t)
	if err := esp.Probe(h.ns.NL); err != nil {
		vmlab.Missing(t, "IPsec ESP", err)
	}
	wireUnderlay(t, h.ns)
	self, peer := netip.MustParseAddr("10.90.0.1"), netip.MustParseAddr("10.90.0.2")
	must(t, h.d.Discover(self, true, true))
	// As every node receives it: the key the manager's AllocateNetwork added.
	req := vxlanReq(map[string]string{vxlan.OptEncrypted: "", vxlan.OptEncryptionKey: testKey, vxlan.OptPeers: unset})
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	count := func() (states, policies int) {
		p, _ := h.ns.NL.XfrmPolicyList(netlink.FAMILY_V4)
		return len(sas(t, h)), len(p)
	}
	must(t, h.d.Discover(peer, false, true))
	if s, p := count(); s != 2 || p != 1 {
		t.Errorf("after a node joined: %d SAs and %d policies, want 2 and 1", s, p)
	}
	must(t, h.d.Discover(peer, false, false))
	if s, p := count(); s != 0 || p != 0 {
		t.Errorf("after the node left: %d SAs and %d policies, want none", s, p)
	}
}

// TestVXLANEncryptedNeedsESP: on a kernel without ESP, -o encrypted is
// refused with a clear error rather than carried in clear text, and nothing
// is left behind.
func TestVXLANEncryptedNeedsESP(t *testing.T) {
	h := newHarness(t)
	if esp.Probe(h.ns.NL) == nil {
		t.Skip("this kernel has ESP; TestVXLANEncrypted covers it")
	}
	wireUnderlay(t, h.ns)
	err := h.d.CreateNetwork(vxlanReq(encrypted))
	for _, want := range []string{"option encrypted", "cannot do IPsec ESP", "not send this network's traffic in clear text"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if h.linkExists(t, "wf-aaaaaaaaaaaa") || h.linkExists(t, vxlan.Name(netID)) || len(h.d.networks) != 0 {
		t.Error("a refused encrypted network left something behind")
	}
}

// droppedSome reads `iptables -L -v -x -n` output: did a DROP rule count
// packets?
func droppedSome(listing string) bool {
	for _, line := range strings.Split(listing, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" && f[0] != "0" {
			return true
		}
	}
	return false
}

// sas lists a host's ESP SAs.
func sas(t *testing.T, h *harness) []netlink.XfrmState {
	t.Helper()
	states, err := h.ns.NL.XfrmStateList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// ipStat reads one counter of /proc/net/snmp's Ip lines in ns.
func ipStat(t *testing.T, ns *testlab.NS, name string) string {
	t.Helper()
	var header []string
	for _, line := range strings.Split(ns.MustRun(t, "cat", "/proc/net/snmp"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == name && i < len(f) {
				return f[i]
			}
		}
	}
	t.Fatalf("no Ip counter %s in /proc/net/snmp", name)
	return ""
}
