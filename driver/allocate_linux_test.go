package driver

import (
	"strings"
	"testing"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

func allocReq(id string, opts map[string]string) *AllocateRequest {
	return &AllocateRequest{NetworkID: id, Options: opts,
		IPv4Data: []IPAMData{{Pool: "10.85.0.0/24", Gateway: "10.85.0.1/24"}}}
}

// TestAllocateNetwork: as a swarm manager, weft hands every vxlan network a
// VNI no other swarm network has, keeps a chosen one only if it is free,
// re-allocates the same VNI to the same network (a new leader asks again),
// frees it with the network, and refuses bad options before any node sees
// them.
func TestAllocateNetwork(t *testing.T) {
	h := newHarness(t)
	vx := map[string]string{OptMode: netmode.VXLAN}
	a, err := h.d.AllocateNetwork(allocReq("net-a", map[string]string{OptMode: netmode.VXLAN, vxlan.OptVNI: "100"}))
	if err != nil || a[vxlan.OptVNI] != "100" || a[OptMode] != netmode.VXLAN {
		t.Fatalf("chosen VNI: %v %v", a, err)
	}
	if _, err := h.d.AllocateNetwork(allocReq("net-b", map[string]string{OptMode: netmode.VXLAN, vxlan.OptVNI: "100"})); err == nil ||
		!strings.Contains(err.Error(), `invalid value "100" for option vni: swarm network net-a already uses it`) {
		t.Errorf("a second network with VNI 100: %v", err)
	}
	if again, err := h.d.AllocateNetwork(allocReq("net-a", a)); err != nil || again[vxlan.OptVNI] != "100" {
		t.Errorf("the same network allocated again must keep its VNI: %v %v", again, err)
	}
	// Two networks whose derived VNIs are the same still get different ones.
	first, _ := h.d.AllocateNetwork(allocReq("net-c", vx))
	if _, err := vxlan.ReserveVNI(h.d.store, "net-x", vxlan.DefaultVNI("net-d"), false); err != nil { // net-d's natural VNI taken
		t.Fatal(err)
	}
	second, _ := h.d.AllocateNetwork(allocReq("net-d", vx))
	if first[vxlan.OptVNI] == "" || second[vxlan.OptVNI] == "" || first[vxlan.OptVNI] == second[vxlan.OptVNI] || second[vxlan.OptVNI] == "100" {
		t.Errorf("allocated VNIs %q and %q must be distinct and free", first[vxlan.OptVNI], second[vxlan.OptVNI])
	}
	if err := h.d.FreeNetwork("net-a"); err != nil {
		t.Fatal(err)
	}
	if b, err := h.d.AllocateNetwork(allocReq("net-b", map[string]string{OptMode: netmode.VXLAN, vxlan.OptVNI: "100"})); err != nil || b[vxlan.OptVNI] != "100" {
		t.Errorf("VNI 100 after its network was freed: %v %v", b, err)
	}
	// Other modes' options come back as given, every mode's marked swarm.
	mv := map[string]string{OptMode: netmode.Macvlan, macvlan.OptParentSubnet: "10.85.0.0/24"}
	if got, err := h.d.AllocateNetwork(allocReq("net-m", mv)); err != nil || len(got) != 3 || got[macvlan.OptParentSubnet] != "10.85.0.0/24" || got[OptSwarm] != "true" {
		t.Errorf("macvlan options: %v %v", got, err)
	}
	for _, bad := range []struct{ key, value, want string }{
		{vxlan.OptVNI, "abc", `invalid value "abc" for option vni`},
		{netmode.OptMTU, "9", `invalid value "9" for option ` + netmode.OptMTU},
		{macvlan.OptParent, "x", "option parent applies to mode=macvlan"},
	} {
		opts := map[string]string{OptMode: netmode.VXLAN, bad.key: bad.value}
		if _, err := h.d.AllocateNetwork(allocReq("net-bad", opts)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("-o %s=%s: error %v, want %q", bad.key, bad.value, err, bad.want)
		}
	}
}

// TestAllocateEncryptedNetwork: the manager makes the key of an encrypted
// swarm network (so every node gets it in its options), or, on a kernel
// without ESP, refuses the network at `docker network create`.
func TestAllocateEncryptedNetwork(t *testing.T) {
	h := newHarness(t)
	got, err := h.d.AllocateNetwork(allocReq("net-e", map[string]string{OptMode: netmode.VXLAN, vxlan.OptEncrypted: ""}))
	if esp.Probe(h.ns.NL) != nil {
		if err == nil || !strings.Contains(err.Error(), "cannot do IPsec ESP") {
			t.Errorf("kernel without ESP: %v %v", got, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := esp.ParseKey(got[vxlan.OptEncryptionKey]); err != nil {
		t.Errorf("no usable key in the allocated options %v: %v", got, err)
	}
	other, _ := h.d.AllocateNetwork(allocReq("net-f", map[string]string{OptMode: netmode.VXLAN, vxlan.OptEncrypted: ""}))
	if other[vxlan.OptEncryptionKey] == got[vxlan.OptEncryptionKey] {
		t.Error("two networks got the same key")
	}
}
