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

// perfPair is a tcpperf server and client container on one network.
type perfPair struct {
	client string // container name
	target string // server IP:port
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

// tcpResult holds the runs of measureTCP per side (index as the sides).
type tcpResult struct {
	gbps [2][]float64 // stream throughput per run, Gbit/s
	rtt  [2][]float64 // p50 round trip per run, µs
}

// measureTCP measures TCP between two containers on each network of sides
// (a tcpperf pair per network, pinned to perfCPU): bulk throughput (tcpperf
// stream) and request/response round trips (tcpperf rr), interleaved runs.
// The containers are left running; their names start with "perf-" and the
// side's short name.
func (b *bench) measureTCP(ctx context.Context, d *lab.DockerHost, sides [2]side) (tcpResult, error) {
	var r tcpResult
	var pairs [2]perfPair
	for k, s := range sides {
		var err error
		if pairs[k], err = b.startPerfPair(ctx, d, s); err != nil {
			return r, err
		}
	}
	// Warm-up: one short stream per side.
	for _, k := range order(0) {
		if _, err := perfRun(ctx, d, pairs[k], "stream", "1"); err != nil {
			return r, err
		}
	}
	secs := strconv.Itoa(b.p.streamSeconds)
	b.logf("throughput (%s, %s): %d runs of %ss per side", sides[0].network, sides[1].network, b.p.streamRuns, secs)
	for i := range b.p.streamRuns {
		for _, k := range order(i) {
			v, err := perfRun(ctx, d, pairs[k], "stream", secs)
			if err != nil {
				return r, err
			}
			r.gbps[k] = append(r.gbps[k], v["bits_per_second"]/1e9)
		}
	}
	b.logf("round trips (%s, %s): %d runs of %d per side", sides[0].network, sides[1].network, b.p.streamRuns, b.p.rrCount)
	for i := range b.p.streamRuns {
		for _, k := range order(i) {
			v, err := perfRun(ctx, d, pairs[k], "rr", strconv.Itoa(b.p.rrCount))
			if err != nil {
				return r, err
			}
			r.rtt[k] = append(r.rtt[k], v["p50_us"])
		}
	}
	return r, nil
}

// tcpNotes describes a tcpResult; title starts each note (e.g. "TCP" gives
// "TCP throughput: ..." and "TCP round trip: ...").
func (b *bench) tcpNotes(title string, r tcpResult) []string {
	return []string{
		fmt.Sprintf("%s throughput: %s of %ds per side, interleaved, one connection, after a 1 s warm-up; "+
			"client and server pinned to CPU %s on both sides; median of the per-run weft/built-in ratios %.3f; Gbit/s per run: weft %s; built-in %s.",
			title, plural(b.p.streamRuns, "run"), b.p.streamSeconds, perfCPU(), pairedRatio(r.gbps), fmtList(r.gbps[0], "%.2f"), fmtList(r.gbps[1], "%.2f")),
		fmt.Sprintf("%s round trip: median of %s, each the p50 of %d one-byte ping-pongs on one connection; median of the per-run ratios %.3f; µs per run: weft %s; built-in %s.",
			title, plural(b.p.streamRuns, "run"), b.p.rrCount, pairedRatio(r.rtt), fmtList(r.rtt[0], "%.0f"), fmtList(r.rtt[1], "%.0f")),
	}
}

// fmtGbps formats a throughput in Gbit/s.
func fmtGbps(v float64) string { return fmt.Sprintf("%.2f Gbit/s", v) }

// fmtMicros formats a time in µs.
func fmtMicros(v float64) string { return fmt.Sprintf("%.0f µs", v) }

// startPerfPair runs a tcpperf server and a client container on s's
// network (tcpperf is copied into the created containers before they start)
// and waits until the server answers.
func (b *bench) startPerfPair(ctx context.Context, d *lab.DockerHost, s side) (perfPair, error) {
	srv, cli := "perf-"+s.short+"-srv", "perf-"+s.short+"-cli"
	for _, c := range []struct {
		name string
		cmd  []string
	}{
		{srv, []string{"/tcpperf", "serve", perfPort}},
		{cli, []string{"sleep", "3600"}},
	} {
		args := []string{"create", "--stop-timeout", "1", "--name", c.name, "--network", s.network, "--cpuset-cpus", perfCPU()}
		args = append(append(args, lab.Image), c.cmd...)
		if _, err := d.Docker(ctx, args...); err != nil {
			return perfPair{}, err
		}
		if _, err := d.Docker(ctx, "cp", b.tcpperf, c.name+":/tcpperf"); err != nil {
			return perfPair{}, err
		}
		if _, err := d.Docker(ctx, "start", c.name); err != nil {
			return perfPair{}, err
		}
	}
	ip, err := containerIP(ctx, d, srv, s.network)
	if err != nil {
		return perfPair{}, err
	}
	p := perfPair{client: cli, target: ip + ":" + perfPort}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := perfRun(ctx, d, p, "rr", "1")
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return perfPair{}, fmt.Errorf("%s: tcpperf server at %s does not answer: %w", s.label, p.target, err)
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

// perfRun runs one tcpperf client command in the pair's client container
// and parses its key=value output.
func perfRun(ctx context.Context, d *lab.DockerHost, p perfPair, mode, arg string) (map[string]float64, error) {
	out, err := d.Docker(ctx, "exec", p.client, "/tcpperf", mode, p.target, arg)
	if err != nil {
		return nil, err
	}
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
