package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/weftnet/weft/internal/lab"
)

// The paths the overlay benchmark measures, as indexed in its tcpResult.
const (
	pathWeft    = iota // weft vxlan network
	pathOverlay        // Docker's built-in overlay network
	pathBare           // the two hosts themselves, lab0 to lab0
)

// overlaySides are the multi-host networks compared by the overlay
// benchmark, both made on the swarm manager and attachable (so plain
// `docker run` containers join them on any node): weft's vxlan mode finding
// its peers through the swarm, as the README shows it, and Docker's
// built-in overlay. Both give containers an MTU of 1450 by default (lab0's
// 1500 minus VXLAN's 50); the phase reports what it found.
var overlaySides = [2]side{
	{label: "weft", short: "ov-weft", network: "bench-ov-weft",
		create: []string{"-d", pluginName, "--ipam-driver", pluginName, "--attachable", "-o", "mode=vxlan", "--subnet", "10.93.0.0/24"}},
	{label: "built-in", short: "ov-builtin", network: "bench-ov-builtin",
		create: []string{"-d", "overlay", "--attachable", "--subnet", "10.94.0.0/24"}},
}

// Goals of issue 3: weft at least equal to the built-in overlay, and within
// 10 % of the bare underlay (ratios are weft/other).
var (
	overlayTputGoal = atLeast(1, "≥ 1.00")
	bareTputGoal    = atLeast(0.9, "≥ 0.90")
	overlayRTTGoal  = atMost(1, "≤ 1.00")
	bareRTTGoal     = atMost(1.1, "≤ 1.10")
)

// overlay compares TCP between containers on two lab hosts, a manager (the
// clients) and a worker (the servers) of one swarm: on a weft vxlan
// network, on Docker's built-in overlay network, and between the bare
// hosts (the limit both tunnels add to); all three interleaved
// (measurePairs). Then it times how soon a new node's containers are
// reachable after it joins the swarm (joinTimes).
func (b *bench) overlay(ctx context.Context) (section, error) {
	b.logf("overlay: starting a two-node swarm (ov1 manager, ov2 worker)")
	var hosts [2]*lab.DockerHost
	for i := range hosts {
		var err error
		if hosts[i], err = b.newSwarmHost(ctx, fmt.Sprintf("ov%d", i+1)); err != nil {
			return section{}, err
		}
	}
	mgr, wkr := hosts[0], hosts[1]
	sw, err := lab.InitSwarm(ctx, mgr)
	if err != nil {
		return section{}, err
	}
	if err := sw.Join(ctx, wkr); err != nil {
		return section{}, err
	}
	if err := createNetworks(ctx, mgr, overlaySides); err != nil {
		return section{}, err
	}
	pairs := make([]perfPair, 3)
	for k, s := range overlaySides {
		if pairs[k], err = b.startPerfPair(ctx, mgr, wkr, s); err != nil {
			return section{}, err
		}
	}
	var server *lab.Proc
	if pairs[pathBare], server, err = b.startBarePair(ctx, mgr.Host, wkr.Host); err != nil {
		return section{}, err
	}
	defer server.Stop()
	mtus, err := pathMTUs(ctx, mgr)
	if err != nil {
		return section{}, err
	}
	r, err := b.measurePairs(ctx, "weft vxlan, built-in overlay, bare hosts", pairs)
	if err != nil {
		return section{}, err
	}
	const vsBare = " (built-in column: bare hosts)"
	sec := section{
		rows: []row{
			pairedRow("overlay: TCP throughput across 2 hosts", r.gbps[pathWeft], r.gbps[pathOverlay], fmtGbps, overlayTputGoal),
			pairedRow("overlay: TCP throughput across 2 hosts"+vsBare, r.gbps[pathWeft], r.gbps[pathBare], fmtGbps, bareTputGoal),
			pairedRow("overlay: TCP round trip p50", r.rtt[pathWeft], r.rtt[pathOverlay], fmtMicros, overlayRTTGoal),
			pairedRow("overlay: TCP round trip p50"+vsBare, r.rtt[pathWeft], r.rtt[pathBare], fmtMicros, bareRTTGoal),
			pairedRow("overlay: TCP round trip p99", r.rtt99[pathWeft], r.rtt99[pathOverlay], fmtMicros, nil),
			pairedRow("overlay: TCP round trip p99"+vsBare, r.rtt99[pathWeft], r.rtt99[pathBare], fmtMicros, nil),
		},
		notes: b.overlayNotes(r, mtus),
	}
	// A join dockerd fails (see docs/BENCHMARKS.md) loses the join row,
	// not the measurements above.
	joins, err := b.joinTimes(ctx, sw)
	if err != nil {
		sec.notes = append(sec.notes, "overlay join: not measured: "+err.Error())
		return sec, nil
	}
	reach := joinReach(joins)
	sec.rows = append(sec.rows, pairedRow("overlay: new node's container reachable, from `swarm join`", reach[0], reach[1], fmtLongMS, nil))
	sec.notes = append(sec.notes, b.joinNote(joins))
	return sec, nil
}

