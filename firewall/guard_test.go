package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/nl"
)

// comeBackWithin ends the wait for weft's rules after a change. The guard
// is meant to have them back within two seconds, but a timed test does not
// assert speed (a busy machine is slower): each repair's time is measured
// and logged instead.
const comeBackWithin = 30 * time.Second

// guarded is a running Guard with what it reported.
type guarded struct {
	l       *lab
	repairs chan timedRepair
	mu      sync.Mutex
	logged  []string // warning and error messages of the firewall's log
}

// timedRepair is a Repair and when the guard reported it.
type timedRepair struct {
	Repair
	at time.Time
}

// startGuard runs the guard as the daemon does: with nf_tables notifications
// from the host namespace where the backend sends them, else polling every
// second. With notifications the safety-net poll is turned off (the daemon
// has one every 30 s), so that a repair on the nft backend proves the
// notifications work.
func (l *lab) startGuard() *guarded {
	l.t.Helper()
	g := &guarded{l: l, repairs: make(chan timedRepair, 16)}
	l.log.AddHook(g)
	ctx, cancel := context.WithCancel(context.Background())
	var changes <-chan struct{}
	var poll time.Duration
	if strings.HasSuffix(l.ipt, "-nft") {
		poll = 24 * time.Hour
		var err error
		if changes, err = nl.WatchNFTables(ctx, l.host.Path()); err != nil {
			cancel()
			l.t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.fw.Guard(ctx, GuardConfig{Changes: changes, Poll: poll, Repaired: func(r Repair) { g.repairs <- timedRepair{r, time.Now()} }})
	}()
	// Stopped before the lab's namespaces go, and before the test ends:
	// the guard logs through t.Log.
	l.t.Cleanup(func() { cancel(); <-done })
	return g
}

func (g *guarded) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel} }

func (g *guarded) Fire(e *logrus.Entry) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.logged = append(g.logged, e.Message)
	return nil
}

// disrupt runs change in the host namespace, waits until weft's rules are
// whole again, and checks that the guard reported and logged what change did
// (want, a part of one of the reported changes: which also shows that change
// broke something). It returns how long after the end of change the guard
// reported its last repair (0 if it was done by then: a change in several
// steps may be repaired in between).
func (g *guarded) disrupt(what, want string, change func()) time.Duration {
	l := g.l
	l.t.Helper()
	if err := l.intact(); err != nil {
		l.t.Fatalf("before %s: %v", what, err)
	}
	start := time.Now()
	change()
	end := time.Now()
	var err error
	for err = l.intact(); err != nil && time.Since(end) < comeBackWithin; err = l.intact() {
		// Not faster: each look runs iptables-save twice, which
		// would slow the guard down.
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		l.t.Fatalf("after %s weft's rules are still not back after %s: %v", what, time.Since(end).Round(time.Millisecond), err)
	}
	var r Repair
	var last time.Time
	for wait := time.Second; ; wait = 300 * time.Millisecond {
		select {
		case next := <-g.repairs:
			r.Changes = append(r.Changes, next.Changes...)
			r.Took = max(r.Took, next.Took)
			r.Err = errors.Join(r.Err, next.Err)
			last = next.at
			continue
		case <-time.After(wait):
		}
		break
	}
	if last.IsZero() || last.Before(start) {
		l.t.Fatalf("after %s the rules are whole but the guard reported no repair", what)
	}
	back := max(0, last.Sub(end))
	l.t.Logf("%s (took %s): weft's rules back %s after it (the guard took %s from the %s): %s",
		what, end.Sub(start).Round(time.Millisecond), back.Round(time.Millisecond), r.Took.Round(time.Millisecond),
		map[bool]string{true: "notification", false: "poll"}[strings.HasSuffix(l.ipt, "-nft")], strings.Join(r.Changes, "; "))
	if r.Err != nil || !strings.Contains(strings.Join(r.Changes, "\n"), want) {
		l.t.Errorf("after %s the guard reported %q (error %v), want a change containing %q", what, r.Changes, r.Err, want)
	}
	g.mu.Lock()
	logged := strings.Join(g.logged, "\n")
	g.logged = nil
	g.mu.Unlock()
	if !strings.Contains(logged, "changed by someone else, put back: ") || !strings.Contains(logged, want) {
		l.t.Errorf("after %s the log says:\n%s\nwant a line naming %q", what, logged, want)
	}
	return back
}

