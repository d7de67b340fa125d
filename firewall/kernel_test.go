package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testlab"
)

// network is a Network whose gateways are the first address of each
// subnet, as the lab's bridges have them.
func network(bridge string, icc, masq bool, subnets ...string) Network {
	n := Network{Bridge: bridge, ICC: icc, Masquerade: masq}
	for _, s := range subnets {
		p := netip.MustParsePrefix(s)
		n.Subnets = append(n.Subnets, p)
		n.Gateways = append(n.Gateways, p.Addr().Next())
	}
	return n
}

func tcp(bridge, hostAddr string, hostPort uint16, container string, port uint16) PortMapping {
	p := PortMapping{Bridge: bridge, Proto: "tcp", HostPort: hostPort, ContainerIP: netip.MustParseAddr(container), ContainerPort: port}
	if hostAddr != "" {
		p.HostIP = netip.MustParseAddr(hostAddr)
	}
	return p
}

// TestKernelICC: containers of one bridge talk to each other only with ICC,
// even though bridged traffic crosses FORWARD (policy DROP).
func TestKernelICC(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.bridge("wfa", "10.1.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		c2 := l.container("wfa", "10.1.0.3/24")

		l.apply(Ruleset{Networks: []Network{network("wfa", false, true, "10.1.0.0/24")}})
		l.expect(
			l.pingCheck(c1, "c1", "10.1.0.1", true), // the host itself: INPUT, not FORWARD
			l.pingCheck(c1, "c1", "10.1.0.3", false),
			l.pingCheck(c2, "c2", "10.1.0.2", false),
		)

		l.apply(Ruleset{Networks: []Network{network("wfa", true, true, "10.1.0.0/24")}})
		l.expect(
			l.pingCheck(c1, "c1", "10.1.0.3", true),
			l.pingCheck(c2, "c2", "10.1.0.2", true),
		)
	})
}

// TestKernelIsolation: two weft networks cannot reach each other, in either
// direction, though both reach the outside.
func TestKernelIsolation(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.bridge("wfa", "10.1.0.1/24")
		l.bridge("wfb", "10.2.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		c3 := l.container("wfb", "10.2.0.2/24")
		l.apply(Ruleset{Networks: []Network{
			network("wfa", true, true, "10.1.0.0/24"),
			network("wfb", true, true, "10.2.0.0/24"),
		}})
		l.expect(
			l.pingCheck(c1, "c1", extIP, true),
			l.pingCheck(c3, "c3", extIP, true),
			l.pingCheck(c1, "c1", "10.2.0.2", false),
			l.pingCheck(c3, "c3", "10.1.0.2", false),
		)
	})
}

// TestKernelMasquerade: ext has no route back to the containers, so they
// reach it only when masqueraded.
func TestKernelMasquerade(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.bridge("wfa", "10.1.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		l.apply(Ruleset{Networks: []Network{network("wfa", true, false, "10.1.0.0/24")}})
		l.expect(
			l.pingCheck(c1, "c1 (no masquerade)", extIP, false),
		)
		l.apply(Ruleset{Networks: []Network{network("wfa", true, true, "10.1.0.0/24")}})
		l.expect(
			l.pingCheck(c1, "c1 (masquerade)", extIP, true),
		)
	})
}

// TestKernelInternal: an internal network talks to itself only; and a normal
// network is not reachable from outside unless asked (ext gets a route to the
// containers here, so only the firewall stands in the way).
func TestKernelInternal(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.ext.MustRun(t, "ip", "route", "add", "10.0.0.0/8", "via", hostIP)
		l.bridge("wfa", "10.1.0.1/24")
		l.bridge("wfi", "10.3.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		i1 := l.container("wfi", "10.3.0.2/24")
		i2 := l.container("wfi", "10.3.0.3/24")
		internal := network("wfi", true, true, "10.3.0.0/24")
		internal.Internal = true
		l.apply(Ruleset{Networks: []Network{network("wfa", true, false, "10.1.0.0/24"), internal}})

		l.expect(
			l.pingCheck(i1, "i1", "10.3.0.3", true),
			l.pingCheck(i2, "i2", "10.3.0.2", true),
			l.pingCheck(i1, "i1", extIP, false),
			l.pingCheck(l.ext, "ext", "10.3.0.2", false),
			l.pingCheck(i1, "i1", "10.1.0.2", false),
			l.pingCheck(c1, "c1", "10.3.0.2", false),
		)

		l.expect(
			l.pingCheck(c1, "c1", extIP, true),
			l.pingCheck(l.ext, "ext", "10.1.0.2", false), // unsolicited inbound
		)
	})
}

