// Package ifname holds the rules for Linux interface names, in one place for
// the option parser, the link builders and the firewall.
package ifname

import (
	"fmt"
	"strings"
)

// MaxLen is the kernel's limit for interface names (IFNAMSIZ-1).
const MaxLen = 15

// Check says whether the kernel would accept name for an interface: what a
// name of an existing link (a parent, an underlay) must satisfy.
func Check(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("an interface name cannot be empty")
	case len(name) > MaxLen:
		return fmt.Errorf("%q is %d characters long; Linux interface names have at most %d", name, len(name), MaxLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("%q contains a character not allowed in interface names ('/', ':' or white space)", name)
	}
	return nil
}

// CheckNew is the stricter rule for a link weft creates and names in
// firewall rules: letters, digits, '-', '_' and '.', not starting with '-'
// or '.'. The kernel would take more, but iptables reads a trailing '+' as a
// wildcard, a leading '-' as an option, and non-ASCII names vary by tool.
func CheckNew(name string) error {
	if err := Check(name); err != nil {
		return err
	}
	if name[0] == '-' || name[0] == '.' {
		return fmt.Errorf("%q starts with %q; use a name that starts with a letter or digit", name, name[0])
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q contains %q; use only letters, digits, '-', '_' and '.'", name, c)
		}
	}
	return nil
}
