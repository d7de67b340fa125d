package driver

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

// The records in testdata/schema2 were written by weft before the modes
// had packages of their own (main at a8e0de5, store schema 2): a network
// of each mode with its state, and endpoints of each kind.

// schema2Network is that weft's network record, frozen: its decoder is
// what must keep reading the records this weft writes (a downgrade).
type schema2Network struct {
	ID     string `json:"id"`
	Config struct {
		Mode            string           `json:"mode"`
		Bridge          string           `json:"bridge"`
		ICC             bool             `json:"icc"`
		Masquerade      bool             `json:"masquerade"`
		HostBindingIPv4 netip.Addr       `json:"host_binding_ipv4,omitzero"`
		MTU             int              `json:"mtu,omitempty"`
		IfacePrefix     string           `json:"iface_prefix"`
		Internal        bool             `json:"internal"`
		IPv6            bool             `json:"ipv6"`
		IPv4Subnets     []netmode.Subnet `json:"ipv4_subnets,omitempty"`
		IPv6Subnets     []netmode.Subnet `json:"ipv6_subnets,omitempty"`
		Parent          string           `json:"parent,omitempty"`
		ParentSubnet    netip.Prefix     `json:"parent_subnet,omitzero"`
		MacvlanMode     string           `json:"macvlan_mode,omitempty"`
		IpvlanMode      string           `json:"ipvlan_mode,omitempty"`
		IpvlanFlag      string           `json:"ipvlan_flag,omitempty"`
		HostShim        netip.Addr       `json:"host_shim,omitzero"`
		VNI             int              `json:"vni,omitempty"`
		VXLANPort       int              `json:"vxlan_port,omitempty"`
		Peers           []netip.Addr     `json:"peers,omitempty"`
		Group           netip.Addr       `json:"group,omitzero"`
		Underlay        string           `json:"underlay,omitempty"`
		Encrypted       bool             `json:"encrypted,omitempty"`
		EncryptionKey   string           `json:"encryption_key,omitempty"`
		Swarm           bool             `json:"swarm,omitempty"`
	} `json:"config"`
	OwnsParent     bool   `json:"owns_parent,omitempty"`
	ResolvedParent string `json:"resolved_parent,omitempty"`
	ESPSourcePort  int    `json:"esp_source_port,omitempty"`
}

// bridgeOnlyKeys are the members that weft wrote into the config of every
// network, bridge mode's options, and that mean nothing to a macvlan or
// ipvlan network: this weft leaves them out of those.
var bridgeOnlyKeys = []string{"bridge", "icc", "masquerade"}

// TestSchema2Networks: each stored network loads, means what it meant,
// and is written back with the same members and values (bar
// bridgeOnlyKeys), which the earlier weft's decoder reads as it read its
// own record.
func TestSchema2Networks(t *testing.T) {
	files, _ := filepath.Glob("testdata/schema2/network-*.json")
	if len(files) != 8 {
		t.Fatalf("%d network records in testdata/schema2, want 8", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			stored, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			n := &Network{}
			if err := json.Unmarshal(stored, n); err != nil {
				t.Fatal(err)
			}
			if err := n.check(n.ID); err != nil {
				t.Fatalf("restore would skip it: %v", err)
			}
			written, err := json.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			var want, got map[string]any
			mustDecode(t, stored, &want)
			mustDecode(t, written, &got)
			if bridgeOf(n) == nil {
				for _, k := range bridgeOnlyKeys {
					delete(want["config"].(map[string]any), k)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("written back as\n%s\nwant the members of\n%s", written, stored)
			}
			// The earlier weft reads the new record as its own, every field
			// known to it.
			old, fromNew := readSchema2(t, stored), readSchema2(t, written)
			if bridgeOf(n) == nil {
				old.Config.Bridge, old.Config.ICC, old.Config.Masquerade = "", false, false
			}
			if !reflect.DeepEqual(fromNew, old) {
				t.Errorf("the earlier weft reads\n%+v\nwant\n%+v", fromNew, old)
			}
			// Reading what was written gives it back unchanged.
			again := &Network{}
			mustDecode(t, written, again)
			if rewritten, _ := json.Marshal(again); !bytes.Equal(rewritten, written) {
				t.Errorf("a second round trip changed the record:\n%s\n%s", written, rewritten)
			}
		})
	}
}

// TestSchema2Meaning spot-checks that the stored records mean what they
// meant: each mode's options and state land in its typed fields.
func TestSchema2Meaning(t *testing.T) {
	load := func(name string) *Network {
		t.Helper()
		raw, err := os.ReadFile("testdata/schema2/network-" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		n := &Network{}
		mustDecode(t, raw, n)
		return n
	}
	if b := bridgeOf(load("bridge-options")).Options; b.Bridge != "br-lab" || b.ICC || b.Masquerade || b.HostBindingIPv4 != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("bridge options %+v", b)
	}
	m := load("macvlan-vlan-shim").mode.(*macvlan.Network)
	if m.ParentLink() != "lan0.10" || !m.State.OwnsParent || m.Options.MacvlanMode != "private" || m.Options.HostShim != netip.MustParseAddr("10.50.0.250") || m.Config.MTU != 1400 {
		t.Errorf("macvlan network %+v %+v", m.Options, m.State)
	}
	if m := load("macvlan-parent-subnet").mode.(*macvlan.Network); m.ParentLink() != "lan0" || !m.Config.Swarm {
		t.Errorf("macvlan network found its parent as %q", m.ParentLink())
	}
	i := load("ipvlan-l3-internal").mode.(*macvlan.Network)
	if i.Kind() != macvlan.Ipvlan || i.Options.IpvlanMode != "l3" || i.Options.IpvlanFlag != "private" || !i.State.OwnsParent || !strings.HasPrefix(i.ParentLink(), macvlan.PlaceholderPrefix) {
		t.Errorf("ipvlan network %+v %+v", i.Options, i.State)
	}
	v := load("vxlan-encrypted").mode.(*vxlan.Network)
	if v.VNI() != 4242 || !v.VXLAN.Encrypted || v.State.ESPSourcePort != 49162 || v.Options.Bridge != "br-vx" || v.Config.MTU != 1416 || v.FromSwarm() {
		t.Errorf("vxlan network %+v %+v %+v", v.VXLAN, v.State, v.Options)
	}
	if v := load("vxlan-swarm").mode.(*vxlan.Network); !v.FromSwarm() || v.Options.ICC || v.VNI() != vxlan.DefaultVNI(v.ID) {
		t.Errorf("swarm vxlan network %+v %+v", v.VXLAN, v.Options)
	}
}

// TestSchema2Endpoints: stored endpoints are written back byte for byte.
func TestSchema2Endpoints(t *testing.T) {
	files, _ := filepath.Glob("testdata/schema2/endpoint-*.json")
	if len(files) != 3 {
		t.Fatalf("%d endpoint records in testdata/schema2, want 3", len(files))
	}
	for _, file := range files {
		stored, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ep Endpoint
		mustDecode(t, stored, &ep)
		if ep.ID == "" || ep.NetworkID == "" || ep.Link == "" {
			t.Errorf("%s read as %+v", file, ep)
		}
		if written, _ := json.Marshal(&ep); !bytes.Equal(written, bytes.TrimSpace(stored)) {
			t.Errorf("%s written back as\n%s", file, written)
		}
	}
}

func readSchema2(t *testing.T, raw []byte) schema2Network {
	t.Helper()
	var n schema2Network
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		t.Fatalf("the earlier weft cannot read %s: %v", raw, err)
	}
	return n
}

func mustDecode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}
