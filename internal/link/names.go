// Package link holds weft's idempotent building blocks for kernel links:
// bridges, veth pairs and the interface names they use. All netlink calls go
// through internal/nl.
package link

import (
	"fmt"
	"strings"
)

// MaxNameLen is the kernel's limit for interface names (IFNAMSIZ-1).
const MaxNameLen = 15

// Name prefixes of links weft creates. A link with one of these prefixes and
// no owner in weft's state is a leftover weft may delete.
const (
	BridgePrefix        = "wf-" // bridges: wf-<12 chars of network id>
	HostVethPrefix      = "wh"  // bridge side of an endpoint's veth pair
	ContainerVethPrefix = "wc"  // container side, handed to dockerd as SrcName
)

// BridgeName is the default bridge name of a network.
func BridgeName(networkID string) string { return BridgePrefix + shortID(networkID, 12) }

// VethNames returns the host and container side names of an endpoint's veth pair.
func VethNames(endpointID string) (host, container string) {
	id := shortID(endpointID, 12)
	return HostVethPrefix + id, ContainerVethPrefix + id
}

func shortID(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// ValidateName checks that name can be a Linux interface name; the error
// says what is accepted.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("an interface name cannot be empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is %d characters long; Linux interface names have at most %d", name, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("%q contains a character not allowed in interface names ('/', ':' or white space)", name)
	}
	return nil
}
