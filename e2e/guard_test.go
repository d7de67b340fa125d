package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// TestFirewallGuard: whoever changes weft's chains, jumps or their order
// (an admin's iptables -F FORWARD, a deleted jump, Docker's jumps moved
// ahead of weft's, nft flush ruleset, a dockerd restart), weft puts them
// back, says so in its log, and a container on a Docker bridge network then
// still cannot reach a weft container's unpublished port, while the
// published one answers. The time from each change to weft's rules being
// back is measured and logged, not asserted. Each backend of Docker 29 gets
// a host of its own: the changes take Docker's rules too (Docker repairs
// them only when it restarts).
func TestFirewallGuard(t *testing.T) {
	requireLab(t)
	t.Run("iptables", func(t *testing.T) { guardScenario(t, backendHost(t, "fwipt", "iptables"), 0) })
	t.Run("nftables", func(t *testing.T) { guardScenario(t, backendHost(t, "fwnft", "nftables"), 1) })
}

// firewallChange is something someone else does to a host's firewall, and
// what weft's log must then say it put back.
type firewallChange struct {
	what   string
	script string // run in the lab host
	logged []string
	undo   string // run after the check, if the change leaves more than weft repairs
}

// firewallChanges are the changes guardScenario makes on a host with
// Docker's firewall backend b, in order: the ones that need Docker's rules
// come first. dockerChain is the chain of Docker's accepts that dockerd
// jumps to from FORWARD right behind DOCKER-USER: DOCKER-FORWARD since
// Docker 28, DOCKER-ISOLATION-STAGE-1 before.
func firewallChanges(b, dockerChain string) []firewallChange {
	var cs []firewallChange
	if b == "iptables" {
		cs = append(cs, firewallChange{
			what:   "DOCKER-USER and " + dockerChain + " moved ahead of weft's jump",
			script: fmt.Sprintf("iptables -w -D FORWARD -j %[1]s && iptables -w -I FORWARD -j %[1]s && iptables -w -D FORWARD -j DOCKER-USER && iptables -w -I FORWARD -j DOCKER-USER", dockerChain),
			logged: []string{"jump FORWARD -j WEFT-FORWARD is behind -j " + dockerChain},
		})
	} else {
		// This backend leaves iptables' FORWARD to weft.
		cs = append(cs, firewallChange{
			what:   "an accept-everything rule put ahead of weft's jump",
			script: "iptables -w -I FORWARD -j ACCEPT",
			logged: []string{"jump FORWARD -j WEFT-FORWARD is behind -j ACCEPT"},
			undo:   "iptables -w -D FORWARD -j ACCEPT",
		})
	}
	return append(cs,
		firewallChange{
			what:   "weft's jumps from FORWARD deleted",
			script: "iptables -w -D FORWARD -j WEFT-FORWARD && iptables -w -t mangle -D FORWARD -j WEFT-ISOLATION",
			logged: []string{"jump FORWARD -j WEFT-FORWARD is missing", "jump FORWARD -j WEFT-ISOLATION is missing"},
		},
		firewallChange{
			what:   "iptables -F FORWARD",
			script: "iptables -w -F FORWARD",
			logged: []string{"jump FORWARD -j WEFT-FORWARD is missing"},
		},
		firewallChange{
			what:   "nft flush ruleset",
			script: "nft flush ruleset",
			logged: []string{"chain WEFT-FORWARD is missing", "chain WEFT-ISOLATION is missing"},
		},
	)
}

