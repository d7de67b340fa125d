package firewall

import (
	"net/netip"
	"testing"
)

// TestKernelGatewayModes: what a host with a route to the subnet (ext)
// reaches in each gateway mode. c1 publishes port 80 (host port 8080), c2
// serves port 80 unpublished.
func TestKernelGatewayModes(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.ext.MustRun(t, "ip", "route", "add", "10.0.0.0/8", "via", hostIP)
		l.bridge("wfa", "10.1.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		c2 := l.container("wfa", "10.1.0.3/24")
		l.serve(c1)
		l.serve(c2)
		with := func(mod func(*Network)) Ruleset {
			n := network("wfa", true, true, "10.1.0.0/24")
			mod(&n)
			return Ruleset{Networks: []Network{n}, Ports: []PortMapping{tcp("wfa", "", 8080, "10.1.0.2", 80)}}
		}

		// nat, the default: only through the host's address.
		l.apply(with(func(*Network) {}))
		l.expect(
			l.httpCheck(l.ext, "ext nat", hostIP, "8080", true),
			l.httpCheck(l.ext, "ext nat", "10.1.0.2", "80", false),
			l.httpCheck(l.ext, "ext nat", "10.1.0.3", "80", false),
		)
		// A trusted interface also reaches the published port at the
		// container's address, and still nothing unpublished.
		l.apply(with(func(n *Network) { n.TrustedInterfaces = []string{"wext"} }))
		l.expect(
			l.httpCheck(l.ext, "ext trusted", "10.1.0.2", "80", true),
			l.httpCheck(l.ext, "ext trusted", "10.1.0.3", "80", false),
			l.httpCheck(l.ext, "ext trusted", hostIP, "8080", true),
		)
		// nat-unprotected: every port of every container, and NAT still.
		l.apply(with(func(n *Network) { n.GatewayModeIPv4 = GatewayNATUnprotected }))
		l.expect(
			l.httpCheck(l.ext, "ext nat-unprotected", "10.1.0.3", "80", true),
			l.httpCheck(l.ext, "ext nat-unprotected", hostIP, "8080", true),
		)
		// routed: the published port at the container's address and ICMP;
		// no host port, nothing unpublished.
		l.apply(with(func(n *Network) { n.GatewayModeIPv4 = GatewayRouted }))
		l.expect(
			l.httpCheck(l.ext, "ext routed", "10.1.0.2", "80", true),
			l.httpCheck(l.ext, "ext routed", "10.1.0.3", "80", false),
			l.httpCheck(l.ext, "ext routed", hostIP, "8080", false),
			l.pingCheck(l.ext, "ext routed", "10.1.0.3", true),
			l.httpCheck(c2, "c2 routed", "10.1.0.2", "80", true),
		)
	})
}

// TestKernelGatewayRulesCanonical: the rules of every new option are
// written as iptables-save prints them, so a second Apply runs nothing.
func TestKernelGatewayRulesCanonical(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.bridge("wfa", "10.1.0.1/24")
		l.bridge("wfb", "10.2.0.1/24")
		a := network("wfa", true, true, "10.1.0.0/24", "fd01::/64")
		a.TrustedInterfaces = []string{"wext", "vxlan.1"}
		a.HostIPv4, a.HostIPv6 = netip.MustParseAddr(hostIP), netip.MustParseAddr(hostIP6)
		b := network("wfb", false, true, "10.2.0.0/24", "fd02::/64")
		b.GatewayModeIPv4, b.GatewayModeIPv6 = GatewayRouted, GatewayNATUnprotected
		r := Ruleset{Networks: []Network{a, b}, Ports: []PortMapping{
			tcp("wfa", "", 8080, "10.1.0.2", 80), tcp("wfa", "", 8080, "fd01::2", 80),
			tcp("wfb", "", 8081, "10.2.0.2", 80), tcp("wfb", "", 8081, "fd02::2", 80),
		}}
		l.apply(r)
		s4, s6 := l.save()
		n := l.fw.restores
		l.apply(r)
		if l.fw.restores != n {
			t.Errorf("second Apply ran iptables-restore %d times:\n%s\n%s", l.fw.restores-n, s4, s6)
		}
	})
}
