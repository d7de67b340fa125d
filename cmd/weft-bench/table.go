package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// row is one line of the results table. Empty cells print as "—".
type row struct {
	metric  string
	weft    string
	builtin string
	ratio   string
	goal    string
	met     string
}

// goal is a target a measured value is checked against.
type goal struct {
	atMost bool // the value must be <= limit (else >= limit)
	limit  float64
	text   string // as shown in the table, e.g. "≤ 1.05"
}

// atMost is the goal value <= limit.
func atMost(limit float64, text string) *goal { return &goal{atMost: true, limit: limit, text: text} }

// atLeast is the goal value >= limit.
func atLeast(limit float64, text string) *goal { return &goal{limit: limit, text: text} }

// check answers the table's "met?" column for v.
func (g *goal) check(v float64) string {
	if g == nil {
		return ""
	}
	if (g.atMost && v <= g.limit) || (!g.atMost && v >= g.limit) {
		return "yes"
	}
	return "no"
}

func (g *goal) String() string {
	if g == nil {
		return ""
	}
	return g.text
}

// compareRow is a weft versus built-in measurement; the ratio is
// weft/built-in and g, if any, applies to it.
func compareRow(metric string, weft, builtin float64, format func(float64) string, g *goal) row {
	r := row{metric: metric, weft: format(weft), builtin: format(builtin), goal: g.String()}
	if builtin > 0 {
		ratio := weft / builtin
		r.ratio = fmt.Sprintf("%.3f", ratio)
		r.met = g.check(ratio)
	}
	return r
}

// pairedRow is compareRow for runs interleaved weft, built-in, weft, ...:
// the ratio judged is the median of the per-run ratios (pairedRatio), which
// cancels the machine's drift between runs that the ratio of the two medians
// keeps.
func pairedRow(metric string, weft, builtin []float64, format func(float64) string, g *goal) row {
	r := compareRow(metric, median(weft), median(builtin), format, g)
	ratio := pairedRatio([2][]float64{weft, builtin})
	r.ratio = fmt.Sprintf("%.3f", ratio)
	r.met = g.check(ratio)
	return r
}

// valueRow is a weft-only measurement; g, if any, applies to v.
func valueRow(metric, weft string, g *goal, v float64) row {
	return row{metric: metric, weft: weft, goal: g.String(), met: g.check(v)}
}

// section is what one benchmark contributes to the report.
type section struct {
	rows  []row
	notes []string
}

// report is the whole output: a header, the table and notes.
type report struct {
	header []string
	rows   []row
	notes  []string
}

// write prints the report as Markdown, with the table's columns padded so
// that it also reads well as plain text.
func (r *report) write(w io.Writer) {
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w, "- ratio: weft/built-in; for interleaved runs, the median of the per-run ratios")
	fmt.Fprintln(w)
	cells := [][]string{{"metric", "weft", "built-in", "ratio", "goal", "met?"}}
	for _, x := range r.rows {
		cells = append(cells, []string{x.metric, x.weft, x.builtin, x.ratio, x.goal, x.met})
	}
	widths := make([]int, len(cells[0]))
	for _, line := range cells {
		for i, c := range line {
			if c == "" {
				line[i] = "—"
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(line[i]))
		}
	}
	printLine := func(line []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range line {
			b.WriteString(" " + c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	printLine(cells[0])
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", n)
	}
	printLine(sep)
	for _, line := range cells[1:] {
		printLine(line)
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes:")
		for _, n := range r.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}
