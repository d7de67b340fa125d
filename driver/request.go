package driver

import (
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/portmap"
)

// The driver's requests and replies are weft's own types: package plugin
// translates dockerd's protocol into them, as it does for ipam.PoolRequest.

// NetworkRequest is a CreateNetwork.
type NetworkRequest struct {
	NetworkID string
	// Options are the user's -o options, and OptSwarm on a swarm
	// network's copy.
	Options  map[string]string
	IPv6     bool // --ipv6
	Internal bool // --internal
	// IPv4Data and IPv6Data are the pools and gateways IPAM allocated.
	IPv4Data, IPv6Data []IPAMData
}

// IPAMData is one pool IPAM allocated for a network.
type IPAMData = netmode.IPAMData

// AllocateRequest is a swarm manager's AllocateNetwork: the options that
// will reach every node's CreateNetwork.
type AllocateRequest struct {
	NetworkID          string
	Options            map[string]string
	IPv4Data, IPv6Data []IPAMData
}

// EndpointRequest is a CreateEndpoint.
type EndpointRequest struct {
	NetworkID, EndpointID string
	// Address and AddressIPv6 are the CIDRs IPAM gave, "" for none.
	Address, AddressIPv6 string
	MAC                  string        // --mac-address, "" for none
	Exposed              []ExposedPort // the container's exposed ports
	// IfName is the name the user asked for the link in the container
	// (OptIfName), "" for none.
	IfName string
}

// OptIfName is the endpoint option (docker run --network
// name=N,driver-opt=...) naming the container's interface.
const OptIfName = "com.docker.network.endpoint.ifname"

// EndpointReply is CreateEndpoint's answer.
type EndpointReply struct {
	// MAC is the address weft chose for the container, "" when dockerd
	// gave one or the container uses its parent's.
	MAC string
}

// JoinReply tells dockerd which link to move into the container, what to
// call it there and how the container routes.
type JoinReply struct {
	Link        string // the link dockerd moves into the container
	IfacePrefix string // its name there, before the index dockerd adds
	IfName      string // its whole name there (OptIfName), "" for none
	netmode.JoinInfo
}

// PortBinding is a port published (docker run -p), in Docker's terms.
type PortBinding = portmap.Binding

// Connectivity is what ProgramExternalConnectivity is asked to publish.
type Connectivity = portmap.Connectivity

// ExposedPort is a port the container exposes, in Docker's terms.
type ExposedPort = portmap.Exposed

// EndpointInfo is what EndpointOperInfo reports of an endpoint.
type EndpointInfo struct {
	Ports   []PortBinding
	Exposed []ExposedPort
}
