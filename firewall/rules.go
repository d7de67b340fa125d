package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// family is an address family: which of iptables and ip6tables a rule is for.
type family int

const (
	ipv4 family = iota
	ipv6
)

func (fam family) String() string {
	if fam == ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// chainDef describes one weft chain: its table and the rules of built-in
// chains that jump to it.
type chainDef struct {
	table, name string
	jumps       func(family) []jump
}

// jump is a rule in a built-in chain (from) whose target is a weft chain.
type jump struct {
	from string
	// spec is the rule as iptables-save prints it, after "-A <from> ": Apply
	// compares it with what the kernel holds, so it must be canonical.
	spec string
	// early asks for the jump to come first in the chain, or right behind
	// Docker's DOCKER-USER jump if there is one (see earlyOK).
	early bool
}

// chainDefs lists weft's chains in the order they are handled, table by
// table. It is the single place where jumps are defined.
var chainDefs = []chainDef{
	{table: "filter", name: ChainForward, jumps: func(family) []jump {
		// First, so that weft's accepts come before Docker's drops and
		// the FORWARD policy. Isolation does not hang on it: that is
		// WEFT-ISOLATION's job.
		return []jump{{from: "FORWARD", spec: "-j " + ChainForward, early: true}}
	}},
	{table: "mangle", name: ChainIsolation, jumps: func(family) []jump {
		// First too: the chain only drops and returns, so it changes
		// nothing for the rules behind it, and a rule above it that
		// accepts would skip it.
		return []jump{{from: "FORWARD", spec: "-j " + ChainIsolation, early: true}}
	}},
	{table: "nat", name: ChainDNAT, jumps: func(fam family) []jump {
		// IPv4 loopback is not excluded: there is no userland proxy, so
		// a host process reaching a published port on 127.0.0.1 is
		// DNATed here (as Docker does with --userland-proxy=false). The
		// bridge needs route_localnet=1 for that, and WEFT-POSTROUTING
		// masquerades the 127/8 source. IPv6 has no route_localnet: ::1
		// stays out.
		output := "-m addrtype --dst-type LOCAL -j " + ChainDNAT
		if fam == ipv6 {
			output = "! -d ::1/128 " + output
		}
		return []jump{
			{from: "PREROUTING", spec: "-m addrtype --dst-type LOCAL -j " + ChainDNAT},
			{from: "OUTPUT", spec: output},
		}
	}},
	{table: "nat", name: ChainPostrouting, jumps: func(family) []jump {
		return []jump{{from: "POSTROUTING", spec: "-j " + ChainPostrouting}}
	}},
	{table: "filter", name: ChainInput, jumps: func(family) []jump {
		return []jump{{from: "INPUT", spec: "-j " + ChainInput, early: true}}
	}},
	{table: "raw", name: ChainNotrack, jumps: func(family) []jump {
		return []jump{{from: "PREROUTING", spec: "-j " + ChainNotrack}}
	}},
}

// tables lists the tables weft writes to, in the order they are committed.
var tables = []string{"filter", "mangle", "nat", "raw"}

// chainRules maps a weft chain's name to its rules, each as iptables-save
// prints it after "-A <chain> ". A chain with no rules must not exist.
type chainRules map[string][]string

// rulesFor turns a normalized Ruleset into the content of weft's chains for
// one address family. It is pure: the kernel is not consulted.
//
// Layout of WEFT-FORWARD, for every network that has a subnet of the family,
// in bridge order:
//
//	ingress (all networks first)
//	  -i BR -o BR -j ACCEPT|DROP                                  ICC
//	  -o BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   replies
//	  -d CIP ! -i BR -o BR -p P -m P --dport CP
//	     -m conntrack --ctstate DNAT -j ACCEPT                    published ports
//	  -o BR -j DROP                                               the rest
//	  (these last two by gateway mode: see publishedRules)
//	  (internal network: ICC, then -o BR -j DROP and -i BR -j DROP)
//	egress (non-internal networks, after every ingress rule)
//	  -i BR -o docker+ -m conntrack ! --ctstate DNAT -j DROP      Docker's bridges
//	  -i BR -o br-+ -m conntrack ! --ctstate DNAT -j DROP
//	  -i BR ! -o BR -j ACCEPT                                     everything else
//
// Docker's bridges are dropped like Docker's own isolation chains do, unless
// conntrack says the packet was DNATed: a Docker container's port published
// on the host stays reachable, as it is from a Docker network.
//
// mangle WEFT-ISOLATION repeats WEFT-FORWARD's decisions, with RETURN for
// ACCEPT and without the egress accepts (see isolation).
//
// nat, per published port of the family, and per network:
//
//	WEFT-DNAT         [-d HOSTIP] -p P -m P --dport HP -j DNAT --to-destination CIP:CP   (not routed)
//	WEFT-POSTROUTING  -s SUBNET ! -o BR -j MASQUERADE        Masquerade (see outboundRules)
//	                  -s 127.0.0.0/8 -o BR -j MASQUERADE     IPv4 network with ports
//	                  -s CIP -d CIP -p P -m P --dport CP -j MASQUERADE   hairpin
//
// raw, per network, then per published port and subnet of the family:
//
//	WEFT-NOTRACK  -d GATEWAY -i BR -j RETURN                      to the host
//	              -s CIP -i BR -p P -m P --sport CP -j RETURN     port replies
//	              -s SUBNET -d SUBNET -i BR -j CT --notrack       the rest inside
//
// Every match there is one iptables-nft turns into plain nftables
// expressions: the chain sees every bridged frame, and a match such as
// addrtype (a route lookup) costs more than conntrack saves.
func rulesFor(r Ruleset, fam family) chainRules {
	var ingress, egress, post, notrack []string
	for _, n := range r.Networks {
		var subnets []netip.Prefix
		for _, s := range n.Subnets {
			if familyOf(s.Addr()) == fam {
				subnets = append(subnets, s)
			}
		}
		if len(subnets) == 0 {
			continue
		}
		notrack = append(notrack, notrackRules(n, subnets, r.Ports)...)
		in, eg, po := networkRules(n, subnets, r.Ports, fam)
		ingress, egress, post = append(ingress, in...), append(egress, eg...), append(post, po...)
	}
	dnat, hairpin := portRules(r.Networks, r.Ports, fam)
	post = append(post, hairpin...)
	out := chainRules{}
	if rules := dedupe(append(ingress, egress...)); len(rules) > 0 {
		out[ChainForward] = rules
		out[ChainIsolation] = isolation(rules)
	}
	if len(dnat) > 0 {
		out[ChainDNAT] = dnat
	}
	if post = dedupe(post); len(post) > 0 {
		out[ChainPostrouting] = post
	}
	if fam == ipv4 && len(r.Encrypted) > 0 {
		out[ChainInput] = encryptedRules(r.Encrypted)
	}
	if notrack = dedupe(notrack); len(notrack) > 0 {
		out[ChainNotrack] = notrack
	}
	return out
}

// networkRules are one network's WEFT-FORWARD ingress and egress rules and
// its WEFT-POSTROUTING masquerades, for the family of subnets (see
// rulesFor).
func networkRules(n Network, subnets []netip.Prefix, ports []PortMapping, fam family) (ingress, egress, post []string) {
	br := n.Bridge
	icc := "DROP"
	if n.ICC {
		icc = "ACCEPT"
	}
	if n.Internal {
		ingress = append(ingress,
			fmt.Sprintf("-i %s -o %s -j %s", br, br, icc),
			fmt.Sprintf("-o %s -j DROP", br),
			fmt.Sprintf("-i %s -j DROP", br))
		return ingress, nil, nil
	}
	// ICC first: frames between the network's own containers, the bulk
	// of a vxlan network's traffic, are decided at once. No established
	// flow can be among them when ICC drops.
	ingress = append(ingress,
		fmt.Sprintf("-i %s -o %s -j %s", br, br, icc),
		fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br))
	ingress = append(ingress, publishedRules(n, fam, ports)...)
	egress = append(egress,
		fmt.Sprintf("-i %s -o docker+ -m conntrack ! --ctstate DNAT -j DROP", br),
		fmt.Sprintf("-i %s -o br-+ -m conntrack ! --ctstate DNAT -j DROP", br),
		fmt.Sprintf("-i %s ! -o %s -j ACCEPT", br, br))
	post = append(post, outboundRules(n, fam, subnets)...)
	if fam == ipv4 && slices.ContainsFunc(ports, func(p PortMapping) bool { return p.Bridge == br && p.ContainerIP.Is4() }) {
		// A host process reaching a published port through 127.0.0.1:
		// the container could not answer 127.0.0.1.
		post = append(post, fmt.Sprintf("-s 127.0.0.0/8 -o %s -j MASQUERADE", br))
	}
	return ingress, egress, post
}

