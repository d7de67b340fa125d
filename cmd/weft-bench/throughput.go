package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// perfPort is where the tcpperf server listens inside its container.
const perfPort = "5201"

// perfPair is a tcpperf client and the server it measures.
type perfPair struct {
	target string // server IP:port
	// client runs tcpperf with args where the client sits (a container or
	// a lab host) and returns its output.
	client func(ctx context.Context, args ...string) (string, error)
}

// inContainer runs tcpperf clients in a container of d.
func inContainer(d *lab.DockerHost, container string) func(context.Context, ...string) (string, error) {
	return func(ctx context.Context, args ...string) (string, error) {
		return d.Docker(ctx, append([]string{"exec", container, "/tcpperf"}, args...)...)
	}
}

// throughput compares TCP between two containers on a weft bridge network
// and on a built-in bridge network (bridgeSides); see measureTCP.
func (b *bench) throughput(ctx context.Context) (section, error) {
	d, err := b.dockerHost(ctx)
	if err != nil {
		return section{}, err
	}
	r, err := b.measureTCP(ctx, d, bridgeSides)
	if err != nil {
		return section{}, err
	}
	return section{
		rows: []row{
			pairedRow("TCP throughput, container to container, median", r.gbps[0], r.gbps[1], fmtGbps, throughputGoal),
			pairedRow("TCP round trip (1 byte), container to container, median", r.rtt[0], r.rtt[1], fmtMicros, nil),
		},
		notes: b.tcpNotes("TCP", r),
	}, nil
}

// throughputGoal applies to the paired weft/built-in throughput ratio.
var throughputGoal = atLeast(0.98, "≥ 0.98")

// tcpResult holds tcpperf results per path (index as the pairs measured)
// and run.
type tcpResult struct {
	gbps  [][]float64 // stream throughput per run, Gbit/s
	rtt   [][]float64 // p50 round trip per run, µs
	rtt99 [][]float64 // p99 round trip per run, µs
}

// of returns a path's and another's runs, for pairedRatio.
func of(runs [][]float64, a, b int) [2][]float64 { return [2][]float64{runs[a], runs[b]} }

// measureTCP measures TCP between two containers on each network of sides
// (a tcpperf pair per network, pinned to perfCPU); see measurePairs. The
// containers are left running; their names start with "perf-" and the
// side's short name.
func (b *bench) measureTCP(ctx context.Context, d *lab.DockerHost, sides [2]side) (tcpResult, error) {
	pairs := make([]perfPair, len(sides))
	for k, s := range sides {
		var err error
		if pairs[k], err = b.startPerfPair(ctx, d, d, s); err != nil {
			return tcpResult{}, err
		}
	}
	return b.measurePairs(ctx, sides[0].network+", "+sides[1].network, pairs)
}

// measurePairs measures bulk throughput (tcpperf stream) and
// request/response round trips (tcpperf rr) on every pair, in interleaved
// runs (order), after a warm-up stream on each; what names the pairs in
// the log.
func (b *bench) measurePairs(ctx context.Context, what string, pairs []perfPair) (tcpResult, error) {
	n := len(pairs)
	r := tcpResult{gbps: make([][]float64, n), rtt: make([][]float64, n), rtt99: make([][]float64, n)}
	for _, k := range order(0, n) {
		if _, err := perfRun(ctx, pairs[k], "stream", "1"); err != nil {
			return r, err
		}
	}
	secs := strconv.Itoa(b.p.streamSeconds)
	b.logf("throughput (%s): %d runs of %ss per path", what, b.p.streamRuns, secs)
	for i := range b.p.streamRuns {
		for _, k := range order(i, n) {
			v, err := perfRun(ctx, pairs[k], "stream", secs)
			if err != nil {
				return r, err
			}
			r.gbps[k] = append(r.gbps[k], v["bits_per_second"]/1e9)
		}
	}
	b.logf("round trips (%s): %d runs of %d per path", what, b.p.streamRuns, b.p.rrCount)
	for i := range b.p.streamRuns {
		for _, k := range order(i, n) {
			v, err := perfRun(ctx, pairs[k], "rr", strconv.Itoa(b.p.rrCount))
			if err != nil {
				return r, err
			}
			r.rtt[k] = append(r.rtt[k], v["p50_us"])
			r.rtt99[k] = append(r.rtt99[k], v["p99_us"])
		}
	}
	return r, nil
}

// tcpNotes describes a tcpResult of two sides; title starts each note (e.g.
// "TCP" gives "TCP throughput: ..." and "TCP round trip: ...").
func (b *bench) tcpNotes(title string, r tcpResult) []string {
	return []string{
		fmt.Sprintf("%s throughput: %s of %ds per side, interleaved, one connection, after a 1 s warm-up; "+
			"client and server pinned to CPU %s on both sides; median of the per-run weft/built-in ratios %.3f; Gbit/s per run: weft %s; built-in %s.",
			title, plural(b.p.streamRuns, "run"), b.p.streamSeconds, perfCPU(), pairedRatio(of(r.gbps, 0, 1)), fmtList(r.gbps[0], "%.2f"), fmtList(r.gbps[1], "%.2f")),
		fmt.Sprintf("%s round trip: median of %s, each the p50 of %d one-byte ping-pongs on one connection; median of the per-run ratios %.3f; µs per run: weft %s; built-in %s.",
			title, plural(b.p.streamRuns, "run"), b.p.rrCount, pairedRatio(of(r.rtt, 0, 1)), fmtList(r.rtt[0], "%.0f"), fmtList(r.rtt[1], "%.0f")),
	}
}

