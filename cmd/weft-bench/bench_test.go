package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {1, 5}, {0.9, 4.6}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", xs, c.q, got, c.want)
		}
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", got)
	}
	if xs[0] != 5 {
		t.Errorf("quantile sorted its input: %v", xs)
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile(nil) = %v, want 0", got)
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int]string{7: "7", 999: "999", 1000: "1,000", 65534: "65,534", 1234567: "1,234,567"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q, want %q", n, got, want)
		}
	}
	if got := plural(1, "run"); got != "1 run" {
		t.Errorf("plural(1) = %q", got)
	}
	if got := plural(20, "run"); got != "20 runs" {
		t.Errorf("plural(20) = %q", got)
	}
}

func TestGoalsAndRows(t *testing.T) {
	ms := fmtMS
	r := compareRow("start", 105, 100, ms, atMost(1.05, "≤ 1.05"))
	if r.ratio != "1.050" || r.met != "yes" {
		t.Errorf("ratio 1.05 against ≤ 1.05: %+v", r)
	}
	r = compareRow("tput", 9.7, 10, ms, atLeast(0.98, "≥ 0.98"))
	if r.met != "no" {
		t.Errorf("ratio 0.97 against ≥ 0.98 must be missed: %+v", r)
	}
	r = compareRow("rtt", 40, 50, ms, nil)
	if r.met != "" || r.goal != "" {
		t.Errorf("a row without a goal has no verdict: %+v", r)
	}
	if v := valueRow("fill", "3 ms", atMost(1000, "< 1 s"), 3); v.met != "yes" {
		t.Errorf("fill row: %+v", v)
	}
}

func TestReportTable(t *testing.T) {
	var b strings.Builder
	rep := report{header: []string{"# h"}, rows: []row{
		compareRow("µ-metric", 1, 2, fmtMS, atMost(1.05, "≤ 1.05")),
		valueRow("other", "x", nil, 0),
	}, notes: []string{"n1"}}
	rep.write(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var table []string
	for _, l := range lines {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		}
	}
	if len(table) != 4 {
		t.Fatalf("want header, separator and 2 rows, got:\n%s", b.String())
	}
	width := len([]rune(table[0]))
	for _, l := range table {
		if len([]rune(l)) != width {
			t.Errorf("columns not aligned:\n%s", strings.Join(table, "\n"))
			break
		}
	}
	if !strings.Contains(table[3], "| —") || !strings.Contains(b.String(), "- n1") {
		t.Errorf("empty cells must print as — and notes as a list:\n%s", b.String())
	}
}

func TestForEach(t *testing.T) {
	var n atomic.Int64
	if err := forEach(context.Background(), 100, 8, func(int) error { n.Add(1); return nil }); err != nil || n.Load() != 100 {
		t.Fatalf("forEach ran %d calls, err %v", n.Load(), err)
	}
	boom := errors.New("boom")
	n.Store(0)
	// The other calls wait for the failing one and then take a moment:
	// with instant calls, the workers that did not get item 3 could run
	// all 1000 before the one that did is scheduled.
	failed := make(chan struct{})
	err := forEach(context.Background(), 1000, 4, func(i int) error {
		n.Add(1)
		if i == 3 {
			close(failed)
			return boom
		}
		<-failed
		time.Sleep(time.Millisecond)
		return nil
	})
	if !errors.Is(err, boom) || n.Load() > 100 {
		t.Errorf("forEach after a failure: err %v, %d calls (want the error and an early stop)", err, n.Load())
	}
}

func TestPhaseSelection(t *testing.T) {
	b := &bench{}
	all, err := b.phases("")
	if err != nil || len(all) != len(phaseNames) {
		t.Fatalf("phases(\"\") = %d phases, %v", len(all), err)
	}
	for i, p := range all {
		if p.name != phaseNames[i] {
			t.Errorf("phase %d is %q, phaseNames says %q", i, p.name, phaseNames[i])
		}
	}
	var names []string
	for _, p := range runOrder(all) {
		names = append(names, p.name)
	}
	if got := strings.Join(names, " "); got != "attach ipam memory start tcp macvlan overlay" {
		t.Errorf("run order %q: the benchmarks without dockerd must come first", got)
	}
	some, err := b.phases("memory, start")
	if err != nil || len(some) != 2 || some[0].name != "start" || some[1].name != "memory" {
		t.Errorf("phases(\"memory, start\") = %v, %v; want start, memory in table order", some, err)
	}
	if _, err := b.phases("nope"); err == nil {
		t.Error("an unknown benchmark name must be refused")
	}
}

func TestPairedRatio(t *testing.T) {
	v := [2][]float64{{10, 20, 30}, {10, 10, 10}}
	if got := pairedRatio(v); got != 2 {
		t.Errorf("pairedRatio = %v, want 2", got)
	}
}

func TestOrder(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{{0, 2, "[0 1]"}, {1, 2, "[1 0]"}, {2, 2, "[0 1]"}, {0, 3, "[0 1 2]"}, {1, 3, "[1 2 0]"}, {5, 3, "[2 0 1]"}} {
		if got := fmt.Sprint(order(c.i, c.n)); got != c.want {
			t.Errorf("order(%d, %d) = %s, want %s", c.i, c.n, got, c.want)
		}
	}
}

func TestParsePerf(t *testing.T) {
	v, err := parsePerf("rr", "p50_us=31.5 p90_us=40.0 p99_us=120.2\n")
	if err != nil || v["p50_us"] != 31.5 || v["p99_us"] != 120.2 {
		t.Errorf("parsePerf = %v, %v", v, err)
	}
	if _, err := parsePerf("rr", "tcpperf: connection refused"); err == nil {
		t.Error("output without key=value must be an error")
	}
	if _, err := parsePerf("stream", "bits_per_second=fast"); err == nil {
		t.Error("a value that is not a number must be an error")
	}
}

func TestJoinReach(t *testing.T) {
	js := [2][]joinSample{
		{{reach: 1500 * time.Millisecond}, {reach: time.Second}},
		{{reach: 2 * time.Second}, {reach: 3 * time.Second}},
	}
	got := joinReach(js)
	if fmt.Sprint(got) != "[[1500 1000] [2000 3000]]" {
		t.Errorf("joinReach = %v, want ms per side in sample order", got)
	}
	if fmtLongMS(1500) != "1.5 s" || fmtLongMS(250) != "250 ms" {
		t.Errorf("fmtLongMS: %q, %q", fmtLongMS(1500), fmtLongMS(250))
	}
}
