package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/internal/ifname"
)

// GatewayMode is how one address family of a network meets the world
// beyond the host: Docker's gateway_mode_ipv4 and gateway_mode_ipv6.
type GatewayMode string

// The gateway modes, with Docker's names. The zero value is GatewayNAT.
const (
	// GatewayNAT masquerades the network's traffic out and reaches
	// containers only through ports published on the host's addresses.
	GatewayNAT GatewayMode = "nat"
	// GatewayNATUnprotected is GatewayNAT without the filter in front of
	// the containers: a host with a route to the subnet reaches every port
	// of every container directly.
	GatewayNATUnprotected GatewayMode = "nat-unprotected"
	// GatewayRouted translates nothing: the containers' own addresses go
	// out, published ports are opened at the container's address and port
	// to anyone with a route to the subnet (the host port plays no part),
	// and so is ICMP.
	GatewayRouted GatewayMode = "routed"
	// GatewayIsolated gives the bridge no address of the family, so the
	// host neither reaches nor is reached by the containers; only internal
	// networks take it.
	GatewayIsolated GatewayMode = "isolated"
)

// GatewayModes lists the modes in the order messages name them.
var GatewayModes = []GatewayMode{GatewayNAT, GatewayNATUnprotected, GatewayRouted, GatewayIsolated}

// mode returns the network's gateway mode for fam.
func (n Network) mode(fam family) GatewayMode {
	m := n.GatewayModeIPv4
	if fam == ipv6 {
		m = n.GatewayModeIPv6
	}
	if m == "" {
		return GatewayNAT
	}
	return m
}

// snat returns the source address the network's outbound traffic of fam
// is given, invalid for masquerading.
func (n Network) snat(fam family) netip.Addr {
	if fam == ipv6 {
		return n.HostIPv6
	}
	return n.HostIPv4
}

// checkGateway validates what Network adds for gateway modes: the names go
// into iptables-restore input, where a space or a trailing '+' would change
// the rule's meaning.
func (n Network) checkGateway() error {
	for _, m := range []GatewayMode{n.GatewayModeIPv4, n.GatewayModeIPv6} {
		if m != "" && !slices.Contains(GatewayModes, m) {
			return errorf(ErrInvalid, "network on bridge %s has an unknown gateway mode %q", n.Bridge, m)
		}
		if m == GatewayIsolated && !n.Internal {
			return errorf(ErrInvalid, "network on bridge %s has gateway mode isolated but is not internal", n.Bridge)
		}
	}
	for _, name := range n.TrustedInterfaces {
		if err := ifname.CheckNew(name); err != nil {
			return errorf(ErrInvalid, "network on bridge %s has an invalid trusted interface: %v", n.Bridge, err)
		}
	}
	if (n.HostIPv4.IsValid() && !n.HostIPv4.Is4()) || (n.HostIPv6.IsValid() && (!n.HostIPv6.Is6() || n.HostIPv6.Is4In6())) {
		return errorf(ErrInvalid, "network on bridge %s has a source address of the wrong family", n.Bridge)
	}
	return nil
}

// publishedRules let the world into a non-internal network's containers
// (of one family), after the ICC and reply rules and instead of weft's
// plain "-o BR -j DROP":
//
//	nat              -d CIP ! -i BR -o BR -p P -m P --dport CP
//	                    -m conntrack --ctstate DNAT -j ACCEPT     published ports
//	                 -d CIP -i TRUSTED -o BR -p P -m P --dport CP -j ACCEPT
//	                 -o BR -j DROP
//	nat-unprotected  -o BR -j ACCEPT                               every port
//	routed           -o BR -p icmp -j ACCEPT
//	                 -d CIP ! -i BR -o BR -p P -m P --dport CP -j ACCEPT
//	                 -o BR -j DROP
//
// In nat mode a port is reached through the host's address (DNAT) only,
// except from a trusted interface, which may also reach it at the
// container's own address, as Docker's trusted_host_interfaces allows.
func publishedRules(n Network, fam family, ports []PortMapping) []string {
	br, mode := n.Bridge, n.mode(fam)
	if mode == GatewayNATUnprotected {
		return []string{fmt.Sprintf("-o %s -j ACCEPT", br)}
	}
	var rules []string
	if mode == GatewayRouted {
		rules = append(rules, fmt.Sprintf("-o %s -p %s -j ACCEPT", br, icmpProto(fam)))
	}
	for _, p := range ports {
		if p.Bridge != br || familyOf(p.ContainerIP) != fam {
			continue
		}
		match := fmt.Sprintf("-d %s ! -i %s -o %s -p %s -m %s --dport %d", hostPrefix(p.ContainerIP), br, br, p.Proto, p.Proto, p.ContainerPort)
		if mode == GatewayRouted {
			rules = append(rules, match+" -j ACCEPT")
			continue
		}
		// Only connections that came through WEFT-DNAT: a client that
		// routes to the container's address directly (another network,
		// a LAN host with a route) stays out, as for any other port.
		// "! -i BR": the network's own containers are under the ICC rule.
		rules = append(rules, match+" -m conntrack --ctstate DNAT -j ACCEPT")
		for _, t := range n.TrustedInterfaces {
			rules = append(rules, fmt.Sprintf("-d %s -i %s -o %s -p %s -m %s --dport %d -j ACCEPT",
				hostPrefix(p.ContainerIP), t, br, p.Proto, p.Proto, p.ContainerPort))
		}
	}
	return append(rules, fmt.Sprintf("-o %s -j DROP", br))
}

// icmpProto is the ICMP protocol of fam as iptables-save prints it.
func icmpProto(fam family) string {
	if fam == ipv6 {
		return "ipv6-icmp"
	}
	return "icmp"
}

// outboundRules translate a non-internal network's traffic leaving through
// another interface (subnets: those of fam): MASQUERADE, or SNAT to the
// network's host address of the family (Docker's host_ipv4/host_ipv6).
// IPv6 is translated only to an address given, as Docker 20.10 never
// masqueraded it; routed networks are never translated.
func outboundRules(n Network, fam family, subnets []netip.Prefix) []string {
	src := n.snat(fam)
	if !n.Masquerade || n.mode(fam) == GatewayRouted || (fam == ipv6 && !src.IsValid()) {
		return nil
	}
	target := "MASQUERADE"
	if src.IsValid() {
		target = "SNAT --to-source " + src.String()
	}
	var rules []string
	for _, s := range subnets {
		rules = append(rules, fmt.Sprintf("-s %s ! -o %s -j %s", s, n.Bridge, target))
	}
	return rules
}

// routedPort reports whether p belongs to a network whose gateway mode for
// p's family is routed: such a port is opened at the container's address
// and gets no DNAT.
func routedPort(nets []Network, p PortMapping) bool {
	for _, n := range nets {
		if n.Bridge == p.Bridge {
			return n.mode(familyOf(p.ContainerIP)) == GatewayRouted
		}
	}
	return false
}