// pathMTUs reads the MTU of each path as the clients on the manager see it:
// eth0 of the weft and built-in clients, and lab0 of the host itself.
func pathMTUs(ctx context.Context, mgr *lab.DockerHost) ([3]string, error) {
	var mtus [3]string
	for k, s := range overlaySides {
		out, err := mgr.Docker(ctx, "exec", "perf-"+s.short+"-cli", "cat", "/sys/class/net/eth0/mtu")
		if err != nil {
			return mtus, err
		}
		mtus[k] = out
	}
	out, err := mgr.Run(ctx, "cat", "/sys/class/net/"+lab.HostLink+"/mtu")
	mtus[pathBare] = strings.TrimSpace(out)
	return mtus, err
}

// overlayNotes describes the throughput and round-trip runs of overlay.
func (b *bench) overlayNotes(r tcpResult, mtus [3]string) []string {
	perPath := func(runs [][]float64, format string) string {
		return fmt.Sprintf("weft %s; built-in overlay %s; bare %s",
			fmtList(runs[pathWeft], format), fmtList(runs[pathOverlay], format), fmtList(runs[pathBare], format))
	}
	notes := []string{
		fmt.Sprintf("overlay: Docker hosts ov1 (swarm manager, clients) and ov2 (worker, servers) on the lab switch; weft installed with SCOPE=global; "+
			"a weft vxlan network (-o mode=vxlan, peers from the swarm) and a built-in overlay network, both attachable; "+
			"bare hosts: tcpperf run directly in the two hosts' namespaces, lab0 to lab0 (no container, no tunnel). "+
			"MTU: weft eth0 %s, built-in eth0 %s, lab0 %s.", mtus[pathWeft], mtus[pathOverlay], mtus[pathBare]),
		fmt.Sprintf("overlay TCP throughput: %s of %ds per path, the three paths interleaved, one connection, after a 1 s warm-up; "+
			"client and server pinned to CPU %s on every path; median of the per-run ratios weft/built-in %.3f, weft/bare %.3f (built-in/bare %.3f); Gbit/s per run: %s.",
			plural(b.p.streamRuns, "run"), b.p.streamSeconds, perfCPU(),
			pairedRatio(of(r.gbps, pathWeft, pathOverlay)), pairedRatio(of(r.gbps, pathWeft, pathBare)),
			pairedRatio(of(r.gbps, pathOverlay, pathBare)), perPath(r.gbps, "%.2f")),
		fmt.Sprintf("overlay TCP round trip: %s per path, each %d one-byte ping-pongs on one connection; the rows give the median over runs of each run's p50 and p99; "+
			"p50 ratios weft/built-in %.3f, weft/bare %.3f (built-in/bare %.3f); p50 µs per run: %s; p99 µs per run: %s.",
			plural(b.p.streamRuns, "run"), b.p.rrCount,
			pairedRatio(of(r.rtt, pathWeft, pathOverlay)), pairedRatio(of(r.rtt, pathWeft, pathBare)), pairedRatio(of(r.rtt, pathOverlay, pathBare)),
			perPath(r.rtt, "%.0f"), perPath(r.rtt99, "%.0f")),
	}
	if mtus[pathWeft] != mtus[pathOverlay] {
		notes = append(notes, fmt.Sprintf("overlay: WARNING: the container MTUs differ (weft %s, built-in %s): the comparison is not like for like.",
			mtus[pathWeft], mtus[pathOverlay]))
	}
	return notes
}
