package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// attachRound is the outcome of one timed batch of attaches.
type attachRound struct {
	latencies []time.Duration // CreateEndpoint+Join, one per attach
	creates   []time.Duration // the CreateEndpoint part of each
	wall      time.Duration   // first call to last reply
}

// attachLatency measures the plugin's own cost of attaching a container,
// CreateEndpoint + Join, at 1 and at many concurrent callers. weft runs
// directly in a plain lab host; dockerd is not involved, so this is weft
// alone (HTTP on the unix socket, the store's fsync'd transactions, the
// veth pair on the bridge).
func (b *bench) attachLatency(ctx context.Context) (section, error) {
	h, err := b.protoHost()
	if err != nil {
		return section{}, err
	}
	w, err := startWeft(ctx, h, b.weftBin, filepath.Join(b.lab.Dir(), "weft-attach"))
	if err != nil {
		return section{}, err
	}
	defer func() { _ = w.stop() }() // an early return's error says more; the normal path checks stop
	c := w.client
	n, err := c.createNetwork(ctx, "10.100.0.0/16")
	if err != nil {
		return section{}, err
	}
	// Warm-up: the first calls pay for connections, page faults, the first
	// iptables and netlink use.
	if _, err := runAttachRound(ctx, c, n, 1, 5); err != nil {
		return section{}, err
	}
	var sec section
	for _, cfg := range []struct{ callers, each int }{{1, b.p.attachSerial}, {32, b.p.attachEach}} {
		b.logf("plugin attach: %d caller(s) x %d attaches", cfg.callers, cfg.each)
		r, err := runAttachRound(ctx, c, n, cfg.callers, cfg.each)
		if err != nil {
			return section{}, err
		}
		ms := millis(r.latencies)
		who := plural(cfg.callers, "caller")
		sec.rows = append(sec.rows,
			valueRow("Plugin CreateEndpoint+Join, "+who+": p50 / p99",
				fmtMS(quantile(ms, 0.5))+" / "+fmtMS(quantile(ms, 0.99)), nil, 0),
			valueRow("Plugin attach throughput, "+who,
				fmt.Sprintf("%.0f attaches/s", float64(len(ms))/r.wall.Seconds()), nil, 0))
		sec.notes = append(sec.notes, fmt.Sprintf(
			"Plugin attach, %s: %d attaches in %s; p50 of CreateEndpoint alone %s, of Join alone %s. "+
				"The IPAM RequestAddress of each attach is made beforehand and not timed.",
			who, len(ms), fmtDuration(r.wall), fmtMS(median(millis(r.creates))), fmtMS(median(joins(r)))))
	}
	if err := c.deleteNetwork(ctx, n); err != nil {
		return section{}, err
	}
	if err := w.stop(); err != nil {
		return section{}, err
	}
	return sec, nil
}

// joins returns the Join part of every attach of r, in milliseconds.
func joins(r attachRound) []float64 {
	out := millis(r.latencies)
	for i, c := range millis(r.creates) {
		out[i] -= c
	}
	return out
}

// runAttachRound allocates callers*each addresses on n, then starts
// `callers` goroutines that each attach `each` endpoints one after the
// other, timing every CreateEndpoint+Join; finally it detaches them all
// (untimed).
func runAttachRound(ctx context.Context, c *pluginClient, n *benchNetwork, callers, each int) (attachRound, error) {
	total := callers * each
	atts := make([]*attachment, total)
	err := forEach(ctx, total, 8, func(i int) (err error) {
		atts[i], err = c.newAttachment(ctx, n)
		return err
	})
	if err != nil {
		return attachRound{}, err
	}
	lat := make([]time.Duration, total)
	creates := make([]time.Duration, total)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * each; i < (g+1)*each && errs[g] == nil; i++ {
				create, join, err := c.attach(ctx, atts[i])
				lat[i], creates[i], errs[g] = create+join, create, err
			}
		}()
	}
	wg.Wait()
	r := attachRound{latencies: lat, creates: creates, wall: time.Since(start)}
	for _, err := range errs {
		if err != nil {
			return r, err
		}
	}
	return r, forEach(ctx, total, 8, func(i int) error { return c.detach(ctx, atts[i]) })
}
