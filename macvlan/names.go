package macvlan

import "github.com/weftnet/weft/internal/ifname"

// Name prefixes of the links this package creates (ifname.ForID). weft
// recognises its own links by their mark (internal/nl), never by these.
const (
	MacvlanPrefix     = "wm"  // a container's macvlan link: wm<12 chars of endpoint id>
	IpvlanPrefix      = "wi"  // a container's ipvlan link
	PlaceholderPrefix = "wd-" // the parent of a network without one: wd-<12 chars of network id>
	ShimPrefix        = "ws-" // the host's own link on a network: ws-<12 chars of network id>
	ProbePrefix       = "wp-" // a short-lived child made to test kernel support
)

// ChildName names a container's link.
func ChildName(kind Kind, endpointID string) string {
	if kind == Ipvlan {
		return ifname.ForID(IpvlanPrefix, endpointID)
	}
	return ifname.ForID(MacvlanPrefix, endpointID)
}

// PlaceholderName names the private parent of a network given no parent.
func PlaceholderName(networkID string) string { return ifname.ForID(PlaceholderPrefix, networkID) }

// ShimName names the host's link on a network.
func ShimName(networkID string) string { return ifname.ForID(ShimPrefix, networkID) }

// ProbeName names the short-lived child that tests kernel support.
func ProbeName(networkID string) string { return ifname.ForID(ProbePrefix, networkID) }

// NetworkLinks names the links a network's id gives in macvlan and ipvlan
// modes.
func NetworkLinks(networkID string) []string {
	return []string{ShimName(networkID), PlaceholderName(networkID)}
}

// EndpointLinks names the links an endpoint's id gives in macvlan and
// ipvlan modes.
func EndpointLinks(endpointID string) []string {
	return []string{ChildName(Macvlan, endpointID), ChildName(Ipvlan, endpointID)}
}