// fmtGbps formats a throughput in Gbit/s.
func fmtGbps(v float64) string { return fmt.Sprintf("%.2f Gbit/s", v) }

// fmtMicros formats a time in µs.
func fmtMicros(v float64) string { return fmt.Sprintf("%.0f µs", v) }

// startPerfPair runs a tcpperf client container on cliHost and a server
// container on srvHost (the same host, or two hosts of a multi-host
// network), both on s's network (tcpperf is copied into the created
// containers before they start), and waits until the server answers.
func (b *bench) startPerfPair(ctx context.Context, cliHost, srvHost *lab.DockerHost, s side) (perfPair, error) {
	srv, cli := "perf-"+s.short+"-srv", "perf-"+s.short+"-cli"
	for _, c := range []struct {
		host *lab.DockerHost
		name string
		cmd  []string
	}{
		{srvHost, srv, []string{"/tcpperf", "serve", perfPort}},
		{cliHost, cli, []string{"sleep", "3600"}},
	} {
		args := []string{"create", "--stop-timeout", "1", "--name", c.name, "--network", s.network, "--cpuset-cpus", perfCPU()}
		args = append(append(args, lab.Image), c.cmd...)
		if _, err := c.host.Docker(ctx, args...); err != nil {
			return perfPair{}, err
		}
		if _, err := c.host.Docker(ctx, "cp", b.tcpperf, c.name+":/tcpperf"); err != nil {
			return perfPair{}, err
		}
		if _, err := c.host.Docker(ctx, "start", c.name); err != nil {
			return perfPair{}, err
		}
	}
	ip, err := containerIP(ctx, srvHost, srv, s.network)
	if err != nil {
		return perfPair{}, err
	}
	p := perfPair{client: inContainer(cliHost, cli), target: ip + ":" + perfPort}
	return p, waitPerf(ctx, p, s.label)
}

// startBarePair runs a tcpperf server directly in srv (no container: the
// host's own namespace, its lab0 address) and returns the pair whose client
// runs directly in cli; both pinned to perfCPU with taskset, as the
// containers are with --cpuset-cpus. The caller stops the server.
func (b *bench) startBarePair(ctx context.Context, cli, srv *lab.Host) (perfPair, *lab.Proc, error) {
	server, err := srv.Start("taskset", "-c", perfCPU(), b.tcpperf, "serve", perfPort)
	if err != nil {
		return perfPair{}, nil, err
	}
	p := perfPair{
		target: srv.Addr.String() + ":" + perfPort,
		client: func(ctx context.Context, args ...string) (string, error) {
			return cli.Run(ctx, append([]string{"taskset", "-c", perfCPU(), b.tcpperf}, args...)...)
		},
	}
	if err := waitPerf(ctx, p, "bare hosts"); err != nil {
		_ = server.Stop()
		return perfPair{}, nil, fmt.Errorf("%w; server output: %s", err, server.Output())
	}
	return p, server, nil
}

// waitPerf waits up to 15 s until the pair's server answers a round trip.
func waitPerf(ctx context.Context, p perfPair, label string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := perfRun(ctx, p, "rr", "1")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: tcpperf server at %s does not answer: %w", label, p.target, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// perfCPU is the one CPU both tcpperf containers are pinned to (docker
// --cpuset-cpus), on both sides: the last one, away from CPU 0's interrupts.
// Left to the scheduler, client and server share a CPU for some runs and
// not for others; on the 2-vCPU lab VM (Firecracker, idle vCPUs halt) every
// cross-CPU wake-up costs tens to hundreds of µs, so round trips were
// bimodal (about 30 or 90 µs) and throughput swung by a third. On one CPU
// the result follows the per-packet cost of the datapath, which is what
// differs between the two drivers.
func perfCPU() string { return strconv.Itoa(runtime.NumCPU() - 1) }

// perfRun runs one tcpperf client command of the pair and parses its
// output.
func perfRun(ctx context.Context, p perfPair, mode, arg string) (map[string]float64, error) {
	out, err := p.client(ctx, mode, p.target, arg)
	if err != nil {
		return nil, err
	}
	return parsePerf(mode, out)
}

// parsePerf parses tcpperf's key=value output; other words are ignored.
func parsePerf(mode, out string) (map[string]float64, error) {
	v := map[string]float64{}
	for _, f := range strings.Fields(out) {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("tcpperf %s: bad output %q", mode, out)
		}
		v[key] = x
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("tcpperf %s: no results in %q", mode, out)
	}
	return v, nil
}
