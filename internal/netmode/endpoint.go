package netmode

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
)

// Endpoint is one container's attachment to a network, as a mode sees it.
// The driver's record of the endpoint embeds it, field for field.
type Endpoint struct {
	ID        string       `json:"id"`
	NetworkID string       `json:"network_id"`
	Link      string       `json:"link"`                // the link dockerd moves into the container
	HostVeth  string       `json:"host_veth,omitempty"` // bridge mode: the veth end left on the bridge
	MAC       string       `json:"mac"`
	IPv4      netip.Prefix `json:"ipv4,omitzero"`
	IPv6      netip.Prefix `json:"ipv6,omitzero"`
	// IfName is the link's name in the container, "" for dockerd's
	// choice (the network's prefix and an index).
	IfName string `json:"ifname,omitempty"`
}

// JoinInfo is a mode's part of the answer to Join: how the container
// routes out of the network.
type JoinInfo struct {
	Gateway, GatewayIPv6 netip.Addr // invalid for none
	Routes               []Route
}

// Route is a route the container gets through its link on the network,
// with no next hop: the destination is on the link (ipvlan l3's default
// route).
type Route struct {
	Destination netip.Prefix
}

// ChooseMAC gives the endpoint the MAC the user asked for (--mac-address),
// or one derived from its address.
func ChooseMAC(ep *Endpoint, requested string) error {
	if requested == "" {
		ep.MAC = DerivedMAC(ep).String()
		return nil
	}
	mac, err := net.ParseMAC(requested)
	if err != nil {
		return errdefs.Errorf(errdefs.Invalid, "invalid --mac-address %q: %v", requested, err)
	}
	ep.MAC = mac.String()
	return nil
}

// DerivedMAC derives a MAC as Docker's bridge does (02:42 + the IPv4
// address), so a container keeps its MAC across restarts and neighbours'
// ARP caches stay right; without IPv4 it comes from the endpoint id.
func DerivedMAC(ep *Endpoint) net.HardwareAddr {
	mac := net.HardwareAddr{0x02, 0x42, 0, 0, 0, 0}
	if ep.IPv4.IsValid() {
		copy(mac[2:], ep.IPv4.Addr().AsSlice())
		return mac
	}
	var b [4]byte
	// An id that does not start with 8 hex digits leaves zeros.
	_, _ = fmt.Sscanf(ep.ID, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3])
	copy(mac[2:], b[:])
	return mac
}

// AddressLike returns the endpoint's address of the same family as a.
func (ep *Endpoint) AddressLike(a netip.Addr) netip.Addr {
	if a.Is6() {
		return ep.IPv6.Addr()
	}
	return ep.IPv4.Addr()
}