// TestKernelPublishedPort: a published port is reachable through the host's
// addresses, from outside, from other networks, from its own network
// (hairpin) and from the host, but not directly; and not after removal.
func TestKernelPublishedPort(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.ext.MustRun(t, "ip", "route", "add", "10.0.0.0/8", "via", hostIP)
		l.bridge("wfa", "10.1.0.1/24")
		l.bridge("wfb", "10.2.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		c2 := l.container("wfa", "10.1.0.3/24")
		c3 := l.container("wfb", "10.2.0.2/24")
		l.serve(c1)
		nets := []Network{network("wfa", true, true, "10.1.0.0/24"), network("wfb", true, true, "10.2.0.0/24")}
		l.apply(Ruleset{Networks: nets, Ports: []PortMapping{
			tcp("wfa", "", 8080, "10.1.0.2", 80),
			tcp("wfa", hostIP, 8081, "10.1.0.2", 80),
			tcp("wfa", "10.2.0.1", 8082, "10.1.0.2", 80),
			tcp("wfa", "127.0.0.1", 8083, "10.1.0.2", 80),
		}})

		l.expect(
			l.httpCheck(l.ext, "ext", hostIP, "8080", true),
			l.httpCheck(l.ext, "ext", hostIP, "8081", true),
			l.httpCheck(l.ext, "ext", hostIP, "8082", false), // bound to another host address
			l.httpCheck(l.ext, "ext", "10.1.0.2", "80", false),
			l.httpCheck(c3, "c3 (wfb)", hostIP, "8080", true),
			l.httpCheck(c3, "c3 (wfb)", "10.2.0.1", "8082", true),
			l.httpCheck(c3, "c3 (wfb)", "10.1.0.2", "80", false), // direct: isolation
			l.httpCheck(c2, "c2 (wfa)", hostIP, "8080", true),
			l.httpCheck(c1, "c1 itself", hostIP, "8080", true),
			l.httpCheck(l.host, "host", hostIP, "8080", true),
			l.httpCheck(l.host, "host", "127.0.0.1", "8080", true),
			l.httpCheck(l.host, "host", "127.0.0.1", "8083", true),
			l.httpCheck(l.ext, "ext", hostIP, "8083", false),
		)
		// Between c2 and c1 directly nothing is tracked; the hairpin
		// replies above were (they needed un-DNATing).
		before := l.untracked("wfa")
		l.expect(l.pingCheck(c2, "c2", "10.1.0.2", true))
		if after := l.untracked("wfa"); after < before+2 {
			t.Errorf("c2 <-> c1 ping: %d packets exempted from conntrack, want at least 2", after-before)
		}

		l.apply(Ruleset{Networks: nets, Ports: []PortMapping{tcp("wfa", hostIP, 8081, "10.1.0.2", 80)}})
		l.expect(
			l.httpCheck(l.ext, "ext after unpublish", hostIP, "8080", false),
			l.httpCheck(l.ext, "ext after unpublish", hostIP, "8081", true),
		)
	})
}

