// Package swarm keeps the swarm nodes dockerd announces to weft
// (DiscoverNew, DiscoverDelete): which nodes there are, which one is this
// node, and how many gossip members stand behind each. dockerd never
// replays the announcements to a restarted plugin, so the nodes are
// stored.
package swarm

import (
	"net/netip"
	"sort"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/store"
)

// kindNode is the store kind of the nodes.
const kindNode = "nodes"

// Node is a swarm node weft heard of.
type Node struct {
	Address netip.Addr `json:"address"`
	Self    bool       `json:"self,omitempty"`
}

// Nodes are the swarm's nodes as weft knows them. Not safe for concurrent
// use: the driver calls it under its lock.
type Nodes struct {
	nodes map[netip.Addr]Node
	// members counts the gossip members seen joining, less those seen
	// leaving, at each other node's address since this process started.
	members map[netip.Addr]int
}

// Load reads the nodes stored by an earlier run; records it cannot use are
// logged and skipped.
func Load(tx *store.Tx, log logrus.FieldLogger) (*Nodes, error) {
	s := &Nodes{nodes: map[netip.Addr]Node{}, members: map[netip.Addr]int{}}
	err := tx.ForEach(kindNode, func(key string, raw []byte) error {
		var n Node
		if err := store.Decode(raw, &n); err != nil || !n.Address.IsValid() {
			log.WithError(err).WithField("record", key).Error("skipping a stored swarm node weft cannot use")
			return nil
		}
		s.nodes[n.Address] = n
		return nil
	})
	return s, err
}

// Announce records a node joining or leaving, in st first and then in
// memory. changed is false for an announcement that changes no node (an
// older gossip member of a node that stays left).
func (s *Nodes) Announce(st *store.Store, addr netip.Addr, self, joined bool) (changed bool, err error) {
	if !s.presenceChanges(addr, self, joined) {
		return false, nil
	}
	// A node announces itself again when it joins a swarm anew, maybe under
	// another address: the newest self replaces any older one.
	var staleSelf []netip.Addr
	if joined && self {
		for a, n := range s.nodes {
			if n.Self && a != addr {
				staleSelf = append(staleSelf, a)
			}
		}
	}
	err = st.Update(func(tx *store.Tx) error {
		for _, a := range staleSelf {
			if err := tx.Delete(kindNode, a.String()); err != nil {
				return err
			}
		}
		if joined {
			return tx.Put(kindNode, addr.String(), Node{Address: addr, Self: self})
		}
		return tx.Delete(kindNode, addr.String())
	})
	if err != nil {
		return false, err
	}
	for _, a := range staleSelf {
		delete(s.nodes, a)
	}
	if joined {
		s.nodes[addr] = Node{Address: addr, Self: self}
	} else {
		delete(s.nodes, addr)
	}
	return true, nil
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
func (s *Nodes) presenceChanges(addr netip.Addr, self, joined bool) bool {
	switch {
	case self:
		return joined
	case joined:
		s.members[addr]++
	case s.members[addr] > 1:
		s.members[addr]--
		return false
	default:
		delete(s.members, addr)
	}
	return true
}

// Self is this node's swarm address, if dockerd announced it.
func (s *Nodes) Self() (netip.Addr, bool) {
	for a, n := range s.nodes {
		if n.Self {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Peers lists the other nodes, sorted.
func (s *Nodes) Peers() []netip.Addr {
	var peers []netip.Addr
	for a, n := range s.nodes {
		if !n.Self {
			peers = append(peers, a)
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Less(peers[j]) })
	return peers
}

// Len is the number of nodes known.
func (s *Nodes) Len() int { return len(s.nodes) }
