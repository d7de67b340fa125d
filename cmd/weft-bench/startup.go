package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// noNetwork is the floor of the start benchmark: a container with
// `--network none` pays for everything in `docker run` but networking.
var noNetwork = side{label: "none", short: "none", network: "none"}

// containerStart compares container start on a weft bridge network and a
// built-in bridge network (bridgeSides), with `--network none` interleaved
// as the floor both stand on; see startTimes.
func (b *bench) containerStart(ctx context.Context) (section, error) {
	d, err := b.dockerHost(ctx)
	if err != nil {
		return section{}, err
	}
	ms, err := b.startTimes(ctx, d, append(bridgeSides[:], noNetwork))
	if err != nil {
		return section{}, err
	}
	w, bi, none := ms[0], ms[1], ms[2]
	above := [2][]float64{minus(w, none), minus(bi, none)}
	return section{
		rows: []row{
			pairedRow("Container start (`docker run -d`), median", w, bi, fmtMS, startGoal),
			compareRow("Container start (`docker run -d`), p90", quantile(w, 0.9), quantile(bi, 0.9), fmtMS, nil),
			valueRow("Container start with `--network none` (the floor), median", fmtMS(median(none)), nil, 0),
			compareRow("Container start above the floor, median of per-run differences",
				median(above[0]), median(above[1]), fmtMS, overheadGoal),
		},
		notes: []string{b.startNote("Container start", [2][]float64{w, bi}),
			fmt.Sprintf("Above the floor: each run's start time minus that of the `--network none` container started "+
				"right beside it (same round of the interleaving); weft %s, built-in %s (medians). "+
				"The goal is that weft costs at most half of what Docker's bridge costs above the floor.",
				fmtMS(median(above[0])), fmtMS(median(above[1])))},
	}, nil
}

// startGoal applies to the paired weft/built-in ratio of start times.
var startGoal = atMost(1.05, "≤ 1.05")

// overheadGoal applies to weft's start cost above the floor over Docker
// bridge's.
var overheadGoal = atMost(0.5, "≤ 0.5")

// minus returns a[i]-b[i] for each run both have.
func minus(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] - b[i]
	}
	return out
}

// startTimes times `docker run -d` (the CLI returns once the container is
// running) on the networks of sides, interleaved in rotating order, after a
// warm-up, and returns the milliseconds of the measured runs per side
// (index as sides). Each container is removed before the next run, outside
// the timed part.
func (b *bench) startTimes(ctx context.Context, d *lab.DockerHost, sides []side) ([][]float64, error) {
	runOnce := func(s side, i int) (time.Duration, error) {
		name := fmt.Sprintf("start-%s-%d", s.short, i)
		t0 := time.Now()
		_, err := d.Docker(ctx, "run", "-d", "--stop-timeout", "1", "--name", name, "--network", s.network, lab.Image, "sleep", "3600")
		took := time.Since(t0)
		if err != nil {
			return 0, err
		}
		_, err = d.Docker(ctx, "rm", "-f", name)
		return took, err
	}
	var names []string
	for _, s := range sides {
		names = append(names, s.network)
	}
	b.logf("container start (%s): %d warm-up and %d measured runs per side",
		strings.Join(names, ", "), b.p.startWarmup, b.p.startRuns)
	for i := range b.p.startWarmup {
		for _, k := range order(i, len(sides)) {
			if _, err := runOnce(sides[k], -1-i); err != nil {
				return nil, err
			}
		}
	}
	samples := make([][]time.Duration, len(sides))
	for i := range b.p.startRuns {
		for _, k := range order(i, len(sides)) {
			took, err := runOnce(sides[k], i)
			if err != nil {
				return nil, err
			}
			samples[k] = append(samples[k], took)
		}
	}
	out := make([][]float64, len(sides))
	for k := range samples {
		out[k] = millis(samples[k])
	}
	return out, nil
}

// startNote describes start times measured by startTimes; title names
// the measurement (e.g. "Container start").
func (b *bench) startNote(title string, ms [2][]float64) string {
	w, bi := ms[0], ms[1]
	return fmt.Sprintf("%s: %s per side after %s, interleaved with the other sides in rotating order; "+
		"wall time of the docker CLI (it returns once the container runs), including the CLI's own start-up; "+
		"median of the per-run weft/built-in ratios %.3f. Range: weft %s to %s, built-in %s to %s.",
		title, plural(b.p.startRuns, "run"), plural(b.p.startWarmup, "warm-up run"), pairedRatio(ms),
		fmtMS(quantile(w, 0)), fmtMS(quantile(w, 1)), fmtMS(quantile(bi, 0)), fmtMS(quantile(bi, 1)))
}