// guardScenario runs firewallChanges on h and then restarts its dockerd.
func guardScenario(t *testing.T, h *lab.DockerHost, n int) {
	s := newIsolationSetup(t, h, n)
	want := readWeftRules(t, h)
	if d := want.differs(want); len(want.chains) == 0 || len(want.forward) != 2 || d != "" {
		t.Fatalf("weft's rules on %s before anything happened: %+v %s", h.Name, want, d)
	}
	s.check(t, "before any change")
	if n == 0 && engineMajor(t, h) >= 29 {
		// Long enough for one of the guard's safety-net checks (every
		// 30 s besides the notifications); the same on either backend
		// and engine, so measured once per suite on the current one.
		t.Logf("weft's CPU time on %s in 35 s with nothing changing: %s", h.Name, idleCPU(t, h, 35*time.Second))
	}

	var times []string
	backend := cmp.Or(h.FirewallBackend(), "iptables")
	dockerChain := "DOCKER-FORWARD"
	if engineMajor(t, h) < 28 {
		dockerChain = "DOCKER-ISOLATION-STAGE-1"
	}
	for _, c := range firewallChanges(backend, dockerChain) {
		offset := hostLogSize(t, h)
		if _, err := h.Run(ctx(t), "sh", "-c", c.script); err != nil {
			t.Fatalf("%s on %s: %v", c.what, h.Name, err)
		}
		back := waitRulesBack(t, h, c.what, func(w weftRules) string { return w.differs(want) })
		times = append(times, fmt.Sprintf("%s: %s", c.what, back.Round(time.Millisecond)))
		logged := waitLogged(h, offset, c.logged)
		for _, l := range c.logged {
			if !strings.Contains(logged, l) {
				t.Errorf("after %s weft's log does not say it put back %q:\n%s", c.what, l, probe.Tail(logged, 20))
			}
		}
		s.check(t, "after "+c.what)
		if c.undo != "" {
			if _, err := h.Run(ctx(t), "sh", "-c", c.undo); err != nil {
				t.Fatalf("undo %s on %s: %v", c.what, h.Name, err)
			}
		}
	}
	t.Logf("on %s (dockerd's %s backend) weft's rules were back, after:\n%s", h.Name, backend, strings.Join(times, "\n"))

	offset := hostLogSize(t, h)
	ws := outOfPlaceDuring(t, h, want, func() { restartDockerd(t, h, s.containers...) })
	var repairs []string
	for _, l := range strings.Split(hostLogSince(t, h, offset), "\n") {
		if strings.Contains(l, "put back: ") || strings.Contains(l, "could not put") {
			repairs = append(repairs, l)
		}
	}
	t.Logf("dockerd restart on %s: weft's jumps from FORWARD out of place %d times, for %v; the guard's log:\n%s", h.Name, len(ws), ws, strings.Join(repairs, "\n"))
	// The containers may have new addresses: only weft's jumps from
	// FORWARD are as before.
	waitRulesBack(t, h, "the dockerd restart", func(w weftRules) string { return w.forwardDiffers(want) })
	s.check(t, "after a dockerd restart")
}

// isolationSetup is a weft network holding a web server, which publishes
// port 81 and leaves 80 unpublished, and a peer; and a Docker bridge network
// holding an intruder. All restart with dockerd.
type isolationSetup struct {
	h                   *lab.DockerHost
	web, peer, intruder string
	pub                 int
	containers          []string
}

func newIsolationSetup(t *testing.T, h *lab.DockerHost, n int) *isolationSetup {
	t.Helper()
	s := &isolationSetup{h: h, web: netName(t, "web"), peer: netName(t, "peer"), intruder: netName(t, "intruder"), pub: 8680 + n}
	weftNet, dockerNet := netName(t, "weft"), netName(t, "docker")
	onHost(t, h, bridgeDrivers[0], weftNet, "--subnet", fmt.Sprintf("10.%d.0.0/24", 74+n))
	onHost(t, h, bridgeDrivers[1], dockerNet, "--subnet", fmt.Sprintf("10.%d.0.0/24", 174+n))
	runOn(t, h, "always", s.web, "--network", weftNet, "-p", fmt.Sprintf("%d:81", s.pub), lab.Image, "sh", "-c", webScript)
	runOn(t, h, "always", s.peer, "--network", weftNet)
	runOn(t, h, "always", s.intruder, "--network", dockerNet)
	s.containers = []string{s.web, s.peer, s.intruder}
	return s
}

