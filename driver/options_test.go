package driver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func createReq(generic map[string]string, v4 ...IPAMData) *NetworkRequest {
	opts := map[string]string{}
	for k, v := range generic {
		opts[k] = v
	}
	return &NetworkRequest{NetworkID: "0123456789abcdef0123", Options: opts, IPv4Data: v4}
}

var pool24 = IPAMData{Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24"}

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
	req := createReq(map[string]string{
		OptMode: "bridge", OptBridgeName: "br-custom", OptICC: "false", OptMasquerade: "0",
		OptHostBindingIPv4: "198.18.0.11", OptMTU: "1400", OptIfacePrefix: "weft",
	}, pool24)
	req.Internal = true
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
		generic map[string]string
		v4      IPAMData
		ipv6    bool
		want    []string
	}{
		{"typo in bool", map[string]string{OptICC: "flase"}, pool24, false,
			[]string{`invalid value "flase" for option com.docker.network.bridge.enable_icc`, "use true or false"}},
		{"unknown option", map[string]string{"colour": "blue"}, pool24, false,
			[]string{`unknown option "colour"`, "accepted options are:", OptBridgeName, OptMTU}},
		{"long bridge name", map[string]string{OptBridgeName: "a-very-long-bridge"}, pool24, false,
			[]string{OptBridgeName, "at most 15"}},
		{"bridge name with slash", map[string]string{OptBridgeName: "br/0"}, pool24, false,
			[]string{OptBridgeName, "not allowed"}},
		// The kernel takes these, the firewall does not: they must fail at
		// create, before a record exists that would block every later start.
		{"bridge name with +", map[string]string{OptBridgeName: "br+"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name with @", map[string]string{OptBridgeName: "br@x"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name not ASCII", map[string]string{OptBridgeName: "brü"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name with #", map[string]string{OptBridgeName: "br#x"}, pool24, false,
			[]string{OptBridgeName, "use only letters, digits"}},
		{"bridge name starting with -", map[string]string{OptBridgeName: "-br"}, pool24, false,
			[]string{OptBridgeName, "starts with"}},
		{"mtu too big", map[string]string{OptMTU: "70000"}, pool24, false,
			[]string{`invalid value "70000" for option com.docker.network.driver.mtu`, "from 68 to 65535"}},
		{"mtu not a number", map[string]string{OptMTU: "big"}, pool24, false,
			[]string{OptMTU, "whole number"}},
		{"mtu too small for ipv6", map[string]string{OptMTU: "1000"}, pool24, true,
			[]string{OptMTU, "IPv6 network needs at least 1280"}},
		{"bad host binding", map[string]string{OptHostBindingIPv4: "::1"}, pool24, false,
			[]string{OptHostBindingIPv4, "IPv4 address"}},
		{"unknown mode", map[string]string{OptMode: "brdige"}, pool24, false,
			[]string{`invalid value "brdige" for option mode`, "accepted modes are bridge"}},
		{"gateway outside subnet", nil, IPAMData{Pool: "10.1.0.0/24", Gateway: "10.2.0.1/24"}, false,
			[]string{"--gateway 10.2.0.1 is outside --subnet 10.1.0.0/24"}},
		{"ipv6 without v6 subnet", nil, pool24, true,
			[]string{"--ipv6 needs an IPv6 subnet"}},
		{"bad prefix", map[string]string{OptIfacePrefix: "e-th"}, pool24, false,
			[]string{OptIfacePrefix, "letters and digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := createReq(tt.generic, tt.v4)
			if tt.ipv6 {
				req.IPv6 = true
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