// portRules are the WEFT-DNAT rules and hairpin masquerades of the published
// ports of the family (see rulesFor); a routed network's ports get none.
func portRules(nets []Network, ports []PortMapping, fam family) (dnat, post []string) {
	for _, p := range ports {
		if familyOf(p.ContainerIP) != fam || routedPort(nets, p) {
			continue
		}
		dst := ""
		if p.HostIP.IsValid() {
			dst = "-d " + hostPrefix(p.HostIP) + " "
		}
		// No "! -i BR": there is no userland proxy, so a container
		// reaching a published port of its own network (hairpin) is
		// DNATed here too, and masqueraded below so the reply comes back
		// through the host instead of going straight to the client.
		dnat = append(dnat, fmt.Sprintf("%s-p %s -m %s --dport %d -j DNAT --to-destination %s",
			dst, p.Proto, p.Proto, p.HostPort, netip.AddrPortFrom(p.ContainerIP, p.ContainerPort)))
		// Hairpin from the whole subnet, the container itself included:
		// the DNATed connection then leaves from the gateway, so the
		// reply is routed back through the host and un-NATed there.
		// Without br_netfilter (Docker 27.3+ leaves it unloaded) the
		// reply to a peer would otherwise be bridged straight back with
		// the container's address. "--ctstate DNAT": with br_netfilter,
		// bridged traffic between containers passes nat POSTROUTING too,
		// and must keep its source.
		post = append(post, fmt.Sprintf("-s %s -d %s -p %s -m %s --dport %d -m conntrack --ctstate DNAT -j MASQUERADE",
			hairpinSource(nets, p), hostPrefix(p.ContainerIP), p.Proto, p.Proto, p.ContainerPort))
	}
	return dnat, post
}

