package firewall

import (
	"net/netip"
	"slices"
	"testing"
)

// TestKeptRules: the rules of a kept bridge stay, in their order, and keep
// their place relative to the wanted rules; nothing of another network is
// taken for them.
func TestKeptRules(t *testing.T) {
	kept := []KeptNetwork{{Bridge: "wf-old", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}}}
	saved := parseSave(`*filter
:WEFT-FORWARD - [0:0]
-A WEFT-FORWARD -i wf-old -o wf-old -j ACCEPT
-A WEFT-FORWARD -o wf-old -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WEFT-FORWARD -o wf-old -j DROP
-A WEFT-FORWARD -i wf-gone -o wf-gone -j ACCEPT
-A WEFT-FORWARD -i wf-old ! -o wf-old -j ACCEPT
COMMIT
*nat
:WEFT-DNAT - [0:0]
:WEFT-POSTROUTING - [0:0]
-A WEFT-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
-A WEFT-DNAT -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.9.0.2:80
-A WEFT-POSTROUTING -s 10.1.0.0/24 ! -o wf-old -j MASQUERADE
-A WEFT-POSTROUTING -s 10.1.0.2/32 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
COMMIT
`)
	r := Ruleset{
		Networks: []Network{{Bridge: "wf-new", Subnets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}, ICC: true}},
		Kept:     kept,
	}
	n, err := r.normalize()
	if err != nil {
		t.Fatal(err)
	}
	got := withKept(rulesFor(n, ipv4), n, saved)
	fwd := got[ChainForward]
	wantFirst := []string{
		"-i wf-old -o wf-old -j ACCEPT",
		"-o wf-old -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-o wf-old -j DROP",
	}
	if !slices.Equal(fwd[:3], wantFirst) {
		t.Errorf("WEFT-FORWARD starts with %q, want the kept ingress rules %q", fwd[:3], wantFirst)
	}
	if fwd[len(fwd)-1] != "-i wf-old ! -o wf-old -j ACCEPT" {
		t.Errorf("WEFT-FORWARD ends with %q, want the kept egress rule", fwd[len(fwd)-1])
	}
	if slices.Contains(fwd, "-i wf-gone -o wf-gone -j ACCEPT") {
		t.Error("a rule of a bridge that is not kept was kept")
	}
	if !slices.Contains(fwd, "-o wf-new -j DROP") {
		t.Error("the wanted network's rules are missing")
	}
	if d := got[ChainDNAT]; !slices.Equal(d, []string{"-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80"}) {
		t.Errorf("WEFT-DNAT = %q, want only the kept network's port", d)
	}
	if p := got[ChainPostrouting]; len(p) != 2 {
		t.Errorf("WEFT-POSTROUTING = %q, want the kept masquerade and hairpin rules", p)
	}
	// WEFT-ISOLATION follows the merged WEFT-FORWARD, so a bridge kept
	// from a weft that had no such chain is isolated there too.
	if iso := got[ChainIsolation]; !slices.Equal(iso, isolation(fwd)) || !slices.Contains(iso, "-o wf-old -j DROP") ||
		!slices.Contains(iso, "-o wf-new -j DROP") || slices.Contains(iso, "-i wf-old ! -o wf-old -j ACCEPT") {
		t.Errorf("WEFT-ISOLATION = %q, want the isolation rules of the kept and the wanted network", iso)
	}
	// Without kept networks, nothing of the kernel's is carried over.
	r.Kept = nil
	n, _ = r.normalize()
	if got := withKept(rulesFor(n, ipv4), n, saved); len(got[ChainDNAT]) != 0 {
		t.Errorf("rules kept without a kept network: %q", got[ChainDNAT])
	}
}
