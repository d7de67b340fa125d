package driver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
)

func createReq(generic map[string]interface{}, v4 ...*network.IPAMData) *network.CreateNetworkRequest {
	opts := map[string]interface{}{}
	if generic != nil {
		opts[keyGeneric] = generic
	}
	return &network.CreateNetworkRequest{NetworkID: "0123456789abcdef0123", Options: opts, IPv4Data: v4}
}

var pool24 = &network.IPAMData{Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24"}

func TestParseNetworkConfigDefaults(t *testing.T) {
	cfg, err := parseNetworkConfig(createReq(nil, pool24))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge != "wf-0123456789ab" || !cfg.ICC || !cfg.Masquerade || cfg.Internal || cfg.MTU != 0 || cfg.IfacePrefix != "eth" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	want := Subnet{Pool: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParsePrefix("10.1.0.1/24")}
	if len(cfg.IPv4Subnets) != 1 || cfg.IPv4Subnets[0] != want {
		t.Fatalf("subnets = %+v, want %+v", cfg.IPv4Subnets, want)
	}
}

func TestParseNetworkConfigOptions(t *testing.T) {
	req := createReq(map[string]interface{}{
		OptMode: "bridge", OptBridgeName: "br-custom", OptICC: "false", OptMasquerade: "0",
		OptHostBindingIPv4: "198.18.0.11", OptMTU: "1400", OptIfacePrefix: "weft",
	}, pool24)
	req.Options[keyInternal] = true
	cfg, err := parseNetworkConfig(req)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge != "br-custom" || cfg.ICC || cfg.Masquerade || !cfg.Internal || cfg.MTU != 1400 ||
		cfg.HostBindingIPv4 != netip.MustParseAddr("198.18.0.11") || cfg.IfacePrefix != "weft" {
		t.Fatalf("options not applied: %+v", cfg)
	}
}

func TestParseNetworkConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		generic map[string]interface{}
		v4      *network.IPAMData
		ipv6    bool
		want    []string
	}{
		{"typo in bool", map[string]interface{}{OptICC: "flase"}, pool24, false,
			[]string{`invalid value "flase" for option com.docker.network.bridge.enable_icc`, "use true or false"}},
		{"unknown option", map[string]interface{}{"colour": "blue"}, pool24, false,
			[]string{`unknown option "colour"`, "accepted options are:", OptBridgeName, OptMTU}},
		{"long bridge name", map[string]interface{}{OptBridgeName: "a-very-long-bridge"}, pool24, false,
			[]string{OptBridgeName, "at most 15"}},
		{"bridge name with slash", map[string]interface{}{OptBridgeName: "br/0"}, pool24, false,
			[]string{OptBridgeName, "not allowed"}},
		// The kernel takes these, the firewall does not: they must fail at
		// create, before a record exists that would block every later start.
		{"bridge name with +", map[string]interface{}{OptBridgeName: "br+"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name with @", map[string]interface{}{OptBridgeName: "br@x"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name not ASCII", map[string]interface{}{OptBridgeName: "brü"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name with #", map[string]interface{}{OptBridgeName: "br#x"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name starting with -", map[string]interface{}{OptBridgeName: "-br"}, pool24, false,
			[]string{OptBridgeName, "starts with"}},
		{"mtu too big", map[string]interface{}{OptMTU: "70000"}, pool24, false,
			[]string{`invalid value "70000" for option com.docker.network.driver.mtu`, "from 68 to 65535"}},
		{"mtu not a number", map[string]interface{}{OptMTU: "big"}, pool24, false,
			[]string{OptMTU, "whole number"}},
		{"mtu too small for ipv6", map[string]interface{}{OptMTU: "1000"}, pool24, true,
			[]string{OptMTU, "IPv6 network needs at least 1280"}},
		{"bad host binding", map[string]interface{}{OptHostBindingIPv4: "::1"}, pool24, false,
			[]string{OptHostBindingIPv4, "IPv4 address"}},
		{"unknown mode", map[string]interface{}{OptMode: "brdige"}, pool24, false,
			[]string{`invalid value "brdige" for option mode`, "accepted modes are bridge"}},
		{"gateway outside subnet", nil, &network.IPAMData{Pool: "10.1.0.0/24", Gateway: "10.2.0.1/24"}, false,
			[]string{"--gateway 10.2.0.1 is outside --subnet 10.1.0.0/24"}},
		{"ipv6 without v6 subnet", nil, pool24, true,
			[]string{"--ipv6 needs an IPv6 subnet"}},
		{"bad prefix", map[string]interface{}{OptIfacePrefix: "e-th"}, pool24, false,
			[]string{OptIfacePrefix, "letters and digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := createReq(tt.generic, tt.v4)
			if tt.ipv6 {
				req.Options[keyEnableIPv6] = true
			}
			_, err := parseNetworkConfig(req)
			if err == nil {
				t.Fatal("accepted invalid input")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not classed as invalid input", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMACFromIPv4(t *testing.T) {
	ep := &Endpoint{IPv4: netip.MustParsePrefix("172.18.0.2/16")}
	if got := macFor(ep).String(); got != "02:42:ac:12:00:02" {
		t.Fatalf("mac = %s, want Docker's 02:42:ac:12:00:02", got)
	}
}

// TestParseNetworkConfigNullIPAMData: a null entry in IPv4Data or IPv6Data
// (hostile or broken input) is refused with an error, never dereferenced;
// with host_shim it reached three places that did.
func TestParseNetworkConfigNullIPAMData(t *testing.T) {
	shim := map[string]interface{}{OptMode: ModeMacvlan, OptHostShim: "10.1.0.250"}
	shim6 := map[string]interface{}{OptMode: ModeMacvlan, OptHostShim: "fd00:1::fa"}
	v6 := &network.IPAMData{Pool: "fd00:1::/64", Gateway: "fd00:1::1/64"}
	tests := []struct {
		name    string
		generic map[string]interface{}
		v4, v6  []*network.IPAMData
		want    string
	}{
		{"v4 only entry", nil, []*network.IPAMData{nil}, nil, "IPv4Data entry 1 is null"},
		{"v4 second entry", shim, []*network.IPAMData{pool24, nil}, nil, "IPv4Data entry 2 is null"},
		{"v4 with host_shim", shim, []*network.IPAMData{nil}, nil, "IPv4Data entry 1 is null"},
		{"v6 with host_shim", shim6, []*network.IPAMData{pool24}, []*network.IPAMData{nil, v6}, "IPv6Data entry 1 is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := createReq(tt.generic, tt.v4...)
			req.IPv6Data = tt.v6
			if tt.v6 != nil {
				req.Options[keyEnableIPv6] = true
			}
			_, err := parseNetworkConfig(req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid-input error containing %q", err, tt.want)
			}
		})
	}
}

// TestParseNetworkConfigID: link names are made from the network id, so
// an id no dockerd sends (found by FuzzNetworkOptions: "0000000 0" made
// the bridge name "wf-0000000 0") is refused.
func TestParseNetworkConfigID(t *testing.T) {
	for _, id := range []string{"", "0000000 0", "../../etc", "a/b", "n:1", "ünï", strings.Repeat("a", 129)} {
		req := createReq(nil, pool24)
		req.NetworkID = id
		_, err := parseNetworkConfig(req)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "network id") {
			t.Errorf("id %q: got %v, want an invalid-input error naming the network id", id, err)
		}
	}
	for _, id := range []string{"n1", "net-a", "ko1m1zcvtgr5k8lyqqde2f2lk", strings.Repeat("ab", 32)} {
		req := createReq(nil, pool24)
		req.NetworkID = id
		if _, err := parseNetworkConfig(req); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
}
