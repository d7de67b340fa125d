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

	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/vxlan"
)

// networkSeeds are CreateNetwork bodies: every mode and option, the
// issue's null subnets of a host_shim network, bridge names the firewall
// refuses, and values of the wrong type.
var networkSeeds = []string{
	`{"NetworkID":"0123456789abcdef0123","Options":{},"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"bridge","com.docker.network.bridge.name":"br-custom","com.docker.network.bridge.enable_icc":"false","com.docker.network.bridge.enable_ip_masquerade":"0","com.docker.network.bridge.host_binding_ipv4":"198.18.0.11","com.docker.network.driver.mtu":"1400","com.docker.network.container_iface_prefix":"weft"},"com.docker.network.internal":true},"IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"10.1.0.1"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":true},"IPv4Data":[{"Pool":"10.1.0.0/24"}],"IPv6Data":[{"Pool":"fd00:1::/64","Gateway":"fd00:1::1/64"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","parent":"eth1.20","macvlan_mode":"private"}},"IPv4Data":[{"Pool":"192.0.2.0/24","Gateway":"192.0.2.1/24","AuxAddresses":{"host":"192.0.2.250"}}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"192.0.2.250","parent_subnet":"192.0.2.0/24"}},"IPv4Data":[{"Pool":"192.0.2.0/24","AuxAddresses":{"host":"192.0.2.250"}}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"192.0.2.250"}},"IPv4Data":[{"Pool":"192.0.2.0/24"},null]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"fd00:1::fa"},"com.docker.network.enable_ipv6":"true"},"IPv4Data":[null],"IPv6Data":[{"Pool":"fd00:1::/64"},null]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"ipvlan","parent":"eth1","ipvlan_mode":"l3","ipvlan_flag":"private"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"vxlan","vni":"42","vxlan_port":"4789","peers":"192.0.2.11, 192.0.2.12"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"vxlan","group":"239.1.1.1","underlay":"eth1"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"vxlan","encrypted":"","encryption_key":"abababababababababababababababababababababababababababababababab","peers":"192.0.2.11"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"vxlan","swarm":"true"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.bridge.name":"br+"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.bridge.name":"brü"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}]}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.driver.mtu":1400,"com.docker.network.bridge.enable_icc":false}}}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":"mode=vxlan"}}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":["vxlan"]}}}`,
	`{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":1}}`,
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
		var req network.CreateNetworkRequest
		if json.Unmarshal(body, &req) == nil {
			checkParse(t, &req)
		}
		var areq network.AllocateNetworkRequest
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

func checkParse(t *testing.T, req *network.CreateNetworkRequest) {
	t.Helper()
	cfg, err := parseNetworkConfig(req)
	cfg2, err2 := parseNetworkConfig(req)
	if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || err == nil && !reflect.DeepEqual(cfg, cfg2) {
		t.Fatalf("two parses differ: %v / %v", err, err2)
	}
	if err != nil {
		if !errors.Is(err, ErrInvalid) || strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("error %q is not an invalid-input error", err)
		}
		return
	}
	if !slices.Contains(acceptedModes, cfg.Mode) {
		t.Fatalf("mode %q accepted", cfg.Mode)
	}
	if cfg.bridged() {
		if err := ifname.Check(cfg.Bridge); err != nil {
			t.Fatalf("bridge name: %v", err)
		}
	} else if cfg.Bridge != "" {
		t.Fatalf("%s network with bridge %q", cfg.Mode, cfg.Bridge)
	}
	if cfg.MTU != 0 && (cfg.MTU < minMTU || cfg.MTU > maxMTU || cfg.IPv6 && cfg.MTU < minMTUIPv6) {
		t.Fatalf("MTU %d accepted", cfg.MTU)
	}
	if ifname.Check(cfg.IfacePrefix+"0") != nil || !isAlnum(cfg.IfacePrefix) {
		t.Fatalf("interface prefix %q accepted", cfg.IfacePrefix)
	}
	for _, s := range cfg.subnets() {
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
	all := cfg.subnets()
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
	if cfg.Mode == ModeVXLAN && (cfg.VNI < 1 || cfg.VNI > vxlan.MaxVNI || cfg.VXLANPort < 1 || cfg.VXLANPort > 65535) {
		t.Fatalf("vxlan VNI %d port %d", cfg.VNI, cfg.VXLANPort)
	}
	if cfg.HostShim.IsValid() {
		inside := false
		for _, s := range cfg.subnets() {
			inside = inside || s.Pool.Contains(cfg.HostShim)
		}
		if !inside || cfg.Internal {
			t.Fatalf("host shim %s accepted (internal %v)", cfg.HostShim, cfg.Internal)
		}
	}
	if cfg.Parent != "" && cfg.ParentSubnet.IsValid() {
		t.Fatal("parent and parent_subnet both accepted")
	}
	// The record is stored as JSON and read back at every start.
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back NetworkConfig
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("stored config does not read back: %v", err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("stored config reads back different:\n%+v\n%+v", cfg, back)
	}
}

// fuzzNetworks are the networks FuzzEndpointOptions creates endpoints on.
var fuzzNetworks = func() []*Network {
	var out []*Network
	for _, body := range []string{
		`{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":true},"IPv4Data":[{"Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24"}],"IPv6Data":[{"Pool":"fd00:1::/64"}]}`,
		`{"NetworkID":"n2","Options":{"com.docker.network.generic":{"mode":"macvlan","macvlan_mode":"passthru"}},"IPv4Data":[{"Pool":"192.0.2.0/24"}]}`,
		`{"NetworkID":"n3","Options":{"com.docker.network.generic":{"mode":"ipvlan","parent":"eth1"}},"IPv4Data":[{"Pool":"192.0.2.0/24"}]}`,
		`{"NetworkID":"n4","Options":{"com.docker.network.generic":{"mode":"macvlan"},"com.docker.network.enable_ipv6":true},"IPv6Data":[{"Pool":"fd00:2::/64"}]}`,
	} {
		var req network.CreateNetworkRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			panic(err)
		}
		cfg, err := parseNetworkConfig(&req)
		if err != nil {
			panic(err)
		}
		out = append(out, &Network{ID: req.NetworkID, Config: cfg})
	}
	return out
}()

