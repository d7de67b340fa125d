package netmode

import "net/netip"

// IPAMData is one pool IPAM allocated for a network: its prefix, gateway
// and reserved (--aux-address) addresses, as dockerd sends them.
type IPAMData struct {
	AddressSpace string
	Pool         string            // a CIDR, e.g. 10.1.0.0/24
	Gateway      string            // an address or a CIDR, "" for none
	AuxAddresses map[string]string // --aux-address NAME=ADDRESS
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
