package firewall

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// sample is a ruleset touching every kind of rule, deliberately listed out of
// order.
func sample() Ruleset {
	return Ruleset{
		Networks: []Network{
			{Bridge: "wfi", Subnets: []netip.Prefix{pfx("10.3.0.0/24")}, ICC: true, Masquerade: true, Internal: true},
			{Bridge: "wfb", Subnets: []netip.Prefix{pfx("10.2.0.0/24")}, Masquerade: true, Gateways: []netip.Addr{addr("10.2.0.1")}},
			{Bridge: "wfa", Subnets: []netip.Prefix{pfx("fd01::/64"), pfx("10.1.0.0/24")}, ICC: true, Masquerade: true,
				Gateways: []netip.Addr{addr("fd01::1"), addr("10.1.0.1")}},
		},
		Ports: []PortMapping{
			{Bridge: "wfa", Proto: "udp", HostIP: addr("198.18.5.1"), HostPort: 5353, ContainerIP: addr("10.1.0.2"), ContainerPort: 53},
			{Bridge: "wfa", Proto: "tcp", HostPort: 8080, ContainerIP: addr("fd01::2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "tcp", HostPort: 8080, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Bridge: "wfb", Proto: "sctp", HostIP: addr("0.0.0.0"), HostPort: 9000, ContainerIP: addr("10.2.0.5"), ContainerPort: 9000},
		},
	}
}

const sampleV4 = `*filter
:WEFT-FORWARD - [0:0]
-A WEFT-FORWARD -i wfa -o wfa -j ACCEPT
-A WEFT-FORWARD -o wfa -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WEFT-FORWARD -d 10.1.0.2/32 ! -i wfa -o wfa -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
-A WEFT-FORWARD -d 10.1.0.2/32 ! -i wfa -o wfa -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j ACCEPT
-A WEFT-FORWARD -o wfa -j DROP
-A WEFT-FORWARD -i wfb -o wfb -j DROP
-A WEFT-FORWARD -o wfb -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WEFT-FORWARD -d 10.2.0.5/32 ! -i wfb -o wfb -p sctp -m sctp --dport 9000 -m conntrack --ctstate DNAT -j ACCEPT
-A WEFT-FORWARD -o wfb -j DROP
-A WEFT-FORWARD -i wfi -o wfi -j ACCEPT
-A WEFT-FORWARD -o wfi -j DROP
-A WEFT-FORWARD -i wfi -j DROP
-A WEFT-FORWARD -i wfa -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfa -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfa ! -o wfa -j ACCEPT
-A WEFT-FORWARD -i wfb -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfb -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfb ! -o wfb -j ACCEPT
-I FORWARD 1 -j WEFT-FORWARD
COMMIT
*mangle
:WEFT-ISOLATION - [0:0]
-A WEFT-ISOLATION -i wfa -o wfa -j RETURN
-A WEFT-ISOLATION -o wfa -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A WEFT-ISOLATION -d 10.1.0.2/32 ! -i wfa -o wfa -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j RETURN
-A WEFT-ISOLATION -d 10.1.0.2/32 ! -i wfa -o wfa -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j RETURN
-A WEFT-ISOLATION -o wfa -j DROP
-A WEFT-ISOLATION -i wfb -o wfb -j DROP
-A WEFT-ISOLATION -o wfb -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A WEFT-ISOLATION -d 10.2.0.5/32 ! -i wfb -o wfb -p sctp -m sctp --dport 9000 -m conntrack --ctstate DNAT -j RETURN
-A WEFT-ISOLATION -o wfb -j DROP
-A WEFT-ISOLATION -i wfi -o wfi -j RETURN
-A WEFT-ISOLATION -o wfi -j DROP
-A WEFT-ISOLATION -i wfi -j DROP
-A WEFT-ISOLATION -i wfa -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-ISOLATION -i wfa -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-ISOLATION -i wfb -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-ISOLATION -i wfb -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-I FORWARD 1 -j WEFT-ISOLATION
COMMIT
*nat
:WEFT-DNAT - [0:0]
:WEFT-POSTROUTING - [0:0]
-A WEFT-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
-A WEFT-DNAT -d 198.18.5.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.1.0.2:53
-A WEFT-DNAT -p sctp -m sctp --dport 9000 -j DNAT --to-destination 10.2.0.5:9000
-A WEFT-POSTROUTING -s 10.1.0.0/24 ! -o wfa -j MASQUERADE
-A WEFT-POSTROUTING -s 127.0.0.0/8 -o wfa -j MASQUERADE
-A WEFT-POSTROUTING -s 10.2.0.0/24 ! -o wfb -j MASQUERADE
-A WEFT-POSTROUTING -s 127.0.0.0/8 -o wfb -j MASQUERADE
-A WEFT-POSTROUTING -s 10.1.0.0/24 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE
-A WEFT-POSTROUTING -s 10.1.0.0/24 -d 10.1.0.2/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j MASQUERADE
-A WEFT-POSTROUTING -s 10.2.0.0/24 -d 10.2.0.5/32 -p sctp -m sctp --dport 9000 -m conntrack --ctstate DNAT -j MASQUERADE
-I PREROUTING 1 -m addrtype --dst-type LOCAL -j WEFT-DNAT
-I OUTPUT 1 -m addrtype --dst-type LOCAL -j WEFT-DNAT
-I POSTROUTING 1 -j WEFT-POSTROUTING
COMMIT
*raw
:WEFT-NOTRACK - [0:0]
-A WEFT-NOTRACK -d 10.1.0.1/32 -i wfa -j RETURN
-A WEFT-NOTRACK -s 10.1.0.2/32 -i wfa -p tcp -m tcp --sport 80 -j RETURN
-A WEFT-NOTRACK -s 10.1.0.2/32 -i wfa -p udp -m udp --sport 53 -j RETURN
-A WEFT-NOTRACK -s 10.1.0.0/24 -d 10.1.0.0/24 -i wfa -j CT --notrack
-A WEFT-NOTRACK -d 10.2.0.1/32 -i wfb -j RETURN
-A WEFT-NOTRACK -s 10.2.0.5/32 -i wfb -p sctp -m sctp --sport 9000 -j RETURN
-A WEFT-NOTRACK -s 10.2.0.0/24 -d 10.2.0.0/24 -i wfb -j CT --notrack
-A WEFT-NOTRACK -s 10.3.0.0/24 -d 10.3.0.0/24 -i wfi -j CT --notrack
-I PREROUTING 1 -j WEFT-NOTRACK
COMMIT
`

// IPv6: filter and raw rules only for the network with an IPv6 subnet, no
// masquerading of the network, but DNAT and hairpin for the IPv6 port.
const sampleV6 = `*filter
:WEFT-FORWARD - [0:0]
-A WEFT-FORWARD -i wfa -o wfa -j ACCEPT
-A WEFT-FORWARD -o wfa -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WEFT-FORWARD -d fd01::2/128 ! -i wfa -o wfa -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
-A WEFT-FORWARD -o wfa -j DROP
-A WEFT-FORWARD -i wfa -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfa -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-FORWARD -i wfa ! -o wfa -j ACCEPT
-I FORWARD 1 -j WEFT-FORWARD
COMMIT
*mangle
:WEFT-ISOLATION - [0:0]
-A WEFT-ISOLATION -i wfa -o wfa -j RETURN
-A WEFT-ISOLATION -o wfa -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A WEFT-ISOLATION -d fd01::2/128 ! -i wfa -o wfa -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j RETURN
-A WEFT-ISOLATION -o wfa -j DROP
-A WEFT-ISOLATION -i wfa -o docker+ -m conntrack ! --ctstate DNAT -j DROP
-A WEFT-ISOLATION -i wfa -o br-+ -m conntrack ! --ctstate DNAT -j DROP
-I FORWARD 1 -j WEFT-ISOLATION
COMMIT
*nat
:WEFT-DNAT - [0:0]
:WEFT-POSTROUTING - [0:0]
-A WEFT-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd01::2]:80
-A WEFT-POSTROUTING -s fd01::/64 -d fd01::2/128 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE
-I PREROUTING 1 -m addrtype --dst-type LOCAL -j WEFT-DNAT
-I OUTPUT 1 ! -d ::1/128 -m addrtype --dst-type LOCAL -j WEFT-DNAT
-I POSTROUTING 1 -j WEFT-POSTROUTING
COMMIT
*raw
:WEFT-NOTRACK - [0:0]
-A WEFT-NOTRACK -d fd01::1/128 -i wfa -j RETURN
-A WEFT-NOTRACK -s fd01::2/128 -i wfa -p tcp -m tcp --sport 80 -j RETURN
-A WEFT-NOTRACK -s fd01::/64 -d fd01::/64 -i wfa -j CT --notrack
-I PREROUTING 1 -j WEFT-NOTRACK
COMMIT
`

func mustNormalize(t *testing.T, r Ruleset) Ruleset {
	t.Helper()
	n, err := r.normalize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPlanFromScratch(t *testing.T) {
	r := mustNormalize(t, sample())
	for _, tc := range []struct {
		fam  family
		want string
	}{{ipv4, sampleV4}, {ipv6, sampleV6}} {
		if got, _ := plan(tc.fam, rulesFor(r, tc.fam), nil); got != tc.want {
			t.Errorf("%s restore input:\n%s\nwant:\n%s", tc.fam, got, tc.want)
		}
	}
}

// TestPlanOrderIndependent: the caller's order of networks, subnets and ports
// does not change the rules.
func TestPlanOrderIndependent(t *testing.T) {
	r := sample()
	rev := Ruleset{}
	for i := len(r.Networks) - 1; i >= 0; i-- {
		rev.Networks = append(rev.Networks, r.Networks[i])
	}
	for i := len(r.Ports) - 1; i >= 0; i-- {
		rev.Ports = append(rev.Ports, r.Ports[i], r.Ports[i]) // duplicates too
	}
	got, _ := plan(ipv4, rulesFor(mustNormalize(t, rev), ipv4), nil)
	if got != sampleV4 {
		t.Errorf("reordered ruleset gives:\n%s\nwant:\n%s", got, sampleV4)
	}
}

// TestIngressBeforeEgress: no network's egress rule may come before any
// network's ingress rules.
func TestIngressBeforeEgress(t *testing.T) {
	rules := rulesFor(mustNormalize(t, sample()), ipv4)[ChainForward]
	lastIngress, firstEgress := -1, len(rules)
	for i, r := range rules {
		egress := strings.Contains(r, "! -o ") || strings.Contains(r, "-o docker+") || strings.Contains(r, "-o br-+")
		if egress {
			firstEgress = min(firstEgress, i)
		} else {
			lastIngress = i
		}
	}
	if lastIngress > firstEgress {
		t.Errorf("ingress rule %d after egress rule %d:\n%s", lastIngress, firstEgress, strings.Join(rules, "\n"))
	}
}

// saveOf renders what iptables-save would print for tables: built-in
// chains, the given rules (chain -> rules) and weft's chains as wanted.
func saveOf(fam family, want chainRules, builtin map[string][]string) string {
	var b strings.Builder
	for _, table := range tables {
		b.WriteString("# Generated by iptables-save v1.8.9 (nf_tables)\n*" + table + "\n")
		base := []string{"INPUT", "FORWARD", "OUTPUT"}
		switch table {
		case "nat":
			base = []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
		case "raw":
			base = []string{"PREROUTING", "OUTPUT"}
		case "mangle":
			base = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
		}
		for _, c := range base {
			b.WriteString(":" + c + " ACCEPT [12:34]\n")
		}
		var rules []string
		for _, c := range base {
			for _, r := range builtin[table+"/"+c] {
				rules = append(rules, "-A "+c+" "+r)
			}
		}
		for _, def := range chainDefs {
			if def.table != table || len(want[def.name]) == 0 {
				continue
			}
			b.WriteString(":" + def.name + " - [0:0]\n")
			for _, r := range want[def.name] {
				rules = append(rules, "-A "+def.name+" "+r)
			}
		}
		b.WriteString(strings.Join(rules, "\n") + "\nCOMMIT\n# Completed\n")
	}
	return b.String()
}

// applied are the jumps as a fresh Apply leaves them, behind Docker's.
func applied(fam family) map[string][]string {
	out := map[string][]string{
		"filter/FORWARD":  {"-j DOCKER-USER", "-j WEFT-FORWARD", "-j DOCKER-ISOLATION-STAGE-1", "-o docker0 -j DOCKER"},
		"nat/PREROUTING":  {"-m addrtype --dst-type LOCAL -j DOCKER", "-m addrtype --dst-type LOCAL -j WEFT-DNAT"},
		"nat/OUTPUT":      {"-m addrtype --dst-type LOCAL -j WEFT-DNAT"},
		"nat/POSTROUTING": {"-j WEFT-POSTROUTING", "-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"},
		"filter/OUTPUT":   {"-j ACCEPT"},
		"mangle/FORWARD":  {"-j WEFT-ISOLATION", "-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"},
		"raw/PREROUTING":  {"-j WEFT-NOTRACK"},
	}
	if fam == ipv6 {
		out["nat/OUTPUT"] = []string{"! -d ::1/128 -m addrtype --dst-type LOCAL -j WEFT-DNAT"}
	}
	return out
}

func TestPlanNoChange(t *testing.T) {
	r := mustNormalize(t, sample())
	for _, fam := range []family{ipv4, ipv6} {
		want := rulesFor(r, fam)
		if got, changes := plan(fam, want, parseSave(saveOf(fam, want, applied(fam)))); got != "" || changes != nil {
			t.Errorf("%s: applied state should need no change, got:\n%s", fam, got)
		}
	}
	if got, _ := plan(ipv4, chainRules{}, parseSave(saveOf(ipv4, nil, nil))); got != "" {
		t.Errorf("empty ruleset on a clean host should need no change, got:\n%s", got)
	}
	if got, _ := plan(ipv4, chainRules{}, nil); got != "" {
		t.Errorf("empty ruleset without tables should need no change, got:\n%s", got)
	}
}

// TestPlanRemoval: an empty ruleset removes every jump (also duplicates) and
// chain, and the nat chains alone go when only the filter part is left.
func TestPlanRemoval(t *testing.T) {
	r := mustNormalize(t, sample())
	want := rulesFor(r, ipv4)
	state := applied(ipv4)
	state["filter/FORWARD"] = append(state["filter/FORWARD"], "-j WEFT-FORWARD")
	got, _ := plan(ipv4, chainRules{}, parseSave(saveOf(ipv4, want, state)))
	wantText := `*filter
-D FORWARD -j WEFT-FORWARD
-D FORWARD -j WEFT-FORWARD
-F WEFT-FORWARD
-X WEFT-FORWARD
COMMIT
*mangle
-D FORWARD -j WEFT-ISOLATION
-F WEFT-ISOLATION
-X WEFT-ISOLATION
COMMIT
*nat
-D OUTPUT -m addrtype --dst-type LOCAL -j WEFT-DNAT
-D PREROUTING -m addrtype --dst-type LOCAL -j WEFT-DNAT
-D POSTROUTING -j WEFT-POSTROUTING
-F WEFT-DNAT
-X WEFT-DNAT
-F WEFT-POSTROUTING
-X WEFT-POSTROUTING
COMMIT
*raw
-D PREROUTING -j WEFT-NOTRACK
-F WEFT-NOTRACK
-X WEFT-NOTRACK
COMMIT
`
	if got != wantText {
		t.Errorf("teardown:\n%s\nwant:\n%s", got, wantText)
	}

	// No masquerade, no ports: nat chains go, filter stays untouched.
	r2 := mustNormalize(t, Ruleset{Networks: []Network{
		{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}, ICC: true},
		{Bridge: "wfb", Subnets: []netip.Prefix{pfx("10.2.0.0/24")}},
		{Bridge: "wfi", Subnets: []netip.Prefix{pfx("10.3.0.0/24")}, ICC: true, Internal: true},
	}})
	want2 := rulesFor(r2, ipv4)
	if len(want2[ChainDNAT])+len(want2[ChainPostrouting]) != 0 {
		t.Fatalf("nat rules without masquerade or ports: %v", want2)
	}
	kernel := chainRules{ChainForward: want2[ChainForward], ChainIsolation: want2[ChainIsolation], ChainDNAT: want[ChainDNAT], ChainPostrouting: want[ChainPostrouting]}
	got, _ = plan(ipv4, want2, parseSave(saveOf(ipv4, kernel, applied(ipv4))))
	if strings.Contains(got, "*filter") || strings.Contains(got, "*mangle") || !strings.Contains(got, "-X WEFT-DNAT\n") || !strings.Contains(got, "-X WEFT-POSTROUTING\n") {
		t.Errorf("dropping nat only:\n%s", got)
	}
}

func TestParseSave(t *testing.T) {
	text := `# Generated by iptables-save v1.8.9 (nf_tables) on Mon Nov 23 07:14:22 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [10:600]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -m comment --comment "a -j B" -j RETURN
COMMIT
# Completed on Mon Nov 23 07:14:22 2026
# Warning: iptables-legacy tables present, use iptables-legacy-save to see them
`
	tabs := parseSave(text)
	f := tabs["filter"]
	if f == nil || !f.chains["FORWARD"] || !f.chains["DOCKER-USER"] || len(f.chains) != 3 {
		t.Fatalf("parsed %+v", f)
	}
	if got := f.rules["DOCKER-USER"]; len(got) != 1 || got[0] != `-m comment --comment "a -j B" -j RETURN` {
		t.Errorf("DOCKER-USER rules %q", got)
	}
	if !targets(f.rules["FORWARD"][0], "DOCKER-USER") || targets(f.rules["DOCKER-USER"][0], "DOCKER-USER") {
		t.Error("targets")
	}
}

func TestValidate(t *testing.T) {
	v4 := []netip.Prefix{pfx("10.1.0.0/24")}
	net := func(br string) Network { return Network{Bridge: br, Subnets: v4} }
	port := func(mod func(*PortMapping)) Ruleset {
		p := PortMapping{Bridge: "wfa", Proto: "tcp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80}
		mod(&p)
		return Ruleset{Networks: []Network{net("wfa"), {Bridge: "wfi", Subnets: []netip.Prefix{pfx("10.3.0.0/24")}, Internal: true}}, Ports: []PortMapping{p}}
	}
	for _, tc := range []struct {
		name  string
		r     Ruleset
		class error
		msg   string
	}{
		{"empty bridge", Ruleset{Networks: []Network{net("")}}, ErrInvalid, "cannot be empty"},
		{"long bridge", Ruleset{Networks: []Network{net("wf-0123456789abc")}}, ErrInvalid, "at most 15"},
		{"wildcard bridge", Ruleset{Networks: []Network{net("wf+")}}, ErrInvalid, "invalid bridge name"},
		{"space in bridge", Ruleset{Networks: []Network{net("wf a")}}, ErrInvalid, "invalid bridge name"},
		{"dash first", Ruleset{Networks: []Network{net("-j")}}, ErrInvalid, "invalid bridge name"},
		{"duplicate bridge", Ruleset{Networks: []Network{net("wfa"), net("wfa")}}, ErrInvalid, "listed as two networks"},
		{"no subnet", Ruleset{Networks: []Network{{Bridge: "wfa"}}}, ErrInvalid, "has no subnet"},
		{"bad proto", port(func(p *PortMapping) { p.Proto = "icmp" }), ErrInvalid, `unsupported protocol "icmp"`},
		{"port 0", port(func(p *PortMapping) { p.HostPort = 0 }), ErrInvalid, "port 0"},
		{"unknown bridge", port(func(p *PortMapping) { p.Bridge = "wfz" }), ErrInvalid, "not a network of the ruleset"},
		{"internal", port(func(p *PortMapping) { p.Bridge = "wfi"; p.ContainerIP = addr("10.3.0.2") }), ErrInvalid, "internal network wfi"},
		{"outside subnet", port(func(p *PortMapping) { p.ContainerIP = addr("10.9.0.2") }), ErrInvalid, "outside the subnets"},
		{"no container ip", port(func(p *PortMapping) { p.ContainerIP = netip.Addr{} }), ErrInvalid, "invalid container address"},
		{"family mismatch", port(func(p *PortMapping) { p.HostIP = addr("::") }), ErrInvalid, "same family"},
		{"conflict", Ruleset{Networks: []Network{net("wfa")}, Ports: []PortMapping{
			{Bridge: "wfa", Proto: "tcp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "tcp", HostIP: addr("192.0.2.1"), HostPort: 80, ContainerIP: addr("10.1.0.3"), ContainerPort: 80},
		}}, ErrConflict, "host port 0.0.0.0:80 is published twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if !errors.Is(err, tc.class) || !strings.Contains(errText(err), tc.msg) {
				t.Errorf("got %v, want %v containing %q", err, tc.class, tc.msg)
			}
		})
	}

	// Not conflicts: other protocol, other family, two distinct host IPs.
	ok := Ruleset{
		Networks: []Network{{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24"), pfx("fd01::/64")}}},
		Ports: []PortMapping{
			{Bridge: "wfa", Proto: "TCP", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "udp", HostPort: 80, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "tcp", HostIP: addr("::"), HostPort: 80, ContainerIP: addr("fd01::2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "tcp", HostIP: addr("192.0.2.1"), HostPort: 81, ContainerIP: addr("10.1.0.2"), ContainerPort: 80},
			{Bridge: "wfa", Proto: "tcp", HostIP: addr("192.0.2.2"), HostPort: 81, ContainerIP: addr("10.1.0.3"), ContainerPort: 80},
		},
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid ruleset rejected: %v", err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestMissingCommands needs no root: the commands are looked up before
// anything runs.
func TestMissingCommands(t *testing.T) {
	fw := New(Config{IPTables: "weft-no-such-iptables", IP6Tables: "weft-no-such-ip6tables"})
	err := fw.Apply(Ruleset{Networks: []Network{{Bridge: "wfa", Subnets: []netip.Prefix{pfx("fd01::/64")}}}})
	if err == nil || !strings.Contains(err.Error(), "network wfa has IPv6 subnet fd01::/64, but weft-no-such-ip6tables is not installed") {
		t.Errorf("Apply without ip6tables: %v", err)
	}
	if err := fw.Teardown(); err != nil {
		t.Errorf("Teardown without iptables: %v", err)
	}
	if err := fw.Apply(Ruleset{}); err != nil {
		t.Errorf("empty Apply without iptables: %v", err)
	}
}

func TestDetectParsing(t *testing.T) {
	if !hasDockerChains("*filter\n:DOCKER-USER - [0:0]\n") || !hasDockerChains("*nat\n:DOCKER - [0:0]\n") {
		t.Error("Docker chains not found")
	}
	if hasDockerChains("*filter\n:DOCKERISH - [0:0]\n:WEFT-FORWARD - [0:0]\n-A FORWARD -j DOCKER\n") {
		t.Error("false Docker chain")
	}
	if hasRules("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n") || !hasRules("*filter\n-A INPUT -j ACCEPT\n") {
		t.Error("hasRules")
	}
}

// TestRestoreError runs fake iptables commands: a failing iptables-restore
// is tried again (the tables may have changed under us), then reported with
// its standard error.
func TestRestoreError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, script string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("ipt-save", "printf '*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n'\n")
	// The notrack probe succeeds; the real restore fails.
	write("ipt-restore", "in=$(cat)\ncase \"$in\" in *WEFT-PROBE*) exit 0;; esac\nprintf '%s\\n' \"$in\" >> \"$0.in\"\necho \"$*\" >> \"$0.args\"\necho 'iptables-restore: line 3 failed' >&2\nexit 1\n")
	fw := New(Config{IPTables: filepath.Join(dir, "ipt"), IP6Tables: "weft-no-such-ip6tables"})
	err := fw.Apply(Ruleset{Networks: []Network{{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "apply "+dir+"/ipt rules: ") || !strings.HasSuffix(err.Error(), ": exit status 1: iptables-restore: line 3 failed") {
		t.Errorf("error: %v", err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "ipt-restore.args"))
	if string(args) != strings.Repeat("--noflush -w\n", attempts) {
		t.Errorf("iptables-restore runs:\n%s", args)
	}
	in, _ := os.ReadFile(filepath.Join(dir, "ipt-restore.in"))
	if !strings.HasPrefix(string(in), "*filter\n:WEFT-FORWARD - [0:0]\n") || !strings.Contains(string(in), "-I FORWARD 1 -j WEFT-FORWARD\nCOMMIT\n") {
		t.Errorf("iptables-restore input:\n%s", in)
	}
}