// TestKernelDocker: weft networks and Docker's docker0 (with Docker 20.10's
// rules) are isolated from each other both ways, while each side's published
// ports stay reachable from the other through the host's address.
func TestKernelDocker(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.bridge("docker0", "172.17.0.1/16")
		cd := l.container("docker0", "172.17.0.2/16")
		l.serve(cd)
		l.bridge("wfa", "10.1.0.1/24")
		c1 := l.container("wfa", "10.1.0.2/24")
		l.serve(c1)
		l.apply(Ruleset{
			Networks: []Network{network("wfa", true, true, "10.1.0.0/24")},
			Ports:    []PortMapping{tcp("wfa", "", 8080, "10.1.0.2", 80)},
		})

		l.expect(
			l.pingCheck(c1, "c1", "172.17.0.2", false),
			l.pingCheck(cd, "docker container", "10.1.0.2", false),
			l.httpCheck(c1, "c1", "172.17.0.2", "80", false),
			l.httpCheck(cd, "docker container", "10.1.0.2", "80", false),
			l.httpCheck(cd, "docker container", hostIP, "8080", true),
			l.httpCheck(c1, "c1", hostIP, "9090", true),
			l.httpCheck(l.ext, "ext", hostIP, "9090", true),
			l.httpCheck(l.ext, "ext", hostIP, "8080", true),
			l.pingCheck(cd, "docker container", extIP, true),
		)
	})
}

// TestKernelIPv6: the same filtering with ip6tables; IPv6 is routed, not
// masqueraded (ext gets a route back), and published ports are DNATed.
func TestKernelIPv6(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		l.ext.MustRun(t, "ip", "-6", "route", "add", "fd00::/8", "via", hostIP6)
		l.bridge("wfa", "10.1.0.1/24", "fd01::1/64")
		l.bridge("wfb", "10.2.0.1/24", "fd02::1/64")
		c1 := l.container("wfa", "10.1.0.2/24", "fd01::2/64")
		c2 := l.container("wfa", "10.1.0.3/24", "fd01::3/64")
		c3 := l.container("wfb", "10.2.0.2/24", "fd02::2/64")
		l.serve(c1)
		nets := func(icc bool) []Network {
			return []Network{network("wfa", icc, true, "10.1.0.0/24", "fd01::/64"), network("wfb", true, true, "10.2.0.0/24", "fd02::/64")}
		}
		ports := []PortMapping{tcp("wfa", "", 8080, "fd01::2", 80)}
		l.apply(Ruleset{Networks: nets(true), Ports: ports})

		l.expect(
			l.pingCheck(c1, "c1", "fd01::3", true),
			l.pingCheck(c1, "c1", extIP6, true),
			l.pingCheck(l.ext, "ext", "fd01::2", false),
			l.pingCheck(c1, "c1", "fd02::2", false),
			l.pingCheck(c3, "c3", "fd01::2", false),
			l.httpCheck(l.ext, "ext", hostIP6, "8080", true),
			l.httpCheck(l.ext, "ext", "fd01::2", "80", false),
			l.httpCheck(c3, "c3 (wfb)", hostIP6, "8080", true),
			l.httpCheck(l.ext, "ext (IPv4, not published)", hostIP, "8080", false),
		)

		l.apply(Ruleset{Networks: nets(false), Ports: ports})
		l.expect(
			l.pingCheck(c1, "c1 (no ICC)", "fd01::3", false),
			l.pingCheck(c2, "c2 (no ICC)", "fd01::2", false),
		)
	})
}