// quiet checks that the guard repairs nothing while nobody changes anything
// (its own repairs notify it too).
func (g *guarded) quiet(d time.Duration) {
	g.l.t.Helper()
	select {
	case r := <-g.repairs:
		g.l.t.Errorf("the guard repaired %q (error %v) though nothing changed", r.Changes, r.Err)
	case <-time.After(d):
	}
}

// intact says how weft's rules in the host differ from what the last Apply
// wanted, or nil. It plans as Apply does, with a Firewall of its own.
func (l *lab) intact() error {
	l.fw.mu.Lock()
	last := l.fw.last
	l.fw.mu.Unlock()
	if last == nil {
		return fmt.Errorf("nothing applied")
	}
	if l.checker == nil {
		// Its probes, once done, are not run again: they change the
		// tables (see notrackUsable).
		l.checker = New(Config{IPTables: l.ipt, IP6Tables: l.ip6t, Prefix: l.fw.cfg.Prefix, Log: logrus.New()})
	}
	probe := l.checker
	var diffs []string
	for _, fam := range []family{ipv4, ipv6} {
		saved, err := probe.run("", probe.tool(fam)+"-save")
		if err != nil {
			return err
		}
		cur := parseSave(saved)
		if _, changes := plan(fam, probe.supported(fam, withKept(rulesFor(*last, fam), *last, cur)), cur); len(changes) > 0 {
			diffs = append(diffs, changes...)
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s", strings.Join(diffs, "; "))
	}
	return nil
}

// TestKernelGuard: whatever removes or moves weft's chains and jumps, the
// guard puts them back (meant within two seconds: the time is logged), says
// so in the log, and weft's containers work again.
func TestKernelGuard(t *testing.T) {
	eachBackendOn(t, docker29Baseline, dockerBaseline6, func(t *testing.T, l *lab) {
		s := newDockerScenario(l, "9090")
		g := l.startGuard()
		g.quiet(1500 * time.Millisecond)

		g.disrupt("a dockerd restart", "jump FORWARD -j WEFT-FORWARD is behind -j DOCKER-FORWARD", func() {
			// Docker's jumps put first again, in one transaction as
			// dockerd does: as separate commands, the guard's poll could
			// see (and repair) a state halfway.
			l.restore(l.ipt, "*filter\n"+
				"-D FORWARD -j DOCKER-FORWARD\n-I FORWARD 1 -j DOCKER-FORWARD\n"+
				"-D FORWARD -j DOCKER-USER\n-I FORWARD 1 -j DOCKER-USER\nCOMMIT\n")
		})
		l.requireForward("-A FORWARD -j DOCKER-USER", "-A FORWARD -j WEFT-FORWARD", "-A FORWARD -j DOCKER-FORWARD")
		s.expect("after the guard's repair")

		g.disrupt("iptables -F FORWARD", "jump FORWARD -j WEFT-FORWARD is missing", func() {
			l.host.MustRun(t, l.ipt, "-w", "-F", "FORWARD")
		})
		// FORWARD's policy is still DROP: weft's accepts are back.
		l.expect(
			l.httpCheck(l.ext, "ext", hostIP, "8080", true),
			l.httpCheck(s.c1, "c1", "10.1.0.3", "80", true),
			l.httpCheck(s.cd, "docker container", "10.1.0.3", "80", false),
		)

		g.disrupt("a chain's rules reordered", "chain WEFT-ISOLATION has its rules in another order", func() {
			rules := l.chain(l.ipt, "mangle", ChainIsolation)
			// The first rule moved to the end, in one transaction: as two
			// commands, a poll between them sees a rule missing instead.
			l.restore(l.ipt, "*mangle\n-D "+ChainIsolation+" 1\n-A "+ChainIsolation+" -i wfa -o wfa -j RETURN\nCOMMIT\n")
			if rules[0] != "-A WEFT-ISOLATION -i wfa -o wfa -j RETURN" {
				t.Fatalf("WEFT-ISOLATION starts with %q", rules[0])
			}
		})

		if strings.HasSuffix(l.ipt, "-nft") {
			g.disrupt("nft flush ruleset", "chain WEFT-FORWARD is missing", func() {
				l.host.MustRun(t, "nft", "flush", "ruleset")
			})
		} else {
			// The legacy tables' equivalent: every table emptied in
			// one iptables-restore, as a firewalld reload with its
			// iptables backend does.
			g.disrupt("every table emptied", "chain WEFT-FORWARD is missing", func() {
				empty := "*filter\nCOMMIT\n*nat\nCOMMIT\n*mangle\nCOMMIT\n*raw\nCOMMIT\n"
				for _, ipt := range []string{l.ipt, l.ip6t} {
					l.host.MustRun(t, "sh", "-c", `printf '%s' "$1" | `+ipt+`-restore -w`, "sh", empty)
				}
			})
		}
		l.expect(
			l.httpCheck(l.ext, "ext", hostIP, "8080", true),
			l.httpCheck(s.c1, "c1", "10.1.0.3", "80", true),
			l.httpCheck(s.cd, "docker container", "10.1.0.3", "80", false),
		)
		g.quiet(1500 * time.Millisecond)
	})
}

// TestKernelGuardIdle: before weft's first Apply, and after the last network
// is gone, the guard changes nothing; a change of someone else's rules that
// leaves weft's alone is left alone.
func TestKernelGuardIdle(t *testing.T) {
	eachBackendOn(t, dockerBaseline, dockerBaseline6, func(t *testing.T, l *lab) {
		g := l.startGuard()
		l.host.MustRun(t, l.ipt, "-w", "-I", "FORWARD", "-s", "192.0.2.1/32", "-j", "DROP")
		g.quiet(1500 * time.Millisecond)
		if n := l.restoreCount(); n != 0 {
			t.Errorf("the guard ran iptables-restore %d times with nothing applied", n)
		}
		l.apply(Ruleset{Networks: []Network{network("wfa", true, true, "10.1.0.0/24")}})
		l.host.MustRun(t, l.ipt, "-w", "-A", "FORWARD", "-s", "192.0.2.2/32", "-j", "DROP")
		g.quiet(1500 * time.Millisecond)
		if err := l.intact(); err != nil {
			t.Errorf("after a rule of someone else's was appended: %v", err)
		}
		l.apply(Ruleset{})
		n := l.restoreCount()
		l.host.MustRun(t, l.ipt, "-w", "-D", "FORWARD", "-s", "192.0.2.2/32", "-j", "DROP")
		g.quiet(1500 * time.Millisecond)
		if m := l.restoreCount(); m != n {
			t.Errorf("the guard ran iptables-restore %d times after the last network was gone", m-n)
		}
	})
}

func (l *lab) restoreCount() int {
	l.fw.mu.Lock()
	defer l.fw.mu.Unlock()
	return l.fw.restores
}

// BenchmarkGuardCheck measures one check of the guard that finds nothing to
// do (iptables-save and ip6tables-save, parsing, planning) on a host with 20
// weft networks and 40 published ports beside Docker 29's rules: its CPU
// time (with the commands it runs) and wall time. Run it with
// go test -run '^$' -bench GuardCheck ./firewall.
func BenchmarkGuardCheck(b *testing.B) {
	for _, ipt := range backends {
		b.Run(strings.TrimPrefix(ipt, "iptables-"), func(b *testing.B) { benchGuardCheck(b, ipt) })
	}
}

func benchGuardCheck(b *testing.B, ipt string) {
	l := newLab(b, ipt, docker29Baseline, dockerBaseline6)
	l.log.SetLevel(logrus.InfoLevel)
	var r Ruleset
	for i := range 20 {
		br := fmt.Sprintf("wf%02d", i)
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", 100+i))
		r.Networks = append(r.Networks, network(br, true, true, subnet.String(), fmt.Sprintf("fd%02x::/64", i+1)))
		for p := range 2 {
			r.Ports = append(r.Ports, tcp(br, "", uint16(8000+2*i+p), subnet.Addr().Next().Next().String(), uint16(80+p)))
		}
	}
	if err := l.fw.Apply(r); err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		var total time.Duration
		for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
			var ru syscall.Rusage
			if err := syscall.Getrusage(who, &ru); err != nil {
				b.Fatal(err)
			}
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		return total
	}
	before := cpu()
	for b.Loop() {
		if found, err := l.fw.repair(); err != nil || len(found) > 0 {
			b.Fatalf("check found %q, %v", found, err)
		}
	}
	b.ReportMetric(float64((cpu()-before).Microseconds())/1000/float64(b.N), "cpu-ms/check")
}

