package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// phase is one benchmark and, once run, its outcome.
type phase struct {
	name   string // for -only
	title  string // names the benchmark in logs and error rows
	docker bool   // needs the Docker host (runs last, see runOrder)
	run    func(context.Context) (section, error)
	sec    section
	err    error
}

// phaseNames lists the -only names in table order.
var phaseNames = []string{"start", "tcp", "macvlan", "overlay", "attach", "ipam", "memory"}

// phases returns the benchmarks selected by only (comma-separated names;
// empty means all), in table order.
func (b *bench) phases(only string) ([]*phase, error) {
	all := []*phase{
		{name: "start", title: "Container start", docker: true, run: b.containerStart},
		{name: "tcp", title: "TCP throughput and round trip", docker: true, run: b.throughput},
		{name: "macvlan", title: "macvlan start, TCP throughput and round trip", docker: true, run: b.macvlan},
		{name: "overlay", title: "Overlay TCP across hosts and swarm join", docker: true, run: b.overlay},
		{name: "attach", title: "Plugin CreateEndpoint+Join", run: b.attachLatency},
		{name: "ipam", title: "IPAM fill", run: b.ipamFill},
		{name: "memory", title: "weft RSS", run: b.memory},
	}
	if only == "" {
		return all, nil
	}
	var out []*phase
	for _, n := range strings.Split(only, ",") {
		i := slices.Index(phaseNames, strings.TrimSpace(n))
		if i < 0 {
			return nil, fmt.Errorf("-only: unknown benchmark %q (use %s)", n, strings.Join(phaseNames, ", "))
		}
		if !slices.Contains(out, all[i]) {
			out = append(out, all[i])
		}
	}
	slices.SortFunc(out, func(x, y *phase) int {
		return slices.Index(phaseNames, x.name) - slices.Index(phaseNames, y.name)
	})
	return out, nil
}

// runOrder puts the benchmarks that need no dockerd first, so they run on
// a quieter machine; otherwise the table order is kept.
func runOrder(ps []*phase) []*phase {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(x, y *phase) int {
		switch {
		case x.docker == y.docker:
			return 0
		case x.docker:
			return 1
		default:
			return -1
		}
	})
	return out
}