// check asserts that the intruder does not reach web's unpublished port,
// with positive controls: the peer reaches it, and the intruder and the
// outside host reach the published one.
func (s *isolationSetup) check(t *testing.T, when string) {
	t.Helper()
	h := s.h
	ip := containerIP(t, h, s.web)
	retry := func(f func() bool) bool {
		// Servers take a moment after `docker run` or a restart.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			if f() {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
		}
	}
	if !retry(func() bool { return httpFrom(t, h, s.peer, ip, 80) }) {
		t.Fatalf("%s: %s does not reach %s:80 on its own weft network, so nothing below proves anything", when, s.peer, ip)
	}
	if !retry(func() bool { return httpFrom(t, h, s.intruder, h.Addr.String(), s.pub) }) {
		t.Errorf("%s: %s on a Docker bridge network cannot reach the published port %s:%d", when, s.intruder, h.Addr, s.pub)
	}
	if !served(t, h.Addr.String(), s.pub, webMarker) {
		t.Errorf("%s: the published port %s:%d does not answer the outside host", when, h.Addr, s.pub)
	}
	if httpFrom(t, h, s.intruder, ip, 80) {
		t.Errorf("%s: %s on a Docker bridge network reached the unpublished port %s:80 of a weft container", when, s.intruder, ip)
	}
}

// waitRulesBack waits until differs finds nothing wrong with h's weft
// rules and returns how long that took. The bound is there only to end the
// test: the time is measured and logged, not asserted.
func waitRulesBack(t *testing.T, h *lab.DockerHost, after string, differs func(weftRules) string) time.Duration {
	t.Helper()
	start := time.Now()
	d := differs(readWeftRules(t, h))
	for d != "" && time.Since(start) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
		d = differs(readWeftRules(t, h))
	}
	back := time.Since(start)
	if d != "" {
		t.Fatalf("after %s weft's rules on %s are not back after %s: %s", after, h.Name, back.Round(time.Millisecond), d)
	}
	t.Logf("after %s weft's rules on %s were back in %s", after, h.Name, back.Round(time.Millisecond))
	return back
}

// waitLogged waits a little for every line of want in h's log since offset
// and returns that part of the log.
func waitLogged(h *lab.DockerHost, offset int64, want []string) string {
	var logged string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(h.LogPath)
		logged = string(b[min(offset, int64(len(b))):])
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(logged, w) }) {
			break
		}
	}
	return logged
}

// outOfPlaceDuring runs f while watching weft's jumps from FORWARD and
// returns each time they were missing or out of place, for how long
// (negative: still at the end).
func outOfPlaceDuring(t *testing.T, h *lab.DockerHost, want weftRules, f func()) []time.Duration {
	stop := make(chan struct{})
	windows := make(chan []time.Duration, 1)
	go func() {
		var out []time.Duration
		var since time.Time
		for {
			select {
			case <-stop:
				if !since.IsZero() {
					out = append(out, -time.Since(since))
				}
				windows <- out
				return
			case <-time.After(20 * time.Millisecond):
			}
			w, err := weftRulesOf(h)
			broken := err != nil || w.forwardDiffers(want) != ""
			switch {
			case broken && since.IsZero():
				since = time.Now()
			case !broken && !since.IsZero():
				out = append(out, time.Since(since))
				since = time.Time{}
			}
		}
	}()
	f()
	// Containers run again before dockerd has finished its rules.
	time.Sleep(3 * time.Second)
	close(stop)
	return <-windows
}

// idleCPU is the CPU time weft's process on h (and the commands it ran)
// used during d.
func idleCPU(t *testing.T, h *lab.DockerHost, d time.Duration) time.Duration {
	t.Helper()
	pid, err := h.PluginPID(ctx(t), Plugin)
	if err != nil {
		t.Fatal(err)
	}
	before := cpuTime(t, pid)
	time.Sleep(d)
	return cpuTime(t, pid) - before
}