// TestKernelLifecycle: Apply is idempotent and repairs jumps others moved;
// Apply of an empty Ruleset and Teardown leave iptables-save and
// ip6tables-save exactly as before weft's first Apply.
func TestKernelLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		base4, base6 := l.save()
		internal := network("wfi", false, true, "10.3.0.0/24")
		internal.Internal = true
		full := Ruleset{
			Networks: []Network{
				network("wfa", true, true, "10.1.0.0/24", "fd01::/64"),
				network("wfb", false, true, "10.2.0.0/24"),
				internal,
			},
			Ports: []PortMapping{
				tcp("wfa", "", 8080, "10.1.0.2", 80),
				tcp("wfa", "", 8080, "fd01::2", 80),
				{Bridge: "wfb", Proto: "udp", HostIP: netip.MustParseAddr(hostIP), HostPort: 53, ContainerIP: netip.MustParseAddr("10.2.0.9"), ContainerPort: 5353},
				{Bridge: "wfb", Proto: "sctp", HostPort: 9999, ContainerIP: netip.MustParseAddr("10.2.0.9"), ContainerPort: 9999},
			},
			Encrypted: []EncryptedVXLAN{{VNI: 4242, Port: 4789}, {VNI: 7, Port: 4789}},
		}
		l.apply(full)
		full4, full6 := l.save()
		if full4 == base4 || full6 == base6 {
			t.Fatal("Apply changed nothing")
		}
		fwd := l.chain(l.ipt, "filter", "FORWARD")
		if len(fwd) < 2 || fwd[0] != "-A FORWARD -j DOCKER-USER" || fwd[1] != "-A FORWARD -j WEFT-FORWARD" {
			t.Errorf("FORWARD after Apply:\n%s", strings.Join(fwd, "\n"))
		}
		if in := l.chain(l.ipt, "filter", "INPUT"); len(in) == 0 || in[0] != "-A INPUT -j WEFT-INPUT" || !strings.Contains(full4, "0xc>>0x8=0x1092") {
			t.Errorf("INPUT after Apply:\n%s\n%s", strings.Join(in, "\n"), full4)
		}

		// Idempotent, and without running iptables-restore at all: the
		// generated rules are exactly what iptables-save prints.
		n := l.fw.restores
		l.apply(full)
		if l.fw.restores != n {
			t.Errorf("second Apply ran iptables-restore %d times", l.fw.restores-n)
		}
		if s4, s6 := l.save(); s4 != full4 || s6 != full6 {
			t.Errorf("second Apply changed the tables:\n%s\n%s", s4, s6)
		}

		// Someone inserts a rule between DOCKER-USER and weft's jump:
		// weft's jump moves back behind DOCKER-USER.
		l.host.MustRun(t, l.ipt, "-w", "-I", "FORWARD", "2", "-s", "192.0.2.1/32", "-j", "DROP")
		l.apply(full)
		fwd = l.chain(l.ipt, "filter", "FORWARD")
		if fwd[1] != "-A FORWARD -j WEFT-FORWARD" || strings.Count(strings.Join(fwd, "\n"), "WEFT-FORWARD") != 1 {
			t.Errorf("FORWARD after a rule was inserted above weft's jump:\n%s", strings.Join(fwd, "\n"))
		}
		// dockerd restarts and puts DOCKER-USER back on top: fine as is.
		l.host.MustRun(t, l.ipt, "-w", "-D", "FORWARD", "-j", "DOCKER-USER")
		l.host.MustRun(t, l.ipt, "-w", "-I", "FORWARD", "-j", "DOCKER-USER")
		n = l.fw.restores
		l.apply(full)
		if l.fw.restores != n {
			t.Errorf("Apply moved the jump from behind DOCKER-USER")
		}
		// The jump and a whole chain vanish, a stray rule appears: repaired.
		l.host.MustRun(t, l.ipt, "-w", "-D", "FORWARD", "-j", "WEFT-FORWARD")
		l.host.MustRun(t, l.ipt, "-w", "-t", "nat", "-A", ChainDNAT, "-p", "tcp", "--dport", "1", "-j", "RETURN")
		l.host.MustRun(t, l.ip6t, "-w", "-D", "FORWARD", "-j", "WEFT-FORWARD")
		l.host.MustRun(t, l.ip6t, "-w", "-F", "WEFT-FORWARD")
		l.host.MustRun(t, l.ip6t, "-w", "-X", "WEFT-FORWARD")
		l.apply(full)
		l.host.MustRun(t, l.ipt, "-w", "-D", "FORWARD", "-s", "192.0.2.1/32", "-j", "DROP")
		if s4, s6 := l.save(); s4 != full4 || s6 != full6 {
			t.Errorf("Apply did not repair the tables:\n%s\nwant:\n%s\n%s\nwant:\n%s", s4, full4, s6, full6)
		}

		// A smaller ruleset: v4 only, no nat at all.
		l.apply(Ruleset{Networks: []Network{network("wfa", true, false, "10.1.0.0/24")}})
		s4, s6 := l.save()
		if strings.Contains(s4, "WEFT-DNAT") || strings.Contains(s4, "WEFT-POSTROUTING") || !strings.Contains(s4, "WEFT-FORWARD") {
			t.Errorf("v4 nat chains should be gone:\n%s", s4)
		}
		if s6 != base6 {
			t.Errorf("ip6tables should be back to baseline:\n%s\nwant:\n%s", s6, base6)
		}

		// Removing the last network leaves nothing behind.
		l.apply(Ruleset{})
		if s4, s6 := l.save(); s4 != base4 || s6 != base6 {
			t.Errorf("after Apply(empty):\n%s\nwant:\n%s\n%s\nwant:\n%s", s4, base4, s6, base6)
		}
		l.apply(full)
		if err := l.fw.Teardown(); err != nil {
			t.Fatal(err)
		}
		if s4, s6 := l.save(); s4 != base4 || s6 != base6 {
			t.Errorf("after Teardown:\n%s\nwant:\n%s\n%s\nwant:\n%s", s4, base4, s6, base6)
		}
		n = l.fw.restores
		if err := l.fw.Teardown(); err != nil || l.fw.restores != n {
			t.Errorf("second Teardown: %v, %d restores", err, l.fw.restores-n)
		}
	})
}

