package driver

import (
	"net/netip"
	"sort"

	"github.com/weftnet/weft/store"
	"github.com/weftnet/weft/vxlan"
)

// kindNode is the store kind of the swarm nodes dockerd announced. Docker
// never replays them to a restarted plugin, so weft keeps them.
const kindNode = "nodes"

// Node is a swarm node weft heard of through DiscoverNew.
type Node struct {
	Address netip.Addr `json:"address"`
	Self    bool       `json:"self,omitempty"`
}

// Discover records a node joining (add) or leaving the swarm and refreshes
// the peers (flood list, and IPsec SAs if encrypted) of every vxlan network
// that finds them through the swarm. dockerd only logs a failure here, so
// the updates are best effort, each failure logged.
func (d *Driver) Discover(addr netip.Addr, self, add bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.presenceChanges(addr, self, add) {
		d.log.WithFields(map[string]any{"node": addr, "self": self}).Info("swarm node: an older gossip member at this address left; the node stays")
		return nil
	}
	// A node announces itself again when it joins a swarm anew, maybe under
	// another address: the newest self replaces any older one.
	var staleSelf []netip.Addr
	if add && self {
		for a, n := range d.nodes {
			if n.Self && a != addr {
				staleSelf = append(staleSelf, a)
			}
		}
	}
	err := d.store.Update(func(tx *store.Tx) error {
		for _, a := range staleSelf {
			if err := tx.Delete(kindNode, a.String()); err != nil {
				return err
			}
		}
		if add {
			return tx.Put(kindNode, addr.String(), Node{Address: addr, Self: self})
		}
		return tx.Delete(kindNode, addr.String())
	})
	if err != nil {
		return err
	}
	for _, a := range staleSelf {
		delete(d.nodes, a)
	}
	if add {
		d.nodes[addr] = Node{Address: addr, Self: self}
	} else {
		delete(d.nodes, addr)
	}
	d.log.WithFields(map[string]any{"node": addr, "self": self, "joined": add}).Info("swarm node")
	for _, n := range d.networks {
		if v, ok := n.mode.(*vxlan.Network); ok {
			if err := v.SwarmChanged(d.host(n)); err != nil {
				d.netLog(n.ID).WithError(err).Warn("could not update the network's peers")
			}
		}
	}
	return nil
}

// presenceChanges says whether an announcement changes the nodes weft
// knows. Docker announces every gossip member joining or leaving, and one
// node can have two members at once: a dockerd restarted after a crash
// joins as a new member before its old one is declared dead, and that
// death is announced too, on the other nodes and on the node itself. So
// another node stays while a member seen joining remains (one only
// remembered from the store leaves at the first departure), and this node
// never drops itself: it also hears of its departure when it leaves the
// swarm, whose networks go away then, and its next self announcement
// replaces the old one.
func (d *Driver) presenceChanges(addr netip.Addr, self, joined bool) bool {
	switch {
	case self:
		return joined
	case joined:
		d.members[addr]++
	case d.members[addr] > 1:
		d.members[addr]--
		return false
	default:
		delete(d.members, addr)
	}
	return true
}

// selfNode is this node's swarm address, if dockerd announced it.
func (d *Driver) selfNode() (netip.Addr, bool) {
	for a, n := range d.nodes {
		if n.Self {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// swarmPeers lists the other nodes, sorted.
func (d *Driver) swarmPeers() []netip.Addr {
	var peers []netip.Addr
	for a, n := range d.nodes {
		if !n.Self {
			peers = append(peers, a)
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Less(peers[j]) })
	return peers
}

// loadNodes reads the remembered swarm nodes at start.
func (d *Driver) loadNodes(tx *store.Tx) error {
	return tx.ForEach(kindNode, func(key string, raw []byte) error {
		var n Node
		if err := store.Decode(raw, &n); err != nil || !n.Address.IsValid() {
			d.log.WithError(err).WithField("record", key).Error("skipping a stored swarm node weft cannot use")
			return nil
		}
		d.nodes[n.Address] = n
		return nil
	})
}