// cpuTime is utime+stime+cutime+cstime of pid (proc(5)), at the kernel's
// USER_HZ of 100.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime field 14.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// weftRules is weft's part of a host's iptables and ip6tables: every rule of
// weft's chains, chain by chain, and whether weft's early jumps sit where
// they belong (first in mangle FORWARD; in filter FORWARD right behind
// DOCKER-USER, or first without it).
type weftRules struct {
	chains  map[string][]string // "iptables filter WEFT-FORWARD" -> rules
	jumps   []string            // weft's jumps, each as "iptables filter FORWARD <rule>"
	forward []string            // those of jumps from FORWARD
	placed  bool
}

func readWeftRules(t *testing.T, h *lab.DockerHost) weftRules {
	t.Helper()
	w, err := weftRulesOf(h)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func weftRulesOf(h *lab.DockerHost) (weftRules, error) {
	w := weftRules{chains: map[string][]string{}, placed: true}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, fam := range []string{"iptables", "ip6tables"} {
		out, err := h.Run(c, fam+"-save")
		if err != nil {
			return w, fmt.Errorf("%s-save on %s: %w", fam, h.Name, err)
		}
		table := ""
		builtin := map[string][]string{}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "*") {
				table = line[1:]
				continue
			}
			chain, rule, ok := strings.Cut(strings.TrimPrefix(line, "-A "), " ")
			if !strings.HasPrefix(line, "-A ") || !ok {
				continue
			}
			key := fam + " " + table + " " + chain
			switch {
			case strings.HasPrefix(chain, "WEFT-"):
				w.chains[key] = append(w.chains[key], rule)
			case strings.Contains(rule, "-j WEFT-"):
				w.jumps = append(w.jumps, key+" "+rule)
				if chain == "FORWARD" {
					w.forward = append(w.forward, key+" "+rule)
				}
			}
			builtin[table+" "+chain] = append(builtin[table+" "+chain], rule)
		}
		for _, tc := range []struct{ key, jump string }{{"filter FORWARD", "-j WEFT-FORWARD"}, {"mangle FORWARD", "-j WEFT-ISOLATION"}} {
			rules := builtin[tc.key]
			if at := slices.Index(rules, tc.jump); at >= 0 && slices.Index(rules, "-j DOCKER-USER") != at-1 {
				w.placed = false
			}
		}
	}
	return w, nil
}

// differs says how w differs from want, or "".
func (w weftRules) differs(want weftRules) string {
	var d []string
	for key, rules := range want.chains {
		if !slices.Equal(w.chains[key], rules) {
			d = append(d, key+" differs")
		}
	}
	for key := range w.chains {
		if want.chains[key] == nil {
			d = append(d, key+" is not weft's")
		}
	}
	if j := w.jumpsDiffer(want); j != "" {
		d = append(d, j)
	}
	return strings.Join(d, "; ")
}

// jumpsDiffer says how w's jumps differ from want's, or "".
func (w weftRules) jumpsDiffer(want weftRules) string {
	a, b := slices.Sorted(slices.Values(w.jumps)), slices.Sorted(slices.Values(want.jumps))
	if !slices.Equal(a, b) {
		return fmt.Sprintf("jumps %q, want %q", a, b)
	}
	return w.forwardDiffers(want)
}

// forwardDiffers says how w's jumps from FORWARD differ from want's, in
// presence or place, or "". weft's other jumps come and go with its chains,
// which change with the containers (the nat jumps go with the last
// published port); those from FORWARD stay as long as a network does.
func (w weftRules) forwardDiffers(want weftRules) string {
	var d []string
	a, b := slices.Sorted(slices.Values(w.forward)), slices.Sorted(slices.Values(want.forward))
	if !slices.Equal(a, b) {
		d = append(d, fmt.Sprintf("jumps from FORWARD %q, want %q", a, b))
	}
	if !w.placed {
		d = append(d, "a jump is out of place")
	}
	return strings.Join(d, "; ")
}

// hostLogSince is what h's dockerd log (which holds the plugin's) gained since
// offset.
func hostLogSince(t *testing.T, h *lab.DockerHost, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(h.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

func hostLogSize(t *testing.T, h *lab.DockerHost) int64 {
	t.Helper()
	st, err := os.Stat(h.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