// hairpinSource is the subnet of p's network that holds its container, or
// the container's own address when no network says.
func hairpinSource(nets []Network, p PortMapping) string {
	for _, n := range nets {
		if n.Bridge != p.Bridge {
			continue
		}
		for _, s := range n.Subnets {
			if s.Contains(p.ContainerIP) {
				return s.String()
			}
		}
	}
	return hostPrefix(p.ContainerIP)
}

// isolation turns WEFT-FORWARD's rules into WEFT-ISOLATION's, which drop in
// mangle FORWARD what WEFT-FORWARD drops in filter FORWARD. A packet is
// dropped if any hooked chain drops it, whatever another one accepted, and
// mangle comes before filter: so the isolation holds whatever others put
// above weft's jump in filter FORWARD (dockerd 28 and later put their
// DOCKER-FORWARD jump, with its accepts, back on top at every start; 20.10
// inserts a new network's accepts on top) and whatever order two base
// chains of one priority run in (Docker's nftables backend accepts in its own
// table). An ACCEPT becomes RETURN: in mangle it would skip the host's own
// rules behind the jump (TCPMSS clamping, marks) and decide nothing. The
// egress accepts ("-i BR ! -o BR") go: after every ingress rule a RETURN
// there changes nothing.
func isolation(forward []string) []string {
	var out []string
	for _, r := range forward {
		spec, accept := strings.CutSuffix(r, " -j ACCEPT")
		switch {
		case !accept:
			out = append(out, r)
		case !strings.Contains(spec, "! -o "):
			out = append(out, spec+" -j RETURN")
		}
	}
	return out
}

// notrackRules exempt a network's traffic between its own containers
// (subnets: those of one family) from conntrack; see the package comment.
func notrackRules(n Network, subnets []netip.Prefix, ports []PortMapping) []string {
	br := n.Bridge
	var rules []string
	for _, g := range n.Gateways {
		if inSubnets(subnets, g) {
			rules = append(rules, fmt.Sprintf("-d %s -i %s -j RETURN", hostPrefix(g), br))
		}
	}
	for _, p := range ports {
		if p.Bridge == br && inSubnets(subnets, p.ContainerIP) {
			rules = append(rules, fmt.Sprintf("-s %s -i %s -p %s -m %s --sport %d -j RETURN",
				hostPrefix(p.ContainerIP), br, p.Proto, p.Proto, p.ContainerPort))
		}
	}
	for _, s := range subnets {
		rules = append(rules, fmt.Sprintf("-s %s -d %s -i %s -j CT --notrack", s, s, br))
	}
	return rules
}

// encryptedRules drop an encrypted network's VXLAN packets that did not come
// through ESP ("--pol none"). The u32 match reads the VNI: the IP header's
// length, then 12 bytes into UDP (8 of UDP, 4 of VXLAN flags), the top 24
// bits. Written as iptables-save prints it.
func encryptedRules(segments []EncryptedVXLAN) []string {
	var rules []string
	for _, e := range segments {
		rules = append(rules, fmt.Sprintf(`-p udp -m udp --dport %d -m policy --dir in --pol none -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x8=0x%x" -j DROP`, e.Port, e.VNI))
	}
	return rules
}

// dedupe drops repeated rules, keeping the first: several host ports
// published to one container port need its filter and hairpin rules once.
func dedupe(rules []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(rules, func(r string) bool {
		dup := seen[r]
		seen[r] = true
		return dup
	})
}

// hostPrefix is a single address as iptables-save prints it: 10.1.0.2/32,
// fd00::2/128.
func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}
