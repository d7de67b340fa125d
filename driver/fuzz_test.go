package driver

import (
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

// networkSeeds are CreateNetwork requests, as package plugin hands them to
// the driver: every mode and option, a host_shim network with null (empty)
// subnets, bridge names the firewall refuses, overlapping and odd pools.
// How dockerd's options map becomes Options is plugin's (its FuzzServer).
var networkSeeds = []string{
	`{"NetworkID":"0123456789abcdef0123","Options":{},"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"bridge","com.docker.network.bridge.name":"br-custom","com.docker.network.bridge.enable_icc":"false","com.docker.network.bridge.enable_ip_masquerade":"0","com.docker.network.bridge.host_binding_ipv4":"198.18.0.11","com.docker.network.driver.mtu":"1400","com.docker.network.container_iface_prefix":"weft"},"Internal":true,"IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"10.1.0.1"}]}`,
	`{"NetworkID":"n1","IPv6":true,"IPv4Data":[{"Pool":"10.1.0.0/24"}],"IPv6Data":[{"Pool":"fd00:1::/64","Gateway":"fd00:1::1/64"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"macvlan","parent":"eth1.20","macvlan_mode":"private"},"IPv4Data":[{"Pool":"192.0.2.0/24","Gateway":"192.0.2.1/24","AuxAddresses":{"host":"192.0.2.250"}}]}`,
	`{"NetworkID":"n1","Options":{"mode":"macvlan","host_shim":"192.0.2.250","parent_subnet":"192.0.2.0/24"},"IPv4Data":[{"Pool":"192.0.2.0/24","AuxAddresses":{"host":"192.0.2.250"}}]}`,
	`{"NetworkID":"n1","Options":{"mode":"macvlan","host_shim":"192.0.2.250"},"IPv4Data":[{"Pool":"192.0.2.0/24"},null]}`,
	`{"NetworkID":"n1","Options":{"mode":"macvlan","host_shim":"fd00:1::fa"},"IPv6":true,"IPv4Data":[null],"IPv6Data":[{"Pool":"fd00:1::/64"},null]}`,
	`{"NetworkID":"n1","Options":{"mode":"ipvlan","parent":"eth1","ipvlan_mode":"l3","ipvlan_flag":"private"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"vxlan","vni":"42","vxlan_port":"4789","peers":"192.0.2.11, 192.0.2.12"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"vxlan","group":"239.1.1.1","underlay":"eth1"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"vxlan","encrypted":"","encryption_key":"abababababababababababababababababababababababababababababababab","peers":"192.0.2.11"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"mode":"vxlan","swarm":"true"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.bridge.name":"br+"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.bridge.name":"brü"},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.driver.mtu":"1400","com.docker.network.bridge.enable_icc":"false"}}`,
	`{"NetworkID":"n1","IPv4Data":[{"Pool":"10.1.0.0/24"},{"Pool":"10.1.0.128/25"}]}`,
	`{"NetworkID":"n1","IPv4Data":[{"Pool":"fd00::/64"}]}`,
	`{"NetworkID":"n1","IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"10.2.0.1/24"}]}`,
	`{"NetworkID":"n1","IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"nope"}]}`,
}

// FuzzNetworkOptions decodes any body as CreateNetwork's request, and as
// a swarm manager's AllocateNetwork, and parses it as weft does before
// touching anything. It checks that the parser never panics, refuses with
// an invalid-input error only, gives the same answer twice, and that what
// it accepts is a configuration weft can build and store: a known mode,
// valid names and numbers, masked subnets of the right family with their
// gateways inside, and a record that reads back the same.
func FuzzNetworkOptions(f *testing.F) {
	for _, s := range networkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req NetworkRequest
		if json.Unmarshal(body, &req) == nil {
			checkParse(t, &req)
		}
		var areq AllocateRequest
		if json.Unmarshal(body, &areq) == nil {
			opts := maps.Clone(areq.Options)
			if opts == nil {
				opts = map[string]string{}
			}
			opts[OptSwarm] = "true"
			checkParse(t, createRequestFor(&areq, opts))
		}
	})
}

