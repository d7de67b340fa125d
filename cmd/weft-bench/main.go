// Command weft-bench measures weft against Docker's built-in bridge,
// macvlan and overlay drivers in the project's lab (private dockerd
// processes in network namespaces; see internal/lab) and prints a Markdown
// table of the results.
//
// It measures container start time and TCP throughput and latency on a weft
// network versus a built-in bridge network of the same Docker host, and the
// same for weft's macvlan mode versus Docker's built-in macvlan driver on
// one parent NIC (a veth to the lab switch); TCP throughput and latency
// between containers on two hosts of a swarm, on a weft vxlan network, on
// Docker's built-in overlay and between the bare hosts, and how soon a new
// node's containers are reachable after it joins; the plugin's own
// CreateEndpoint+Join latency over its socket, at 1 and 32 concurrent
// callers; IPAM allocation, in memory and through the durable store; and the
// weft daemon's resident memory with many networks and endpoints. All
// traffic stays inside lab namespaces.
//
// Usage (as root, from the repository; `make bench` does this):
//
//	go run ./cmd/weft-bench [-plugin build/plugin] [-quick] [-only start,tcp,macvlan,overlay,attach,ipam,memory]
//
// Progress goes to standard error, the report to standard output.
//
// A missed goal is reported as "no" in the table; the exit status is
// non-zero only when a measurement could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// params sets how much each benchmark measures.
type params struct {
	startWarmup, startRuns    int // container starts per side
	streamRuns, streamSeconds int // TCP stream runs per side, each this long
	rrCount                   int // ping-pongs per round-trip run
	attachSerial              int // attaches by the single caller
	attachEach                int // attaches by each of the 32 callers
	memNetworks, memEndpoints int // networks, endpoints per network
	fillRepeats               int // in-memory /16 fills
	durableBits               int // prefix length of the durable fill
	joins                     int // new nodes timed joining the swarm
}

var (
	// fullParams is `make bench`: about five minutes on 2 cores.
	fullParams = params{
		startWarmup: 2, startRuns: 30,
		streamRuns: 16, streamSeconds: 2, rrCount: 2000,
		attachSerial: 200, attachEach: 16,
		memNetworks: 100, memEndpoints: 10,
		fillRepeats: 5, durableBits: 20,
		joins: 3,
	}
	// quickParams is -quick: a smoke check of every benchmark.
	quickParams = params{
		startWarmup: 1, startRuns: 4,
		streamRuns: 2, streamSeconds: 1, rrCount: 500,
		attachSerial: 30, attachEach: 2,
		memNetworks: 10, memEndpoints: 10,
		fillRepeats: 1, durableBits: 24,
		joins: 1,
	}
)

// bench is one benchmark run.
type bench struct {
	p         params
	lab       *lab.Lab
	pluginDir string // snapshot of -plugin inside the lab directory
	weftBin   string // the daemon binary of that snapshot
	tcpperf   string // static tcpperf binary
	hosts     lazyHosts
	logf      func(format string, args ...any)
}

func main() {
	pluginDir := flag.String("plugin", "build/plugin", "plugin directory made by `make plugin` (config.json and rootfs/)")
	quick := flag.Bool("quick", false, "fewer and shorter runs: a smoke check, not a measurement")
	only := flag.String("only", "", "comma-separated benchmarks to run ("+strings.Join(phaseNames, ", ")+"); default all")
	labDir := flag.String("lab-dir", "/var/tmp/weft-bench", "lab working directory; the state databases live there, so keep it on a disk, not tmpfs")
	flag.Parse()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	p := fullParams
	if *quick {
		p = quickParams
	}
	if err := run(p, *quick, *only, *pluginDir, *labDir, logf); err != nil {
		logf("weft-bench: %v", err)
		os.Exit(1)
	}
}

// run sets up the lab, runs every benchmark, prints the report and tears
// the lab down, also on SIGINT or SIGTERM.
func run(p params, quick bool, only, pluginDir, labDir string, logf func(string, ...any)) (retErr error) {
	pluginDir, err := checkPluginDir(pluginDir)
	if err != nil {
		return err
	}
	ctx, cancel := cancelOnSignal(logf)
	defer cancel()

	tmp, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{p: p, logf: logf}
	phases, err := b.phases(only)
	if err != nil {
		return err
	}
	logf("building tcpperf")
	if b.tcpperf, err = buildTCPPerf(ctx, tmp); err != nil {
		return err
	}

	logf("starting the lab in %s (waits while another lab runs on this machine)", labDir)
	if b.lab, err = lab.New(lab.Config{Dir: labDir, Logf: logf}); err != nil {
		return err
	}
	defer func() {
		logf("closing the lab")
		if err := b.lab.Close(); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("lab cleanup: %w", err))
		}
	}()
	// A snapshot, so a concurrent `make plugin` cannot swap binaries under
	// a running benchmark.
	b.pluginDir = filepath.Join(b.lab.Dir(), "plugin")
	if out, err := exec.CommandContext(ctx, "cp", "-a", pluginDir, b.pluginDir).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %v: %s", pluginDir, err, out)
	}
	b.weftBin = filepath.Join(b.pluginDir, "rootfs", "weft")

	failed := b.runPhases(ctx, phases)
	rep := b.report(ctx, quick, phases)
	rep.write(os.Stdout)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// checkPluginDir returns the plugin directory's absolute path, once it has
// what `make plugin` builds.
func checkPluginDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, f := range []string{"config.json", "rootfs/weft"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("%v: build the plugin first (make plugin)", err)
		}
	}
	return dir, nil
}

// cancelOnSignal returns a context that Ctrl-C or SIGTERM cancels, so the
// lab is still cleaned up.
func cancelOnSignal(logf func(string, ...any)) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	// Never unregistered: a second Ctrl-C must not kill us mid-cleanup.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("%v: stopping; the lab is being cleaned up", s)
		cancel()
	}()
	return ctx, cancel
}

// runPhases runs the phases in their run order and returns the titles of
// those that failed.
func (b *bench) runPhases(ctx context.Context, phases []*phase) []string {
	var failed []string
	for _, ph := range runOrder(phases) {
		if ctx.Err() != nil {
			ph.err = ctx.Err()
			continue
		}
		b.logf("== %s", ph.title)
		t0 := time.Now()
		ph.sec, ph.err = ph.run(ctx)
		if ph.err != nil {
			b.logf("%s failed: %v", ph.title, ph.err)
			failed = append(failed, ph.title)
		} else {
			b.logf("%s done in %s", ph.title, time.Since(t0).Round(time.Second))
		}
	}
	return failed
}

// report gathers the phases' rows and notes, in the table's order.
func (b *bench) report(ctx context.Context, quick bool, phases []*phase) report {
	rep := report{header: b.header(ctx, quick)}
	for _, ph := range phases {
		if ph.err != nil {
			rep.rows = append(rep.rows, row{metric: ph.title, weft: "error: " + firstLine(ph.err.Error())})
			continue
		}
		rep.rows = append(rep.rows, ph.sec.rows...)
		rep.notes = append(rep.notes, ph.sec.notes...)
	}
	return rep
}

// firstLine returns s up to its first newline (errors may carry log tails).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// buildTCPPerf builds the static tcpperf peer into dir. It needs the go
// tool and the weft module, i.e. running from the repository.
func buildTCPPerf(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is needed to build tcpperf: %w", err)
	}
	out := filepath.Join(dir, "tcpperf")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "github.com/weftnet/weft/cmd/weft-bench/tcpperf")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building tcpperf (run weft-bench from the weft repository, e.g. make bench): %v: %s", err, msg)
	}
	return out, nil
}
