package driver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/internal/netmode"
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
	n, err := parseNetwork(createReq(nil, pool24))
	if err != nil {
		t.Fatal(err)
	}
	cfg, b := n.Config, bridgeOf(n).Options
	if b.Bridge != "wf-0123456789ab" || !b.ICC || !b.Masquerade || cfg.Internal || cfg.MTU != 0 || cfg.IfacePrefix != "eth" {
		t.Fatalf("unexpected defaults: %+v %+v", cfg, b)
	}
	want := netmode.Subnet{Pool: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParsePrefix("10.1.0.1/24")}
	if len(cfg.IPv4Subnets) != 1 || cfg.IPv4Subnets[0] != want {
		t.Fatalf("subnets = %+v, want %+v", cfg.IPv4Subnets, want)
	}
}

func TestParseNetworkConfigOptions(t *testing.T) {
	req := createReq(map[string]string{
		OptMode: "bridge", bridge.OptName: "br-custom", bridge.OptICC: "false", bridge.OptMasquerade: "0",
		bridge.OptHostBindingIPv4: "198.18.0.11", netmode.OptMTU: "1400", netmode.OptIfacePrefix: "weft",
	}, pool24)
	req.Internal = true
	n, err := parseNetwork(req)
	if err != nil {
		t.Fatal(err)
	}
	cfg, b := n.Config, bridgeOf(n).Options
	if b.Bridge != "br-custom" || b.ICC || b.Masquerade || !cfg.Internal || cfg.MTU != 1400 ||
		b.HostBindingIPv4 != netip.MustParseAddr("198.18.0.11") || cfg.IfacePrefix != "weft" {
		t.Fatalf("options not applied: %+v %+v", cfg, b)
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
		{"typo in bool", map[string]string{bridge.OptICC: "flase"}, pool24, false,
			[]string{`invalid value "flase" for option com.docker.network.bridge.enable_icc`, "use true or false"}},
		{"unknown option", map[string]string{"colour": "blue"}, pool24, false,
			[]string{`unknown option "colour"`, "accepted options are:", bridge.OptName, netmode.OptMTU}},
		{"long bridge name", map[string]string{bridge.OptName: "a-very-long-bridge"}, pool24, false,
			[]string{bridge.OptName, "at most 15"}},
		{"bridge name with slash", map[string]string{bridge.OptName: "br/0"}, pool24, false,
			[]string{bridge.OptName, "not allowed"}},
		// The kernel takes these, the firewall does not: they must fail at
		// create, before a record exists that would block every later start.
		{"bridge name with +", map[string]string{bridge.OptName: "br+"}, pool24, false,
			[]string{bridge.OptName, "use only letters, digits"}},
		{"bridge name with @", map[string]string{bridge.OptName: "br@x"}, pool24, false,
			[]string{bridge.OptName, "use only letters, digits"}},
		{"bridge name not ASCII", map[string]string{bridge.OptName: "brü"}, pool24, false,
			[]string{bridge.OptName, "use only letters, digits"}},
		{"bridge name with #", map[string]string{bridge.OptName: "br#x"}, pool24, false,
			[]string{bridge.OptName, "use only letters, digits"}},
		{"bridge name starting with -", map[string]string{bridge.OptName: "-br"}, pool24, false,
			[]string{bridge.OptName, "starts with"}},
		{"mtu too big", map[string]string{netmode.OptMTU: "70000"}, pool24, false,
			[]string{`invalid value "70000" for option com.docker.network.driver.mtu`, "from 68 to 65535"}},
		{"mtu not a number", map[string]string{netmode.OptMTU: "big"}, pool24, false,
			[]string{netmode.OptMTU, "whole number"}},
		{"mtu too small for ipv6", map[string]string{netmode.OptMTU: "1000"}, pool24, true,
			[]string{netmode.OptMTU, "IPv6 network needs at least 1280"}},
		{"bad host binding", map[string]string{bridge.OptHostBindingIPv4: "::1"}, pool24, false,
			[]string{bridge.OptHostBindingIPv4, "IPv4 address"}},
		{"unknown mode", map[string]string{OptMode: "brdige"}, pool24, false,
			[]string{`invalid value "brdige" for option mode`, "accepted modes are bridge"}},
		{"gateway outside subnet", nil, IPAMData{Pool: "10.1.0.0/24", Gateway: "10.2.0.1/24"}, false,
			[]string{"--gateway 10.2.0.1 is outside --subnet 10.1.0.0/24"}},
		{"ipv6 without v6 subnet", nil, pool24, true,
			[]string{"--ipv6 needs an IPv6 subnet"}},
		{"bad prefix", map[string]string{netmode.OptIfacePrefix: "e-th"}, pool24, false,
			[]string{netmode.OptIfacePrefix, "letters and digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := createReq(tt.generic, tt.v4)
			if tt.ipv6 {
				req.IPv6 = true
			}
			_, err := parseNetwork(req)
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

// TestParseNetworkConfigID: link names are made from the network id, so
// an id no dockerd sends (found by FuzzNetworkOptions: "0000000 0" made
// the bridge name "wf-0000000 0") is refused.
func TestParseNetworkConfigID(t *testing.T) {
	for _, id := range []string{"", "0000000 0", "../../etc", "a/b", "n:1", "ünï", strings.Repeat("a", 129)} {
		req := createReq(nil, pool24)
		req.NetworkID = id
		_, err := parseNetwork(req)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "network id") {
			t.Errorf("id %q: got %v, want an invalid-input error naming the network id", id, err)
		}
	}
	for _, id := range []string{"n1", "net-a", "ko1m1zcvtgr5k8lyqqde2f2lk", strings.Repeat("ab", 32)} {
		req := createReq(nil, pool24)
		req.NetworkID = id
		if _, err := parseNetwork(req); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
}