func checkParse(t *testing.T, req *NetworkRequest) {
	t.Helper()
	n, err := parseNetwork(req)
	n2, err2 := parseNetwork(req)
	if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || err == nil && !reflect.DeepEqual(n, n2) {
		t.Fatalf("two parses differ: %v / %v", err, err2)
	}
	if err != nil {
		if !errors.Is(err, ErrInvalid) || strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("error %q is not an invalid-input error", err)
		}
		return
	}
	cfg := n.Config
	if !slices.Contains(modeNames, cfg.Mode) {
		t.Fatalf("mode %q accepted", cfg.Mode)
	}
	if b := bridgeOf(n); b != nil {
		if err := ifname.Check(b.Options.Bridge); err != nil {
			t.Fatalf("bridge name: %v", err)
		}
	} else if cfg.Mode == netmode.Bridge || cfg.Mode == netmode.VXLAN {
		t.Fatalf("%s network without a bridge", cfg.Mode)
	}
	if cfg.MTU != 0 && (cfg.MTU < netmode.MinMTU || cfg.MTU > netmode.MaxMTU || cfg.IPv6 && cfg.MTU < netmode.MinMTUIPv6) {
		t.Fatalf("MTU %d accepted", cfg.MTU)
	}
	if ifname.Check(cfg.IfacePrefix+"0") != nil || !netmode.IsAlnum(cfg.IfacePrefix) {
		t.Fatalf("interface prefix %q accepted", cfg.IfacePrefix)
	}
	for _, s := range cfg.Subnets() {
		if s.Pool != s.Pool.Masked() || s.Gateway.IsValid() && (!s.Pool.Contains(s.Gateway.Addr()) || s.Gateway.Bits() != s.Pool.Bits()) {
			t.Fatalf("subnet %+v accepted", s)
		}
	}
	for _, s := range cfg.IPv4Subnets {
		if !s.Pool.Addr().Is4() {
			t.Fatalf("IPv4 subnet %s", s.Pool)
		}
	}
	for _, s := range cfg.IPv6Subnets {
		if !s.Pool.Addr().Is6() {
			t.Fatalf("IPv6 subnet %s", s.Pool)
		}
	}
	all := cfg.Subnets()
	for i := range all {
		for j := range i {
			if all[i].Pool.Overlaps(all[j].Pool) {
				t.Fatalf("overlapping subnets %s and %s accepted", all[i].Pool, all[j].Pool)
			}
		}
	}
	if cfg.IPv6 && len(cfg.IPv6Subnets) == 0 {
		t.Fatal("IPv6 without an IPv6 subnet accepted")
	}
	if v, ok := n.mode.(*vxlan.Network); ok && (v.VXLAN.VNI < 1 || v.VXLAN.VNI > vxlan.MaxVNI || v.VXLAN.Port < 1 || v.VXLAN.Port > 65535) {
		t.Fatalf("vxlan VNI %d port %d", v.VXLAN.VNI, v.VXLAN.Port)
	}
	if m, ok := n.mode.(*macvlan.Network); ok {
		if shim := m.Options.HostShim; shim.IsValid() {
			inside := false
			for _, s := range cfg.Subnets() {
				inside = inside || s.Pool.Contains(shim)
			}
			if !inside || cfg.Internal {
				t.Fatalf("host shim %s accepted (internal %v)", shim, cfg.Internal)
			}
		}
		if m.Options.Parent != "" && m.Options.ParentSubnet.IsValid() {
			t.Fatal("parent and parent_subnet both accepted")
		}
	}
	// The record is stored as JSON and read back at every start.
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var back Network
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("stored network does not read back: %v", err)
	}
	if !reflect.DeepEqual(&back, n) {
		t.Fatalf("stored network reads back different:\n%+v\n%+v", n, &back)
	}
}

// fuzzNetworks are the networks FuzzEndpointOptions creates endpoints on.
var fuzzNetworks = func() []*Network {
	var out []*Network
	for _, body := range []string{
		`{"NetworkID":"n1","IPv6":true,"IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24"}],"IPv6Data":[{"Pool":"fd00:1::/64"}]}`,
		`{"NetworkID":"n2","Options":{"mode":"macvlan","macvlan_mode":"passthru"},"IPv4Data":[{"Pool":"192.0.2.0/24"}]}`,
		`{"NetworkID":"n3","Options":{"mode":"ipvlan","parent":"eth1"},"IPv4Data":[{"Pool":"192.0.2.0/24"}]}`,
		`{"NetworkID":"n4","Options":{"mode":"macvlan"},"IPv6":true,"IPv6Data":[{"Pool":"fd00:2::/64"}]}`,
	} {
		var req NetworkRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			panic(err)
		}
		n, err := parseNetwork(&req)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}()

// FuzzEndpointOptions decodes any body as CreateEndpoint's request on
// networks of each mode, and checks that the parser never panics, refuses
// with invalid-input errors only, and accepts only addresses of the
// network's subnets, of the right family, and a MAC address where the mode
// allows one. (The ports an endpoint publishes: portmap's FuzzCheck.)
func FuzzEndpointOptions(f *testing.F) {
	for i, body := range []string{
		`{"NetworkID":"n1","EndpointID":"0123456789abcdef","Address":"10.1.0.2/24","AddressIPv6":"fd00:1::2/64","MAC":""}`,
		`{"NetworkID":"n1","EndpointID":"e1","Address":"10.1.0.2/24","MAC":"02:42:0a:01:00:02","Exposed":[{"Proto":6,"Port":80}]}`,
		`{"NetworkID":"n1","EndpointID":"e1","Address":"10.9.0.2/24"}`,
		`{"NetworkID":"n1","EndpointID":"e1","Address":"fd00:1::2/64"}`,
		`{"NetworkID":"n1","EndpointID":"e1","Address":"10.1.0.2/24","MAC":"zz"}`,
	} {
		for n := range fuzzNetworks {
			f.Add(uint8(n+i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		var req EndpointRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		n := fuzzNetworks[int(which)%len(fuzzNetworks)]
		ep, err := newEndpoint(n, &req)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q is not an invalid-input error", err)
			}
			return
		}
		for _, a := range []struct {
			p  netip.Prefix
			v6 bool
		}{{ep.IPv4, false}, {ep.IPv6, true}} {
			if !a.p.IsValid() {
				continue
			}
			if a.p.Addr().Is6() != a.v6 {
				t.Fatalf("address %s accepted as IPv6=%v", a.p, a.v6)
			}
			if _, ok := n.Config.SubnetOf(a.p.Addr()); !ok {
				t.Fatalf("address %s outside the network's subnets", a.p)
			}
		}
		m, isMacvlan := n.mode.(*macvlan.Network)
		sharesMAC := n.Config.Mode == netmode.Ipvlan || isMacvlan && m.Options.MacvlanMode == "passthru"
		if sharesMAC != (ep.MAC == "") {
			t.Fatalf("%s network: endpoint MAC %q", n.Config.Mode, ep.MAC)
		}
		if ep.MAC != "" {
			if _, err := net.ParseMAC(ep.MAC); err != nil {
				t.Fatalf("MAC %q: %v", ep.MAC, err)
			}
		}
		endpointReply(&req, ep)
	})
}