// TestGuardWithoutNotifications runs fake iptables commands whose tables
// never hold weft's rules: when the notifications end (their channel is
// closed), the guard polls, repairs each time, and logs a failure once.
func TestGuardWithoutNotifications(t *testing.T) {
	dir := t.TempDir()
	write := func(name, script string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("ipt-save", "printf '*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n'\n")
	write("ipt-restore", "cat >/dev/null\n[ -e \"$0.fail\" ] && { echo 'iptables-restore: line 2 failed' >&2; exit 1; }\nexit 0\n")
	log := logrus.New()
	log.SetOutput(testWriter{t})
	g := &guarded{repairs: make(chan timedRepair, 16)}
	log.AddHook(g)
	fw := New(Config{IPTables: filepath.Join(dir, "ipt"), IP6Tables: "weft-no-such-ip6tables", Log: log})
	if err := fw.Apply(Ruleset{Networks: []Network{{Bridge: "wfa", Subnets: []netip.Prefix{pfx("10.1.0.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	changes := make(chan struct{})
	close(changes)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fw.Guard(ctx, GuardConfig{Changes: changes, Repaired: func(r Repair) { g.repairs <- timedRepair{r, time.Now()} }})
	}()
	defer func() { cancel(); <-done }()
	next := func() Repair {
		t.Helper()
		select {
		case r := <-g.repairs:
			return r.Repair
		case <-time.After(3 * DefaultPoll):
			t.Fatal("no check within three poll periods")
		}
		return Repair{}
	}
	for range 2 {
		if r := next(); r.Err != nil || !slices.Contains(r.Changes, "IPv4 filter: chain WEFT-FORWARD is missing") {
			t.Errorf("repair %q, %v", r.Changes, r.Err)
		}
	}
	write("ipt-restore.fail", "")
	for range 3 {
		if r := next(); r.Err == nil || !strings.Contains(r.Err.Error(), "line 2 failed") {
			t.Errorf("failed repair reported as %q, %v", r.Changes, r.Err)
		}
	}
	g.mu.Lock()
	logged := strings.Join(g.logged, "\n")
	g.mu.Unlock()
	if !strings.Contains(logged, "no more change notifications; checking every 1s") {
		t.Errorf("the end of the notifications went unlogged:\n%s", logged)
	}
	if n := strings.Count(logged, "could not put weft's rules back"); n != 1 {
		t.Errorf("a failing repair was logged %d times, want once:\n%s", n, logged)
	}
}
