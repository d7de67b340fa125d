package main

import (
	"context"
	"fmt"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// containerStart times `docker run -d` (the CLI returns once the container
// is running) on a weft network and on a built-in bridge network,
// interleaved, after a warm-up. Each container is removed before the next
// run, outside the timed part.
func (b *bench) containerStart(ctx context.Context) (section, error) {
	d, err := b.dockerHost(ctx)
	if err != nil {
		return section{}, err
	}
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
	b.logf("container start: %d warm-up and %d measured runs per side", b.p.startWarmup, b.p.startRuns)
	for i := range b.p.startWarmup {
		for _, k := range order(i) {
			if _, err := runOnce(sides[k], -1-i); err != nil {
				return section{}, err
			}
		}
	}
	var samples [2][]time.Duration
	for i := range b.p.startRuns {
		for _, k := range order(i) {
			took, err := runOnce(sides[k], i)
			if err != nil {
				return section{}, err
			}
			samples[k] = append(samples[k], took)
		}
	}
	w, bi := millis(samples[0]), millis(samples[1])
	paired := pairedRatio([2][]float64{w, bi})
	return section{
		rows: []row{
			pairedRow("Container start (`docker run -d`), median", w, bi, fmtMS, atMost(1.05, "≤ 1.05")),
			compareRow("Container start (`docker run -d`), p90", quantile(w, 0.9), quantile(bi, 0.9), fmtMS, nil),
		},
		notes: []string{
			fmt.Sprintf("Container start: %s per side after %s, alternating weft and built-in; "+
				"wall time of the docker CLI (it returns once the container runs), including the CLI's own start-up; "+
				"median of the per-run weft/built-in ratios %.3f. Range: weft %s to %s, built-in %s to %s.",
				plural(b.p.startRuns, "run"), plural(b.p.startWarmup, "warm-up run"), paired,
				fmtMS(quantile(w, 0)), fmtMS(quantile(w, 1)), fmtMS(quantile(bi, 0)), fmtMS(quantile(bi, 1))),
		},
	}, nil
}
