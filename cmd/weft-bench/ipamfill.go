package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/store"
)

// fillPrefix is the pool the in-memory fill uses.
var fillPrefix = netip.MustParsePrefix("10.0.0.0/16")

// ipamFill measures address allocation: the in-memory allocator filling a
// /16 (ipam.FillBenchmark), and the durable path, an ipam.Service on a real
// store filling a smaller pool one RequestAddress at a time.
func (b *bench) ipamFill(ctx context.Context) (section, error) {
	var runs []float64
	for range b.p.fillRepeats {
		d, n := ipam.FillBenchmark(fillPrefix)
		if want := 1<<(32-fillPrefix.Bits()) - 2; n != want {
			return section{}, fmt.Errorf("FillBenchmark(%s) handed out %d addresses, want %d", fillPrefix, n, want)
		}
		runs = append(runs, float64(d.Nanoseconds())/1e6)
	}
	mem := median(runs)
	hosts := 1<<(32-fillPrefix.Bits()) - 2
	sec := section{rows: []row{valueRow(
		fmt.Sprintf("IPAM fill of a %s (%s addresses), in memory", fillPrefix, fmtCount(hosts)),
		fmtMS(mem), atMost(1000, "< 1 s"), mem)}}

	per, n, err := b.durableFill(ctx)
	if err != nil {
		return section{}, err
	}
	sec.rows = append(sec.rows,
		valueRow(fmt.Sprintf("IPAM durable RequestAddress (fill of a /%d)", b.p.durableBits), fmtMS(float64(per.Nanoseconds())/1e6)+" / address", nil, 0),
		valueRow("IPAM durable fill of a /16, extrapolated", fmtDuration(per*time.Duration(hosts)), nil, 0))
	sec.notes = append(sec.notes,
		fmt.Sprintf("IPAM in memory: median of %s; allocator only, no store.", plural(len(runs), "fill")),
		fmt.Sprintf("IPAM durable: an ipam.Service on a bbolt store on disk handed out %s addresses one RequestAddress at a time; "+
			"each request is one fsync'd transaction, so this is mostly the disk's sync latency. The /16 figure is that cost times %s.",
			fmtCount(n), fmtCount(hosts)))
	return sec, nil
}

// durableFill fills a /durableBits pool through ipam.Service with a store in
// the lab directory and returns the mean cost per address.
func (b *bench) durableFill(ctx context.Context) (time.Duration, int, error) {
	st, err := store.Open(filepath.Join(b.lab.Dir(), "ipam-fill", "weft.db"))
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	svc, err := ipam.New(st, log)
	if err != nil {
		return 0, 0, err
	}
	prefix := netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), b.p.durableBits)
	pool, err := svc.RequestPool(ipam.PoolRequest{AddressSpace: ipam.LocalSpace, Pool: prefix.String()})
	if err != nil {
		return 0, 0, err
	}
	b.logf("ipam: durable fill of %s", prefix)
	n := 0
	start := time.Now()
	for {
		_, err := svc.RequestAddress(ipam.AddressRequest{PoolID: pool.ID})
		if errors.Is(err, ipam.ErrExhausted) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		n++
		if n%256 == 0 && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
	}
	took := time.Since(start)
	if want := 1<<(32-b.p.durableBits) - 2; n != want {
		return 0, 0, fmt.Errorf("durable fill of %s handed out %d addresses, want %d", prefix, n, want)
	}
	return took / time.Duration(n), n, nil
}
