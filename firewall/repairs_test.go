package firewall

import (
	"slices"
	"strings"
	"testing"
)

// TestPlanRepairs: from a state someone else changed, plan writes only what
// puts weft's chains and jumps back, and says what it found.
func TestPlanRepairs(t *testing.T) {
	r := mustNormalize(t, sample())
	want := rulesFor(r, ipv4)
	for _, tc := range []struct {
		name    string
		edit    func(state map[string][]string, want chainRules)
		patch   string
		changes []string
	}{
		{
			name: "rule inserted between DOCKER-USER and the FORWARD jump",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = append([]string{"-j DOCKER-USER", "-s 192.0.2.1/32 -j DROP"}, s["filter/FORWARD"][1:]...)
			},
			patch:   "*filter\n-D FORWARD -j WEFT-FORWARD\n-I FORWARD 2 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is behind -s 192.0.2.1/32 -j DROP"},
		},
		{
			name: "rule inserted above DOCKER-USER: left there",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = append([]string{"-s 192.0.2.1/32 -j DROP"}, s["filter/FORWARD"]...)
			},
		},
		{
			name: "no DOCKER-USER, a rule on top: the jump goes first",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = []string{"-s 192.0.2.1/32 -j DROP", "-j WEFT-FORWARD"}
			},
			patch:   "*filter\n-D FORWARD -j WEFT-FORWARD\n-I FORWARD 1 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is behind -s 192.0.2.1/32 -j DROP"},
		},
		{
			name: "dockerd 20.10 restarted: its chains jumped to above weft's",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = []string{"-j DOCKER-USER", "-j DOCKER-ISOLATION-STAGE-1", "-o docker0 -j DOCKER", "-j WEFT-FORWARD"}
			},
			patch:   "*filter\n-D FORWARD -j WEFT-FORWARD\n-I FORWARD 2 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is behind -j DOCKER-ISOLATION-STAGE-1"},
		},
		{
			name: "dockerd 28+ restarted: DOCKER-USER, then DOCKER-FORWARD above weft's",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = []string{"-j DOCKER-USER", "-j DOCKER-FORWARD", "-j WEFT-FORWARD"}
			},
			patch:   "*filter\n-D FORWARD -j WEFT-FORWARD\n-I FORWARD 2 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is behind -j DOCKER-FORWARD"},
		},
		{
			name: "iptables -F FORWARD",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = nil
			},
			patch:   "*filter\n-I FORWARD 1 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is missing"},
		},
		{
			name: "mangle flushed",
			edit: func(s map[string][]string, w chainRules) {
				s["mangle/FORWARD"] = nil
				w[ChainIsolation] = nil
			},
			patch: "*mangle\n:WEFT-ISOLATION - [0:0]\n" + prefixLines("-A WEFT-ISOLATION ", want[ChainIsolation]) +
				"-I FORWARD 1 -j WEFT-ISOLATION\nCOMMIT\n",
			changes: []string{"IPv4 mangle: chain WEFT-ISOLATION is missing", "IPv4 mangle: jump FORWARD -j WEFT-ISOLATION is missing"},
		},
		{
			name: "rules of weft's chain reordered",
			edit: func(_ map[string][]string, w chainRules) {
				w[ChainNotrack][0], w[ChainNotrack][1] = w[ChainNotrack][1], w[ChainNotrack][0]
			},
			patch:   "*raw\n:WEFT-NOTRACK - [0:0]\n" + prefixLines("-A WEFT-NOTRACK ", want[ChainNotrack]) + "COMMIT\n",
			changes: []string{"IPv4 raw: chain WEFT-NOTRACK has its rules in another order"},
		},
		{
			name: "jump first, before DOCKER-USER: goes behind it, so users' rules there apply to weft's networks",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = []string{"-j WEFT-FORWARD", "-j DOCKER-USER"}
			},
			patch:   "*filter\n-D FORWARD -j WEFT-FORWARD\n-I FORWARD 2 -j WEFT-FORWARD\nCOMMIT\n",
			changes: []string{"IPv4 filter: jump FORWARD -j WEFT-FORWARD is ahead of -j DOCKER-USER"},
		},
		{
			name: "jump missing: goes right after DOCKER-USER",
			edit: func(s map[string][]string, _ chainRules) {
				s["filter/FORWARD"] = []string{"-j DOCKER-USER", "-j DOCKER-ISOLATION-STAGE-1"}
			},
			patch: "*filter\n-I FORWARD 2 -j WEFT-FORWARD\nCOMMIT\n",
		},
		{
			name: "duplicate jumps",
			edit: func(s map[string][]string, _ chainRules) {
				s["nat/POSTROUTING"] = append(s["nat/POSTROUTING"], "-j WEFT-POSTROUTING")
			},
			patch: "*nat\n-D POSTROUTING -j WEFT-POSTROUTING\n-D POSTROUTING -j WEFT-POSTROUTING\n-I POSTROUTING 1 -j WEFT-POSTROUTING\nCOMMIT\n",
		},
		{
			name: "nat jump of an older shape",
			edit: func(s map[string][]string, _ chainRules) {
				s["nat/OUTPUT"] = []string{"! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j WEFT-DNAT"}
			},
			patch: "*nat\n-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j WEFT-DNAT\n-I OUTPUT 1 -m addrtype --dst-type LOCAL -j WEFT-DNAT\nCOMMIT\n",
		},
		{
			name: "stray rule in weft's chain",
			edit: func(_ map[string][]string, w chainRules) {
				w[ChainDNAT] = append(w[ChainDNAT], "-p tcp -m tcp --dport 1 -j DNAT --to-destination 10.9.9.9:1")
			},
			patch:   "*nat\n:WEFT-DNAT - [0:0]\n" + prefixLines("-A WEFT-DNAT ", want[ChainDNAT]) + "COMMIT\n",
			changes: []string{"IPv4 nat: chain WEFT-DNAT holds 1 rules that are not weft's"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := applied(ipv4)
			kernel := chainRules{}
			for k, v := range want {
				kernel[k] = append([]string(nil), v...)
			}
			tc.edit(state, kernel)
			got, changes := plan(ipv4, want, parseSave(saveOf(ipv4, kernel, state)))
			if got != tc.patch {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.patch)
			}
			if tc.changes != nil && !slices.Equal(changes, tc.changes) {
				t.Errorf("changes %q, want %q", changes, tc.changes)
			}
		})
	}
}

func prefixLines(prefix string, lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}
