package driver

import (
	"fmt"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/leftover"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/store"
)

// CreateNetwork validates the options and builds the network: for bridge
// mode the bridge, its gateway addresses and firewall rules; for macvlan and
// ipvlan the parent and host shim; for vxlan a bridge network and its
// tunnel. On failure nothing is left behind. A CreateNetwork for a network
// weft already has (dockerd retrying after a plugin crash) makes sure the
// kernel state is there and succeeds.
func (d *Driver) CreateNetwork(req *NetworkRequest) (retErr error) {
	log := d.netLog(req.NetworkID)
	n, err := parseNetwork(req)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	if err := d.markSwarmCopy(n, req); err != nil {
		return err
	}
	if known, ok := d.networks[req.NetworkID]; ok {
		log.Info("network already known, making sure it is in place")
		return d.ensureNetwork(known)
	}
	if err := n.mode.CheckNew(d.host(n), req.IPv4Data, req.IPv6Data); err != nil {
		return err
	}
	// Stored before the kernel work: if the plugin dies half way, the
	// restarted plugin finds the record and finishes or removes the network.
	if err := d.saveNetwork(n); err != nil {
		return err
	}
	d.networks[n.ID] = n
	defer func() {
		if retErr != nil {
			delete(d.networks, n.ID)
			d.teardownNetwork(n)
			if err := d.deleteNetworkRecord(n.ID); err != nil {
				log.WithError(err).Warn("could not remove the record of a network that failed to create")
			}
		}
	}()
	if err := d.ensureNetwork(n); err != nil {
		return err
	}
	// The mode may have learnt something to keep (it owns the parent).
	if err := d.saveNetwork(n); err != nil {
		return err
	}
	log.WithFields(n.logFields()).Info("network created")
	return nil
}

// logFields describe a network in logs: its mode and what it runs on.
func (n *Network) logFields() logrus.Fields {
	f := logrus.Fields{"mode": n.Config.Mode}
	if b := bridgeOf(n); b != nil {
		f["bridge"] = b.Options.Bridge
	}
	if m, ok := n.mode.(*macvlan.Network); ok {
		f["parent"] = m.ParentLink()
	}
	return f
}

// markSwarmCopy marks the pools of a swarm network's copy in weft's IPAM,
// so that dockerd, should it die and forget the copy, can create it again.
// Marking is idempotent and changes nothing a later failure must undo.
func (d *Driver) markSwarmCopy(n *Network, req *NetworkRequest) error {
	if !n.Config.Swarm || d.pools == nil {
		return nil
	}
	for _, data := range append(append([]IPAMData{}, req.IPv4Data...), req.IPv6Data...) {
		pool, err := netip.ParsePrefix(data.Pool)
		if err != nil {
			continue // parseNetwork has already refused it
		}
		if err := d.pools.MarkSwarmCopy(data.AddressSpace, pool.Masked()); err != nil {
			return err
		}
	}
	return nil
}

// ensureNetwork makes the kernel hold the network's links and firewall
// rules. Callers hold d.mu.
func (d *Driver) ensureNetwork(n *Network) error {
	if err := n.mode.Ensure(d.host(n)); err != nil {
		return err
	}
	return d.applyFirewall()
}

// teardownNetwork removes the network's kernel state; n must already be out
// of d.networks. Failures are logged: a delete always goes through.
func (d *Driver) teardownNetwork(n *Network) {
	if err := d.applyFirewall(); err != nil {
		d.netLog(n.ID).WithError(err).Warn("could not update firewall rules")
	}
	n.mode.Teardown(d.host(n))
}

// DeleteNetwork removes the bridge, the rules and the record. The record goes
// first: a delete the store cannot record fails and changes nothing, so
// dockerd's retry finds the network still there, and a restart never
// rebuilds a network dockerd deleted. Deleting a network weft does not know
// succeeds (and drops a record restore skipped), so `docker network rm`
// never gets stuck on weft.
func (d *Driver) DeleteNetwork(networkID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.networks[networkID]
	if !ok {
		d.netLog(networkID).Info("delete of an unknown network")
		if leftover.RemoveMarked(d.nl, networkID, networkLinkNames(networkID), d.log) {
			// The kept rules of its bridge go with it.
			if err := d.applyFirewall(); err != nil {
				d.netLog(networkID).WithError(err).Warn("could not update firewall rules")
			}
		}
		return d.deleteNetworkRecord(networkID)
	}
	// Endpoints dockerd forgot to delete (it does so before DeleteNetwork)
	// would keep veths on the bridge: drop them with it.
	var orphans []*Endpoint
	for _, ep := range d.endpoints {
		if ep.NetworkID == n.ID {
			orphans = append(orphans, ep)
		}
	}
	err := d.store.Update(func(tx *store.Tx) error {
		for _, ep := range orphans {
			if err := tx.Delete(kindEndpoint, ep.ID); err != nil {
				return err
			}
		}
		return tx.Delete(kindNetwork, n.ID)
	})
	if err != nil {
		return fmt.Errorf("network %s is kept: its record cannot be removed: %w", ifname.ShortID(n.ID), err)
	}
	for _, ep := range orphans {
		delete(d.endpoints, ep.ID)
		n.mode.DeleteEndpoint(d.host(n), &ep.Endpoint)
	}
	delete(d.networks, n.ID)
	d.teardownNetwork(n)
	d.netLog(n.ID).Info("network deleted")
	return nil
}
