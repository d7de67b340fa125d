package driver

import (
	"net/netip"

	"github.com/weftnet/weft/vxlan"
)

// Discover records a node joining (add) or leaving the swarm and refreshes
// the peers (flood list, and IPsec SAs if encrypted) of every vxlan network
// that finds them through the swarm. dockerd only logs a failure here, so
// the updates are best effort, each failure logged.
func (d *Driver) Discover(addr netip.Addr, self, add bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed, err := d.nodes.Announce(d.store, addr, self, add)
	if err != nil {
		return err
	}
	if !changed {
		d.log.WithFields(map[string]any{"node": addr, "self": self}).Info("swarm node: an older gossip member at this address left; the node stays")
		return nil
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
