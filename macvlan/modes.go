// Package macvlan is weft's macvlan and ipvlan network modes: the options
// of both, the child link each container gets, the parent it hangs off (an
// existing interface, an 802.1q VLAN sub-interface weft creates and shares,
// or a placeholder for networks without a parent), and the host shim that
// lets the host reach its own containers. Every netlink call goes through
// internal/nl.
package macvlan

import (
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
)

// Kind is the type of child link a network hands to its containers.
type Kind string

// Child link types.
const (
	Macvlan Kind = "macvlan"
	Ipvlan  Kind = "ipvlan"
)

// Mode names, as Docker's macvlan and ipvlan drivers spell them.
var (
	MacvlanModes = map[string]netlink.MacvlanMode{
		"bridge":   netlink.MACVLAN_MODE_BRIDGE,
		"private":  netlink.MACVLAN_MODE_PRIVATE,
		"vepa":     netlink.MACVLAN_MODE_VEPA,
		"passthru": netlink.MACVLAN_MODE_PASSTHRU,
	}
	IpvlanModes = map[string]netlink.IPVlanMode{
		"l2":  netlink.IPVLAN_MODE_L2,
		"l3":  netlink.IPVLAN_MODE_L3,
		"l3s": netlink.IPVLAN_MODE_L3S,
	}
	IpvlanFlags = map[string]netlink.IPVlanFlag{
		"bridge":  netlink.IPVLAN_FLAG_BRIDGE,
		"private": netlink.IPVLAN_FLAG_PRIVATE,
		"vepa":    netlink.IPVLAN_FLAG_VEPA,
	}
)

// Names lists a mode table's keys for error messages, sorted.
func Names[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
