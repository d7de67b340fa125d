package firewall

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestGatewayRules: what each gateway option changes in the rules, without
// a kernel (TestKernelGatewayModes shows what they do).
func TestGatewayRules(t *testing.T) {
	n := Network{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24"), pfx("fd01::/64")}, ICC: true, Masquerade: true}
	port := []PortMapping{
		{Bridge: "wfa", Proto: "tcp", HostPort: 8080, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
		{Bridge: "wfa", Proto: "tcp", HostPort: 8080, ContainerIP: addr("fd01::2"), ContainerPort: 80},
	}
	rules := func(mod func(*Network), fam family) chainRules {
		m := n
		mod(&m)
		return rulesFor(mustNormalize(t, Ruleset{Networks: []Network{m}, Ports: port}), fam)
	}
	for _, tc := range []struct {
		name      string
		mod       func(*Network)
		fam       family
		chain     string
		has, hasn []string
	}{
		{"routed: no DNAT", func(n *Network) { n.GatewayModeIPv4 = GatewayRouted }, ipv4, ChainDNAT, nil,
			[]string{"--dport 8080"}},
		{"routed: no masquerade", func(n *Network) { n.GatewayModeIPv4 = GatewayRouted }, ipv4, ChainPostrouting, nil,
			[]string{"-s 10.1.0.0/24 ! -o wfa -j MASQUERADE"}},
		{"routed: port and ICMP open", func(n *Network) { n.GatewayModeIPv4 = GatewayRouted }, ipv4, ChainForward,
			[]string{"-o wfa -p icmp -j ACCEPT", "-d 10.1.0.2/32 ! -i wfa -o wfa -p tcp -m tcp --dport 80 -j ACCEPT", "-o wfa -j DROP"}, nil},
		{"routed IPv4 leaves IPv6 nat", func(n *Network) { n.GatewayModeIPv4 = GatewayRouted }, ipv6, ChainDNAT,
			[]string{"-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd01::2]:80"}, nil},
		{"routed IPv6 ICMPv6", func(n *Network) { n.GatewayModeIPv6 = GatewayRouted }, ipv6, ChainForward,
			[]string{"-o wfa -p ipv6-icmp -j ACCEPT"}, nil},
		{"nat-unprotected", func(n *Network) { n.GatewayModeIPv4 = GatewayNATUnprotected }, ipv4, ChainForward,
			[]string{"-o wfa -j ACCEPT"}, []string{"-o wfa -j DROP"}},
		{"trusted", func(n *Network) { n.TrustedInterfaces = []string{"eth1"} }, ipv4, ChainForward,
			[]string{"-d 10.1.0.2/32 -i eth1 -o wfa -p tcp -m tcp --dport 80 -j ACCEPT", "-o wfa -j DROP"}, nil},
		{"host_ipv4", func(n *Network) { n.HostIPv4 = addr("192.0.2.7") }, ipv4, ChainPostrouting,
			[]string{"-s 10.1.0.0/24 ! -o wfa -j SNAT --to-source 192.0.2.7"}, []string{"-s 10.1.0.0/24 ! -o wfa -j MASQUERADE"}},
		{"no host_ipv6: IPv6 untranslated", func(*Network) {}, ipv6, ChainPostrouting, nil, []string{"-s fd01::/64 ! -o"}},
		{"host_ipv6", func(n *Network) { n.HostIPv6 = addr("2001:db8::7") }, ipv6, ChainPostrouting,
			[]string{"-s fd01::/64 ! -o wfa -j SNAT --to-source 2001:db8::7"}, nil},
		{"host_ipv4 without masquerade", func(n *Network) { n.HostIPv4 = addr("192.0.2.7"); n.Masquerade = false }, ipv4, ChainPostrouting,
			nil, []string{"SNAT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rules(tc.mod, tc.fam)[tc.chain]
			for _, r := range tc.has {
				if !slices.Contains(got, r) {
					t.Errorf("%s lacks %q:\n%s", tc.chain, r, strings.Join(got, "\n"))
				}
			}
			for _, r := range tc.hasn {
				if slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, r) }) {
					t.Errorf("%s has %q:\n%s", tc.chain, r, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestValidateGateway(t *testing.T) {
	base := Network{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}}
	for _, tc := range []struct {
		name string
		mod  func(*Network)
		msg  string
	}{
		{"unknown mode", func(n *Network) { n.GatewayModeIPv4 = "bridged" }, `unknown gateway mode "bridged"`},
		{"isolated not internal", func(n *Network) { n.GatewayModeIPv6 = GatewayIsolated }, "isolated but is not internal"},
		{"wildcard interface", func(n *Network) { n.TrustedInterfaces = []string{"eth+"} }, "invalid trusted interface"},
		{"space in interface", func(n *Network) { n.TrustedInterfaces = []string{"eth1 -j"} }, "invalid trusted interface"},
		{"host_ipv4 of IPv6", func(n *Network) { n.HostIPv4 = addr("::1") }, "wrong family"},
		{"host_ipv6 of IPv4", func(n *Network) { n.HostIPv6 = addr("192.0.2.1") }, "wrong family"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			tc.mod(&n)
			err := Ruleset{Networks: []Network{n}}.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(errText(err), tc.msg) {
				t.Errorf("got %v, want invalid containing %q", err, tc.msg)
			}
		})
	}
	ok := base
	ok.Internal, ok.GatewayModeIPv4, ok.TrustedInterfaces = true, GatewayIsolated, []string{"vxlan.1"}
	if err := (Ruleset{Networks: []Network{ok}}).Validate(); err != nil {
		t.Errorf("valid gateway options refused: %v", err)
	}
}
