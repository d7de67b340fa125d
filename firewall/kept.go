package firewall

import (
	"net/netip"
	"strings"
)

// keptRules picks, from the tables as the kernel holds them, the rules of
// weft's chains that belong to r's kept networks (see Ruleset.Kept), chain
// by chain in their current order. WEFT-FORWARD's are split as rulesFor
// lays the chain out: rules that decide what enters a kept bridge ("-o BR")
// go with the ingress rules, the others with the egress rules.
func keptRules(r Ruleset, cur map[string]*savedTable) (ingress []string, other chainRules) {
	other = chainRules{}
	if len(r.Kept) == 0 {
		return nil, other
	}
	for _, def := range chainDefs {
		tab := cur[def.table]
		if tab == nil || def.name == ChainIsolation {
			// WEFT-ISOLATION is derived from WEFT-FORWARD (see
			// withKept), also for bridges of a weft that had none.
			continue
		}
		for _, spec := range tab.rules[def.name] {
			if !belongsToKept(spec, r.Kept) {
				continue
			}
			if def.name == ChainForward && entersKept(spec, r.Kept) {
				ingress = append(ingress, spec)
				continue
			}
			other[def.name] = append(other[def.name], spec)
		}
	}
	return ingress, other
}

// withKept adds the kept networks' rules to want. In WEFT-FORWARD the rules
// that decide what enters a kept bridge go first: they match only packets
// to that bridge, so above everything they act as they did in the ingress
// part of the chain, before any network's egress accept. Every other kept
// rule is scoped to its bridge or addresses and goes last.
func withKept(want chainRules, r Ruleset, cur map[string]*savedTable) chainRules {
	ingress, other := keptRules(r, cur)
	if len(ingress) == 0 && len(other) == 0 {
		return want
	}
	out := chainRules{}
	for chain, rules := range want {
		out[chain] = rules
	}
	if len(ingress) > 0 {
		out[ChainForward] = append(append([]string(nil), ingress...), out[ChainForward]...)
	}
	for chain, rules := range other {
		out[chain] = dedupe(append(append([]string(nil), out[chain]...), rules...))
	}
	if len(out[ChainForward]) > 0 {
		out[ChainIsolation] = isolation(out[ChainForward])
	}
	return out
}

// belongsToKept says whether a rule names a kept bridge ("-i BR", "-o BR")
// or an address of a kept subnet ("-s", "-d", "--to-destination").
func belongsToKept(spec string, kept []KeptNetwork) bool {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		arg := f[i+1]
		switch f[i] {
		case "-i", "-o":
			for _, k := range kept {
				if arg == k.Bridge {
					return true
				}
			}
		case "-s", "-d":
			if p, err := netip.ParsePrefix(arg); err == nil && inKept(p.Addr(), kept) {
				return true
			}
		case "--to-destination":
			if ap, err := netip.ParseAddrPort(arg); err == nil && inKept(ap.Addr(), kept) {
				return true
			} else if a, err := netip.ParseAddr(arg); err == nil && inKept(a, kept) {
				return true
			}
		}
	}
	return false
}

// entersKept says whether a rule matches "-o BR" (not negated) for a kept
// bridge.
func entersKept(spec string, kept []KeptNetwork) bool {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "-o" || (i > 0 && f[i-1] == "!") {
			continue
		}
		for _, k := range kept {
			if f[i+1] == k.Bridge {
				return true
			}
		}
	}
	return false
}

func inKept(a netip.Addr, kept []KeptNetwork) bool {
	for _, k := range kept {
		if inSubnets(k.Subnets, a.Unmap()) {
			return true
		}
	}
	return false
}
