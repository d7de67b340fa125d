package bridge

import "github.com/weftnet/weft/internal/ifname"

// Name prefixes of the links this package creates (ifname.ForID). weft
// recognises its own links by their mark (internal/nl), never by these.
const (
	BridgePrefix        = "wf-" // bridges: wf-<12 chars of network id>
	HostVethPrefix      = "wh"  // bridge side of an endpoint's veth pair
	ContainerVethPrefix = "wc"  // container side, handed to dockerd as SrcName
)

// Name is the default bridge name of a network.
func Name(networkID string) string { return ifname.ForID(BridgePrefix, networkID) }

// VethNames returns the host and container side names of an endpoint's veth pair.
func VethNames(endpointID string) (host, container string) {
	return ifname.ForID(HostVethPrefix, endpointID), ifname.ForID(ContainerVethPrefix, endpointID)
}

// NetworkLinks names the links a network's id gives in bridge mode (a
// bridge named with an option cannot be found from the id).
func NetworkLinks(networkID string) []string { return []string{Name(networkID)} }

// EndpointLinks names the links an endpoint's id gives in bridge mode.
func EndpointLinks(endpointID string) []string {
	host, container := VethNames(endpointID)
	return []string{host, container}
}
