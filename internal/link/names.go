// Package link holds weft's idempotent building blocks for kernel links:
// bridges, veth pairs and the interface names they use. All netlink calls go
// through internal/nl.
package link

import "github.com/weftnet/weft/internal/ifname"

// MaxNameLen is the kernel's limit for interface names (IFNAMSIZ-1).
const MaxNameLen = ifname.MaxLen

// Name prefixes of links weft creates (ifname.ForID). weft recognises its
// own links by their mark (internal/nl), never by these.
const (
	BridgePrefix        = "wf-" // bridges: wf-<12 chars of network id>
	HostVethPrefix      = "wh"  // bridge side of an endpoint's veth pair
	ContainerVethPrefix = "wc"  // container side, handed to dockerd as SrcName
)

// BridgeName is the default bridge name of a network.
func BridgeName(networkID string) string { return ifname.ForID(BridgePrefix, networkID) }

// VethNames returns the host and container side names of an endpoint's veth pair.
func VethNames(endpointID string) (host, container string) {
	return ifname.ForID(HostVethPrefix, endpointID), ifname.ForID(ContainerVethPrefix, endpointID)
}

// ValidateName checks that name can be a Linux interface name; the error
// says what is accepted.
func ValidateName(name string) error { return ifname.Check(name) }
