package driver

import (
	"maps"
	"strconv"

	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/vxlan"
)

// AllocateNetwork answers the swarm manager's call for a new swarm network
// (and for every existing one again when a manager becomes leader, with the
// options it returned before). The options returned reach every node's
// CreateNetwork, so this is where cluster-wide choices are made: a vxlan
// network's VNI, unique among the swarm's networks, and an encrypted
// network's key. The options are validated here too, so a mistake shows at
// `docker network create` rather than on each node later.
func (d *Driver) AllocateNetwork(req *AllocateRequest) (map[string]string, error) {
	out := maps.Clone(req.Options)
	if out == nil {
		out = map[string]string{}
	}
	out[OptSwarm] = "true"
	if out[OptMode] == netmode.VXLAN {
		if err := vxlan.AddKey(d.nl, out); err != nil {
			return nil, err
		}
	}
	n, err := parseNetwork(createRequestFor(req, out))
	if err != nil {
		return nil, err
	}
	if v, ok := n.mode.(*vxlan.Network); ok {
		_, chosen := out[vxlan.OptVNI]
		vni, err := vxlan.ReserveVNI(d.store, req.NetworkID, v.VNI(), chosen)
		if err != nil {
			return nil, err
		}
		out[vxlan.OptVNI] = strconv.Itoa(vni)
	}
	return out, nil
}

// FreeNetwork releases what AllocateNetwork reserved.
func (d *Driver) FreeNetwork(networkID string) error { return vxlan.FreeVNIs(d.store, networkID) }

// createRequestFor is the CreateNetwork a node will get for an allocated
// network with these options, for validating them on the manager.
func createRequestFor(req *AllocateRequest, opts map[string]string) *NetworkRequest {
	return &NetworkRequest{NetworkID: req.NetworkID, Options: opts, IPv4Data: req.IPv4Data, IPv6Data: req.IPv6Data}
}