// TestKernelCleanHost: on a namespace where no table exists yet, an empty
// Apply creates none, and Apply then Teardown leaves only the empty
// built-in chains iptables-restore had to create.
func TestKernelCleanHost(t *testing.T) {
	t.Parallel()
	testlab.RequireRoot(t)
	testlab.RequireCommand(t, "iptables-nft-save")
	testlab.RequireCommand(t, "ip6tables-nft-save")
	ns := testlab.NewNS(t)
	fw := New(Config{IPTables: "iptables-nft", IP6Tables: "ip6tables-nft", Prefix: []string{"ip", "netns", "exec", ns.Name}})
	if err := fw.Apply(Ruleset{}); err != nil {
		t.Fatal(err)
	}
	if out := ns.MustRun(t, "iptables-nft-save") + ns.MustRun(t, "ip6tables-nft-save"); out != "" {
		t.Errorf("empty Apply created tables:\n%s", out)
	}
	if err := fw.Apply(Ruleset{Networks: []Network{network("wfa", true, true, "10.1.0.0/24", "fd01::/64")}}); err != nil {
		t.Fatal(err)
	}
	if err := fw.Teardown(); err != nil {
		t.Fatal(err)
	}
	if out := ns.MustRun(t, "iptables-nft-save") + ns.MustRun(t, "ip6tables-nft-save"); strings.Contains(out, "WEFT") || strings.Contains(out, "-A ") {
		t.Errorf("Teardown left rules:\n%s", out)
	}
}

// TestKernelDetect: Detect follows Docker's chains to the right backend.
func TestKernelDetect(t *testing.T) {
	t.Parallel()
	testlab.RequireRoot(t)
	for _, c := range []string{"iptables-nft", "iptables-legacy", "ip6tables-nft", "ip6tables-legacy"} {
		testlab.RequireCommand(t, c)
	}
	check := func(ns *testlab.NS, what, want string) {
		t.Helper()
		ip4, ip6 := Detect([]string{"ip", "netns", "exec", ns.Name}, nil)
		if ip4 != "iptables-"+want || ip6 != "ip6tables-"+want {
			t.Errorf("%s: Detect = %s, %s; want the %s backend", what, ip4, ip6, want)
		}
	}
	ns := testlab.NewNS(t)
	check(ns, "empty host", "nft")
	ns.MustRun(t, "iptables-legacy", "-w", "-N", "DOCKER-USER")
	check(ns, "Docker in legacy", "legacy")
	ns.MustRun(t, "iptables-nft", "-N", "DOCKER-USER")
	check(ns, "Docker in both", "nft")

	ns2 := testlab.NewNS(t)
	ns2.MustRun(t, "iptables-legacy", "-w", "-A", "INPUT", "-s", "192.0.2.1/32", "-j", "DROP")
	check(ns2, "legacy firewall, no Docker", "legacy")
	ns2.MustRun(t, "iptables-nft", "-A", "INPUT", "-s", "192.0.2.1/32", "-j", "DROP")
	check(ns2, "rules in both, no Docker", "nft")
}
