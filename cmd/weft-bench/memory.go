package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// memory measures the resident memory of a fresh weft daemon at start and
// after it holds many networks (one /24 each) with endpoints, all created
// through the protocol as dockerd would.
func (b *bench) memory(ctx context.Context) (section, error) {
	h, err := b.protoHost()
	if err != nil {
		return section{}, err
	}
	w, err := startWeft(ctx, h, b.weftBin, filepath.Join(b.lab.Dir(), "weft-memory"))
	if err != nil {
		return section{}, err
	}
	defer func() { _ = w.stop() }() // an early return's error says more; the normal path checks stop
	rssStart, _, err := w.memory()
	if err != nil {
		return section{}, err
	}
	nNets, each := b.p.memNetworks, b.p.memEndpoints
	b.logf("memory: %d networks x %d endpoints", nNets, each)
	c := w.client
	nets := make([]*benchNetwork, nNets)
	atts := make([]*attachment, nNets*each)
	start := time.Now()
	err = forEach(ctx, nNets, 4, func(i int) error {
		n, err := c.createNetwork(ctx, fmt.Sprintf("10.150.%d.0/24", i))
		if err != nil {
			return err
		}
		nets[i] = n
		for j := range each {
			a, err := c.newAttachment(ctx, n)
			if err != nil {
				return err
			}
			if _, _, err := c.attach(ctx, a); err != nil {
				return err
			}
			atts[i*each+j] = a
		}
		return nil
	})
	if err != nil {
		return section{}, err
	}
	took := time.Since(start)
	rss, peak, err := w.memory()
	if err != nil {
		return section{}, err
	}
	what := fmt.Sprintf("%s networks, %s endpoints", fmtCount(nNets), fmtCount(nNets*each))
	sec := section{
		rows: []row{
			valueRow("weft RSS at start (no networks)", fmtBytes(rssStart), nil, 0),
			valueRow("weft RSS with "+what, fmtBytes(rss), nil, 0),
		},
		notes: []string{fmt.Sprintf(
			"Memory: VmRSS of the weft process from /proc/PID/status; peak (VmHWM) %s. Creating the %s took %s (4 callers).",
			fmtBytes(peak), what, fmtDuration(took))},
	}
	b.logf("memory: cleaning up")
	if err := forEach(ctx, len(atts), 8, func(i int) error { return c.detach(ctx, atts[i]) }); err != nil {
		return section{}, err
	}
	if err := forEach(ctx, len(nets), 4, func(i int) error { return c.deleteNetwork(ctx, nets[i]) }); err != nil {
		return section{}, err
	}
	if err := w.stop(); err != nil {
		return section{}, err
	}
	return sec, nil
}
