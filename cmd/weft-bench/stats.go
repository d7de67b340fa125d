package main

import (
	"fmt"
	"slices"
	"time"
)

// quantile returns the q-quantile (0 <= q <= 1) of xs, interpolating
// linearly between the two nearest ranks (so the median of an even number of
// samples is the mean of the middle two). xs is not modified.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(lo)
	return s[lo] + frac*(s[lo+1]-s[lo])
}

// median is the 0.5 quantile.
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// pairedRatio is the median of weft/built-in over runs measured back to back
// (run i of each side): unlike the ratio of the medians, it cancels slow
// drifts of the machine.
func pairedRatio(v [2][]float64) float64 {
	var r []float64
	for i := range min(len(v[0]), len(v[1])) {
		if v[1][i] > 0 {
			r = append(r, v[0][i]/v[1][i])
		}
	}
	return median(r)
}

// millis converts durations to milliseconds.
func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Nanoseconds()) / 1e6
	}
	return out
}

// fmtMS formats milliseconds with a precision that suits the magnitude.
func fmtMS(ms float64) string {
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

// fmtDuration formats a duration for the table (ms below a second, else s).
func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return fmtMS(float64(d.Nanoseconds()) / 1e6)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// fmtLongMS formats milliseconds as fmtDuration does: in seconds from 1 s.
func fmtLongMS(ms float64) string { return fmtDuration(time.Duration(ms * 1e6)) }

// fmtList formats samples compactly, in the order measured, for the notes.
func fmtList(xs []float64, format string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf(format, x)
	}
	return out
}

// fmtCount formats an integer with thousands separators (65,534).
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// plural returns "n word" with an "s" unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
