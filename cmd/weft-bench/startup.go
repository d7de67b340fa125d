package main

import (
	"context"
	"fmt"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// containerStart compares container start on a weft bridge network and a
// built-in bridge network (bridgeSides); see startTimes.
func (b *bench) containerStart(ctx context.Context) (section, error) {
	d, err := b.dockerHost(ctx)
	if err != nil {
		return section{}, err
	}
	ms, err := b.startTimes(ctx, d, bridgeSides)
	if err != nil {
		return section{}, err
	}
	w, bi := ms[0], ms[1]
	return section{
		rows: []row{
			pairedRow("Container start (`docker run -d`), median", w, bi, fmtMS, startGoal),
			compareRow("Container start (`docker run -d`), p90", quantile(w, 0.9), quantile(bi, 0.9), fmtMS, nil),
		},
		notes: []string{b.startNote("Container start", ms)},
	}, nil
}

// startGoal applies to the paired weft/built-in ratio of start times.
var startGoal = atMost(1.05, "≤ 1.05")

// startTimes times `docker run -d` (the CLI returns once the container is
// running) on the two networks of sides, interleaved, after a warm-up, and
// returns the milliseconds of the measured runs per side (index as sides).
// Each container is removed before the next run, outside the timed part.
func (b *bench) startTimes(ctx context.Context, d *lab.DockerHost, sides [2]side) ([2][]float64, error) {
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
	b.logf("container start (%s, %s): %d warm-up and %d measured runs per side",
		sides[0].network, sides[1].network, b.p.startWarmup, b.p.startRuns)
	for i := range b.p.startWarmup {
		for _, k := range order(i, 2) {
			if _, err := runOnce(sides[k], -1-i); err != nil {
				return [2][]float64{}, err
			}
		}
	}
	var samples [2][]time.Duration
	for i := range b.p.startRuns {
		for _, k := range order(i, 2) {
			took, err := runOnce(sides[k], i)
			if err != nil {
				return [2][]float64{}, err
			}
			samples[k] = append(samples[k], took)
		}
	}
	return [2][]float64{millis(samples[0]), millis(samples[1])}, nil
}

// startNote describes start times measured by startTimes; title names
// the measurement (e.g. "Container start").
func (b *bench) startNote(title string, ms [2][]float64) string {
	w, bi := ms[0], ms[1]
	return fmt.Sprintf("%s: %s per side after %s, alternating weft and built-in; "+
		"wall time of the docker CLI (it returns once the container runs), including the CLI's own start-up; "+
		"median of the per-run weft/built-in ratios %.3f. Range: weft %s to %s, built-in %s to %s.",
		title, plural(b.p.startRuns, "run"), plural(b.p.startWarmup, "warm-up run"), pairedRatio(ms),
		fmtMS(quantile(w, 0)), fmtMS(quantile(w, 1)), fmtMS(quantile(bi, 0)), fmtMS(quantile(bi, 1)))
}
