package firewall

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/testlab"
)

// The kernel tests build, per test, a "host" namespace firewalled the way
// dockerd leaves a host (FORWARD policy DROP, bridge-nf-call-iptables=1 and
// Docker 20.10's own rules for docker0), weft bridges in it with "container"
// namespaces on veths, and an "ext" namespace playing a machine of the LAN:
//
//	ext eth0 198.18.5.2/24 fd05::2/64 ── wext 198.18.5.1/24 fd05::1/64 (host)
//
// ext has no route to the containers' subnets unless a test adds one, so a
// container reaches it only when masqueraded.

// backends are the iptables commands every kernel test runs with: weft must
// work on hosts of either kind.
var backends = []string{"iptables-nft", "iptables-legacy"}

const (
	hostIP  = "198.18.5.1"
	extIP   = "198.18.5.2"
	hostIP6 = "fd05::1"
	extIP6  = "fd05::2"
	// marker is the body every test web server returns.
	marker = "weft-firewall-ok"
)

// dockerBaseline is the IPv4 firewall of a host running Docker 20.10 with
// one container publishing 9090 -> 172.17.0.2:80.
const dockerBaseline = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 9090 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`

// dockerBaseline6 is the IPv6 side: FORWARD DROP, as Docker sets it when it
// manages ip6tables.
const dockerBaseline6 = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`

type lab struct {
	t          testing.TB
	ipt, ip6t  string
	host, ext  *testlab.NS
	fw         *Firewall
	log        *logrus.Logger // fw's
	checker    *Firewall      // see intact
	containers int
}

// eachBackend runs body, in parallel, once per iptables backend, each in its
// own lab firewalled as Docker 20.10 leaves a host.
func eachBackend(t *testing.T, body func(t *testing.T, l *lab)) {
	eachBackendOn(t, dockerBaseline, dockerBaseline6, body)
}

// eachBackendOn is eachBackend on a host whose iptables and ip6tables start
// with base4 and base6 ("": nothing).
func eachBackendOn(t *testing.T, base4, base6 string, body func(t *testing.T, l *lab)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(strings.TrimPrefix(b, "iptables-"), func(t *testing.T) {
			t.Parallel()
			body(t, newLab(t, b, base4, base6))
		})
	}
}

func newLab(t testing.TB, ipt, base4, base6 string) *lab {
	t.Helper()
	testlab.RequireRoot(t)
	ip6t := "ip6" + strings.TrimPrefix(ipt, "ip")
	for _, c := range []string{ipt + "-save", ipt + "-restore", ip6t + "-save", ip6t + "-restore", "busybox", "sysctl"} {
		testlab.RequireCommand(t, c)
	}
	l := &lab{t: t, ipt: ipt, ip6t: ip6t, host: testlab.NewNS(t), ext: testlab.NewNS(t)}
	// br_netfilter's switches are per network namespace on this kernel.
	l.host.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
	if base4 != "" {
		l.restore(ipt, base4)
	}
	if base6 != "" {
		l.restore(ip6t, base6)
	}

	testlab.Wire(t, l.host, "wext", l.ext, "eth0")
	l.host.MustRun(t, "ip", "addr", "add", hostIP+"/24", "dev", "wext")
	l.host.MustRun(t, "ip", "addr", "add", hostIP6+"/64", "dev", "wext", "nodad")
	l.ext.MustRun(t, "ip", "addr", "add", extIP+"/24", "dev", "eth0")
	l.ext.MustRun(t, "ip", "addr", "add", extIP6+"/64", "dev", "eth0", "nodad")

	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	log.SetOutput(testWriter{t})
	l.log = log
	l.fw = New(Config{IPTables: ipt, IP6Tables: ip6t, Prefix: []string{"ip", "netns", "exec", l.host.Name}, Log: log})
	return l
}

// testWriter sends log output to t.Log, so it shows only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// restore applies text with cmd-restore --noflush: one transaction per
// table.
func (l *lab) restore(cmd, text string) {
	l.t.Helper()
	c := []string{"sh", "-c", `printf '%s' "$1" | ` + cmd + `-restore --noflush -w`, "sh", text}
	l.host.MustRun(l.t, c...)
}

// bridge makes a bridge in the host with the given addresses (the first
// address of each subnet, by convention).
func (l *lab) bridge(name string, addrs ...string) {
	l.t.Helper()
	l.host.MustRun(l.t, "ip", "link", "add", name, "type", "bridge")
	for _, a := range addrs {
		l.addAddr(l.host, name, a)
	}
	l.host.MustRun(l.t, "ip", "link", "set", name, "up")
	// As the bridge code must: lets a host process reach a published
	// port through 127.0.0.1 (see the package documentation).
	l.host.MustRun(l.t, "sysctl", "-q", "-w", "net.ipv4.conf."+name+".route_localnet=1")
}

func (l *lab) addAddr(ns *testlab.NS, dev, a string) {
	l.t.Helper()
	args := []string{"ip", "addr", "add", a, "dev", dev}
	if strings.Contains(a, ":") {
		args = append(args, "nodad")
	}
	ns.MustRun(l.t, args...)
}

