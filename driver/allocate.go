package driver

import (
	"maps"
	"strconv"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/store"
	"github.com/weftnet/weft/vxlan"
)

// kindVNI is the store kind of the VNIs this node, as a swarm manager,
// gave to swarm networks: VNI -> network id.
const kindVNI = "vnis"

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
		vni, err := d.reserveVNI(req.NetworkID, v.VNI(), chosen)
		if err != nil {
			return nil, err
		}
		out[vxlan.OptVNI] = strconv.Itoa(vni)
	}
	return out, nil
}

// FreeNetwork releases what AllocateNetwork reserved.
func (d *Driver) FreeNetwork(networkID string) error {
	return d.store.Update(func(tx *store.Tx) error {
		var free []string
		err := tx.ForEach(kindVNI, func(vni string, raw []byte) error {
			var owner string
			if err := store.Decode(raw, &owner); err == nil && owner == networkID {
				free = append(free, vni)
			}
			return nil
		})
		for _, vni := range free {
			if err == nil {
				err = tx.Delete(kindVNI, vni)
			}
		}
		return err
	})
}

// reserveVNI records vni for the network. A VNI the user chose must be free;
// otherwise the next free one from there is taken.
func (d *Driver) reserveVNI(networkID string, vni int, chosen bool) (int, error) {
	err := d.store.Update(func(tx *store.Tx) error {
		for range vxlan.MaxVNI {
			var owner string
			key := strconv.Itoa(vni)
			if tx.Get(kindVNI, key, &owner) != nil || owner == networkID {
				return tx.Put(kindVNI, key, networkID)
			}
			if chosen {
				return errdefs.Errorf(ErrConflict, "invalid value \"%d\" for option %s: swarm network %s already uses it", vni, vxlan.OptVNI, ifname.ShortID(owner))
			}
			vni = vni%vxlan.MaxVNI + 1
		}
		return errdefs.Errorf(errdefs.Exhausted, "every VNI is in use")
	})
	return vni, err
}

// createRequestFor is the CreateNetwork a node will get for an allocated
// network with these options, for validating them on the manager.
func createRequestFor(req *AllocateRequest, opts map[string]string) *NetworkRequest {
	return &NetworkRequest{NetworkID: req.NetworkID, Options: opts, IPv4Data: req.IPv4Data, IPv6Data: req.IPv6Data}
}
