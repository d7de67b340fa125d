package firewall

import (
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testlab"
)

// The tests here put next to weft the rules that Docker 20.10 and Docker 29
// (both of its firewall backends) leave on a host with one user-defined
// bridge network, br-dk 172.18.0.0/16, whose container 172.18.0.2 publishes
// 9090 -> 80; then they move those rules the way dockerd does and check,
// without weft applying anything again, that Docker's container reaches weft
// containers only through their published port.

// docker29Baseline is the IPv4 firewall of Docker 29's iptables backend for
// br-dk (as in moby's iptabler golden files, plus DOCKER-USER).
const docker29Baseline = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 172.18.0.2/32 ! -i br-dk -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-CT - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-INTERNAL - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A DOCKER -d 172.18.0.2/32 ! -i br-dk -o br-dk -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER ! -i br-dk -o br-dk -j DROP
-A DOCKER-BRIDGE -o br-dk -j DOCKER
-A DOCKER-CT -o br-dk -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-INTERNAL
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i br-dk -o br-dk -j ACCEPT
-A DOCKER-FORWARD -i br-dk ! -o br-dk -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.18.0.0/16 ! -o br-dk -j MASQUERADE
-A DOCKER ! -i br-dk -p tcp -m tcp --dport 9090 -j DNAT --to-destination 172.18.0.2:80
COMMIT
`

// docker29Nftables is Docker 29's nftables backend for br-dk (as in moby's
// nftabler golden files, with the priorities as numbers: Debian 12's nft
// takes no "dstnat" on the output hook): a table of its own, whose filter-FORWARD base
// chain, at the same hook and priority as iptables' filter FORWARD, accepts
// everything leaving br-dk. That backend leaves iptables alone.
const docker29Nftables = `table ip docker-bridges {
	map filter-forward-in-jumps {
		type ifname : verdict
		elements = { "br-dk" : jump filter-forward-in__br-dk }
	}
	map filter-forward-out-jumps {
		type ifname : verdict
		elements = { "br-dk" : jump filter-forward-out__br-dk }
	}
	map nat-postrouting-out-jumps {
		type ifname : verdict
		elements = { "br-dk" : jump nat-postrouting-out__br-dk }
	}
	chain filter-FORWARD {
		type filter hook forward priority 0; policy accept;
		oifname vmap @filter-forward-in-jumps
		iifname vmap @filter-forward-out-jumps
	}
	chain nat-OUTPUT {
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-POSTROUTING {
		type nat hook postrouting priority 100; policy accept;
		iifname vmap @nat-postrouting-out-jumps
	}
	chain nat-PREROUTING {
		type nat hook prerouting priority -100; policy accept;
		fib daddr type local jump nat-prerouting-and-output
	}
	chain nat-prerouting-and-output {
		iifname != "br-dk" tcp dport 9090 dnat to 172.18.0.2:80
	}
	chain raw-PREROUTING {
		type filter hook prerouting priority -300; policy accept;
		ip daddr 172.18.0.2 iifname != "br-dk" drop
	}
	chain filter-forward-in__br-dk {
		ct state established,related accept
		iifname "br-dk" accept
		ip daddr 172.18.0.2 tcp dport 80 accept
		drop
	}
	chain filter-forward-out__br-dk {
		ct state established,related accept
		accept
	}
	chain nat-postrouting-out__br-dk {
		oifname != "br-dk" ip saddr 172.18.0.0/16 masquerade
	}
}
`

// dockerScenario is a weft network wfa (c1 publishes 8080 -> 80, c2
// publishes nothing, both serve port 80) beside Docker's br-dk (cd serves
// port 80, published as 9090).
type dockerScenario struct {
	l          *lab
	cd, c1, c2 *testlab.NS
	weft       Ruleset
	// dockerPort is the host port Docker publishes cd's port 80 on.
	dockerPort string
}

func newDockerScenario(l *lab, dockerPort string) *dockerScenario {
	l.bridge("br-dk", "172.18.0.1/16")
	s := &dockerScenario{l: l, cd: l.container("br-dk", "172.18.0.2/16"), dockerPort: dockerPort}
	l.serve(s.cd)
	l.bridge("wfa", "10.1.0.1/24")
	s.c1 = l.container("wfa", "10.1.0.2/24")
	s.c2 = l.container("wfa", "10.1.0.3/24")
	l.serve(s.c1)
	l.serve(s.c2)
	s.weft = Ruleset{
		Networks: []Network{network("wfa", true, true, "10.1.0.0/24")},
		Ports:    []PortMapping{tcp("wfa", "", 8080, "10.1.0.2", 80)},
	}
	l.apply(s.weft)
	return s
}

// expect checks that Docker's container reaches weft's only through the
// published port, beside positive controls: the same Docker container
// reaches the outside, weft's containers serve each other, and they reach
// Docker's published port.
func (s *dockerScenario) expect(when string) {
	s.l.t.Helper()
	l := s.l
	l.t.Logf("checks %s", when)
	l.expect(
		l.httpCheck(s.cd, "docker container", "10.1.0.3", "80", false), // unpublished port
		l.httpCheck(s.cd, "docker container", "10.1.0.2", "80", false), // published, but not directly
		l.pingCheck(s.cd, "docker container", "10.1.0.3", false),
		l.httpCheck(s.cd, "docker container", hostIP, "8080", true),
		l.pingCheck(s.cd, "docker container", extIP, true),
		l.httpCheck(s.c1, "c1", "10.1.0.3", "80", true),
		l.httpCheck(s.c2, "c2", hostIP, s.dockerPort, true),
		l.httpCheck(s.c2, "c2", "172.18.0.2", "80", false),
		l.httpCheck(l.ext, "ext", hostIP, "8080", true),
	)
}

// requireForward fails the test unless filter FORWARD starts with want: the
// checks after it prove something only with weft's jump where Docker left it.
func (l *lab) requireForward(want ...string) {
	l.t.Helper()
	got := l.chain(l.ipt, "filter", "FORWARD")
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		l.t.Fatalf("filter FORWARD is\n%s\nwant it to start with\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKernelDocker29Restart: dockerd 28 and later put their DOCKER-FORWARD
// jump back on top of FORWARD at every start, under DOCKER-USER and above
// weft's jump; DOCKER-FORWARD accepts everything leaving a Docker bridge.
// weft's containers stay out of reach all the same.
func TestKernelDocker29Restart(t *testing.T) {
	eachBackendOn(t, docker29Baseline, dockerBaseline6, func(t *testing.T, l *lab) {
		s := newDockerScenario(l, "9090")
		l.requireForward("-A FORWARD -j DOCKER-USER", "-A FORWARD -j WEFT-FORWARD", "-A FORWARD -j DOCKER-FORWARD")
		s.expect("after Apply")

		// What dockerd's start does: EnsureJumpRule deletes and inserts
		// its jump on top, then DOCKER-USER goes on top again.
		for _, chain := range []string{"DOCKER-FORWARD", "DOCKER-USER"} {
			l.host.MustRun(t, l.ipt, "-w", "-D", "FORWARD", "-j", chain)
			l.host.MustRun(t, l.ipt, "-w", "-I", "FORWARD", "-j", chain)
		}
		l.requireForward("-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A FORWARD -j WEFT-FORWARD")
		s.expect("after a dockerd restart")
	})
}

// TestKernelDocker20NetworkAfterWeft: Docker 20.10 inserts a new network's
// accepts on top of FORWARD ("-i br-dk ! -o br-dk -j ACCEPT" among them), so
// a Docker network created after weft's has them above weft's jump; the same
// happens to docker0's at every dockerd start.
func TestKernelDocker20NetworkAfterWeft(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *lab) {
		// 9090 is docker0's container's (dockerBaseline).
		s := newDockerScenario(l, "9091")
		// docker network create, as 20.10's bridge driver programs it.
		for _, rule := range [][]string{
			{"-I", "DOCKER-ISOLATION-STAGE-1", "-i", "br-dk", "!", "-o", "br-dk", "-j", "DOCKER-ISOLATION-STAGE-2"},
			{"-I", "DOCKER-ISOLATION-STAGE-2", "-o", "br-dk", "-j", "DROP"},
			{"-I", "FORWARD", "-i", "br-dk", "!", "-o", "br-dk", "-j", "ACCEPT"},
			{"-I", "FORWARD", "-o", "br-dk", "-j", "DOCKER"},
			{"-I", "FORWARD", "-o", "br-dk", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "br-dk", "-o", "br-dk", "-j", "ACCEPT"},
			{"-A", "DOCKER", "-d", "172.18.0.2/32", "!", "-i", "br-dk", "-o", "br-dk", "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "ACCEPT"},
			{"-t", "nat", "-A", "POSTROUTING", "-s", "172.18.0.0/16", "!", "-o", "br-dk", "-j", "MASQUERADE"},
			{"-t", "nat", "-I", "DOCKER", "-i", "br-dk", "-j", "RETURN"},
			{"-t", "nat", "-A", "DOCKER", "!", "-i", "br-dk", "-p", "tcp", "-m", "tcp", "--dport", "9091", "-j", "DNAT", "--to-destination", "172.18.0.2:80"},
			{"-D", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
			{"-I", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
			{"-D", "FORWARD", "-j", "DOCKER-USER"},
			{"-I", "FORWARD", "-j", "DOCKER-USER"},
		} {
			l.host.MustRun(t, append([]string{l.ipt, "-w"}, rule...)...)
		}
		l.requireForward("-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
			"-A FORWARD -o br-dk -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
			"-A FORWARD -o br-dk -j DOCKER", "-A FORWARD -i br-dk ! -o br-dk -j ACCEPT",
			"-A FORWARD -j WEFT-FORWARD")
		s.expect("after docker network create")
	})
}

// TestKernelDocker29Nftables: Docker 29's nftables backend accepts what
// leaves its bridges in a base chain of its own table, at the same hook and
// priority as filter FORWARD. An accept ends only the chain it is in; the
// packet still meets the other base chains of the hook, and a drop in any of
// them wins, in whichever order the two run (the kernel runs chains of one
// priority in the order they were registered: Docker's table is made again
// at every dockerd start).
func TestKernelDocker29Nftables(t *testing.T) {
	testlab.RequireCommand(t, "nft")
	eachBackendOn(t, "", "", func(t *testing.T, l *lab) {
		l.nft(docker29Nftables)
		s := newDockerScenario(l, "9090")
		s.expect("with Docker's table made before weft's rules")

		l.host.MustRun(t, "nft", "delete", "table", "ip", "docker-bridges")
		l.nft(docker29Nftables)
		s.expect("after a dockerd restart made Docker's table again")
	})
}

// nft loads a ruleset into the host namespace.
func (l *lab) nft(ruleset string) {
	l.t.Helper()
	l.host.MustRun(l.t, "sh", "-c", `printf '%s' "$1" | nft -f -`, "sh", ruleset)
}