// container attaches a new namespace to bridge with the given addresses,
// routing through the bridge (the first address of each subnet).
func (l *lab) container(bridge string, addrs ...string) *testlab.NS {
	l.t.Helper()
	l.containers++
	c := testlab.NewNS(l.t)
	veth := "vc" + strconv.Itoa(l.containers)
	testlab.Wire(l.t, l.host, veth, c, "eth0")
	l.host.MustRun(l.t, "ip", "link", "set", veth, "master", bridge)
	// Hairpin mode, as Docker sets it without userland proxy: with
	// br_netfilter, a container's connection to its own published port
	// is DNATed in the bridge and must go back out the port it came in.
	l.host.MustRun(l.t, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
	for _, a := range addrs {
		l.addAddr(c, "eth0", a)
		p := netip.MustParsePrefix(a)
		gw := p.Masked().Addr().Next().String()
		if p.Addr().Is4() {
			c.MustRun(l.t, "ip", "route", "add", "default", "via", gw)
		} else {
			c.MustRun(l.t, "ip", "-6", "route", "add", "default", "via", gw)
		}
	}
	return c
}

// serve runs a web server on port 80 of c, answering marker.
func (l *lab) serve(c *testlab.NS) {
	l.t.Helper()
	dir := l.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(marker+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	c.Start(l.t, "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	for range 50 {
		if l.http(c, "127.0.0.1", "80") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("web server in %s does not answer", c.Name)
}

func (l *lab) apply(r Ruleset) {
	l.t.Helper()
	if err := l.fw.Apply(r); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) ping(from *testlab.NS, to string) bool {
	_, err := from.Run("busybox", "ping", "-c1", "-W1", to)
	return err == nil
}

func (l *lab) http(from *testlab.NS, host, port string) bool {
	out, _ := from.Run("busybox", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 1 "$1" "$2"`, "sh", host, port)
	return strings.Contains(out, marker)
}

// check is one connectivity fact: from can (want) or cannot reach something.
type check struct {
	what string
	want bool
	try  func() bool
}

func (l *lab) pingCheck(from *testlab.NS, fromName, to string, want bool) check {
	return check{"ping " + fromName + " -> " + to, want, func() bool { return l.ping(from, to) }}
}

func (l *lab) httpCheck(from *testlab.NS, fromName, host, port string, want bool) check {
	return check{"http " + fromName + " -> " + host + " port " + port, want, func() bool { return l.http(from, host, port) }}
}

// expect verifies connectivity facts, all at once: an unwanted connection
// costs a full timeout. A wanted connection gets three tries (the first
// packet may wait for neighbour discovery); an unwanted one must fail its
// only try.
func (l *lab) expect(checks ...check) {
	l.t.Helper()
	var wg sync.WaitGroup
	failed := make([]bool, len(checks))
	for i, c := range checks {
		wg.Go(func() {
			got := c.try()
			for n := 0; c.want && !got && n < 2; n++ {
				time.Sleep(100 * time.Millisecond)
				got = c.try()
			}
			failed[i] = got != c.want
		})
	}
	wg.Wait()
	var msgs []string
	for i, c := range checks {
		if failed[i] {
			verb := "works but must not"
			if c.want {
				verb = "fails but must work"
			}
			msgs = append(msgs, c.what+" "+verb)
		}
	}
	if len(msgs) > 0 {
		l.t.Errorf("%s\n%s", strings.Join(msgs, "\n"), l.dump())
	}
}

var (
	saveComment  = regexp.MustCompile(`(?m)^#.*\n`)
	saveCounters = regexp.MustCompile(`\[\d+:\d+\]`)
)

// save returns the host's iptables-save and ip6tables-save output without
// comments and counters.
func (l *lab) save() (v4, v6 string) {
	l.t.Helper()
	clean := func(s string) string {
		return dropEmptyTables(saveCounters.ReplaceAllString(saveComment.ReplaceAllString(s, ""), "[0:0]"))
	}
	return clean(l.host.MustRun(l.t, l.ipt+"-save")), clean(l.host.MustRun(l.t, l.ip6t+"-save"))
}

// untracked is how many packets bridge br's WEFT-NOTRACK rules kept out of
// IPv4 conntrack.
func (l *lab) untracked(br string) int {
	l.t.Helper()
	out := l.host.MustRun(l.t, l.ipt, "-w", "-t", "raw", "-S", ChainNotrack, "-v")
	n, err := testlab.CountedPackets(out, func(rule string) bool {
		return strings.Contains(rule, "-i "+br+" ") && strings.HasSuffix(rule, "--notrack")
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return n
}

// dropEmptyTables removes the tables that hold nothing from iptables-save
// output: with the nft backend a table weft used once (raw) stays listed,
// empty, after weft removed its chain.
func dropEmptyTables(save string) string {
	var out, table []string
	empty := true
	for _, line := range strings.SplitAfter(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table, empty = []string{line}, true
			continue
		case table == nil:
			out = append(out, line)
			continue
		case strings.HasPrefix(line, "-A ") || (strings.HasPrefix(line, ":") && !strings.Contains(line, " ACCEPT ")):
			empty = false
		}
		table = append(table, line)
		if strings.HasPrefix(line, "COMMIT") {
			if !empty {
				out = append(out, table...)
			}
			table = nil
		}
	}
	return strings.Join(out, "")
}

// chain lists a chain's rules as iptables -S prints them, minus the policy
// line.
func (l *lab) chain(cmd, table, chain string) []string {
	l.t.Helper()
	out := l.host.MustRun(l.t, cmd, "-w", "-t", table, "-S", chain)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return slices.DeleteFunc(lines, func(s string) bool { return strings.HasPrefix(s, "-P ") || strings.HasPrefix(s, "-N ") })
}

func (l *lab) dump() string {
	v4, v6 := l.save()
	return "host iptables:\n" + v4 + "host ip6tables:\n" + v6
}