// FuzzEndpointOptions decodes any body as CreateEndpoint's request (and
// its port options) on networks of each mode, and checks that the parser
// never panics, refuses with invalid-input errors only, and accepts only
// addresses of the network's subnets, of the right family, and a MAC
// address where the mode allows one.
func FuzzEndpointOptions(f *testing.F) {
	for i, body := range []string{
		`{"NetworkID":"n1","EndpointID":"0123456789abcdef","Interface":{"Address":"10.1.0.2/24","AddressIPv6":"fd00:1::2/64","MacAddress":""},"Options":{}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.1.0.2/24","MacAddress":"02:42:0a:01:00:02"},"Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080,"HostIP":"127.0.0.1"}]}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.9.0.2/24"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"fd00:1::2/64"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.1.0.2/24","MacAddress":"zz"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{},"Options":{"com.docker.network.endpoint.exposedports":"80/tcp"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{},"Options":{"com.docker.network.portmap":[{"Proto":99,"Port":80}]}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{},"Options":{"com.docker.network.portmap":[{"Proto":6,"HostIP":"localhost"}]}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":null}`,
	} {
		for n := range fuzzNetworks {
			f.Add(uint8(n+i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		var req network.CreateEndpointRequest
		if json.Unmarshal(body, &req) != nil || req.Interface == nil {
			return // the plugin refuses these before the driver sees them
		}
		n := fuzzNetworks[int(which)%len(fuzzNetworks)]
		ep, err := newEndpoint(n, &req)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q is not an invalid-input error", err)
			}
		} else {
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
				if _, ok := n.subnetOf(a.p.Addr()); !ok {
					t.Fatalf("address %s outside the network's subnets", a.p)
				}
			}
			sharesMAC := n.Config.Mode == ModeIpvlan || n.Config.MacvlanMode == "passthru"
			if sharesMAC != (ep.MAC == "") {
				t.Fatalf("%s network: endpoint MAC %q", n.Config.Mode, ep.MAC)
			}
			if ep.MAC != "" {
				if _, err := net.ParseMAC(ep.MAC); err != nil {
					t.Fatalf("MAC %q: %v", ep.MAC, err)
				}
			}
			endpointResponse(&req, ep)
		}
		if raw, ok := req.Options[keyPortMap]; ok {
			bindings, err := parsePortBindings(raw)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q is not an invalid-input error", err)
			}
			for _, b := range bindings {
				if _, ok := protoNames[b.Proto]; !ok {
					t.Fatalf("protocol %d accepted", b.Proto)
				}
				if _, err := netip.ParseAddr(b.HostIP); b.HostIP != "" && err != nil {
					t.Fatalf("host address %q accepted", b.HostIP)
				}
			}
		}
	})
}
