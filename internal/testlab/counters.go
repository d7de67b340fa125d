package testlab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CountedPackets sums the packet counters of the rules in listing, the
// output of `iptables -S CHAIN -v` (each rule carries "-c PACKETS BYTES"),
// for which match holds.
func CountedPackets(listing string, match func(rule string) bool) (int, error) {
	total := 0
	for _, rule := range strings.Split(listing, "\n") {
		f := strings.Fields(rule)
		i := slices.Index(f, "-c")
		if i < 0 || i+1 >= len(f) || !match(rule) {
			continue
		}
		n, err := strconv.Atoi(f[i+1])
		if err != nil {
			return 0, fmt.Errorf("counter of %q: %w", rule, err)
		}
		total += n
	}
	return total, nil
}
