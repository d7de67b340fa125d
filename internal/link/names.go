// Package link holds weft's idempotent building blocks for kernel links:
// bridges, veth pairs and the interface names they use. All netlink calls go
// through internal/nl.
package link

import "github.com/weftnet/weft/internal/ifname"

// MaxNameLen is the kernel's limit for interface names (IFNAMSIZ-1).
const MaxNameLen = ifname.MaxLen

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
func ValidateName(name string) error { return ifname.Check(name) }
