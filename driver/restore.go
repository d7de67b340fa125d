package driver

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/leftover"
	"github.com/weftnet/weft/internal/swarm"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/portmap"
	"github.com/weftnet/weft/store"
	"github.com/weftnet/weft/vxlan"
)

// restore loads the stored networks and endpoints and makes the kernel match
// them. dockerd never re-sends CreateNetwork for networks it already has, so
// after a host reboot (links and rules gone, store kept) this is what brings
// the bridges back. Records weft cannot use are reported and skipped: one bad
// record must not keep every other network down. Links weft made under this
// state database that no record owns are leftovers of a crash and are
// removed; nothing else is.
func (d *Driver) restore() error {
	err := d.store.View(func(tx *store.Tx) error {
		if err := tx.ForEach(kindNetwork, d.loadNetwork); err != nil {
			return err
		}
		var err error
		if d.nodes, err = swarm.Load(tx, d.log); err != nil {
			return err
		}
		return tx.ForEach(kindEndpoint, d.loadEndpoint)
	})
	if err != nil {
		return fmt.Errorf("load driver state: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.networks {
		if err := n.mode.Ensure(d.host(n)); err != nil {
			// One broken network must not take the others down with it.
			d.netLog(n.ID).WithError(err).Error("could not restore network")
		}
	}
	for _, ep := range d.endpoints {
		d.restoreEndpoint(ep)
	}
	d.dropRefusedPorts()
	d.claimAddresses()
	d.markLinksMade()
	d.removeOrphanLinks()
	if err := d.applyFirewall(); err != nil {
		return fmt.Errorf("restore firewall rules: %w", err)
	}
	d.log.WithFields(map[string]any{"networks": len(d.networks), "endpoints": len(d.endpoints)}).Info("state restored")
	return nil
}

// loadNetwork takes one stored network into memory, unless it cannot be
// decoded or could never be built (a record written before its options
// were checked as strictly as today).
func (d *Driver) loadNetwork(key string, raw []byte) error {
	n := &Network{}
	err := store.Decode(raw, n)
	if err == nil {
		err = n.check(key)
	}
	if err != nil {
		d.log.WithError(err).WithField("record", key).Error("skipping a stored network weft cannot use; `docker network rm` of it succeeds and removes the record")
		return nil
	}
	d.networks[n.ID] = n
	return nil
}

// loadEndpoint takes one stored endpoint into memory unless it is unusable.
func (d *Driver) loadEndpoint(key string, raw []byte) error {
	ep := &Endpoint{}
	err := store.Decode(raw, ep)
	if err == nil && ep.ID != key {
		err = fmt.Errorf("record %q holds endpoint %q", key, ep.ID)
	}
	if err != nil {
		d.log.WithError(err).WithField("record", key).Error("skipping a stored endpoint weft cannot use")
		return nil
	}
	d.endpoints[ep.ID] = ep
	return nil
}

// check refuses a stored network that restore could not build (a record
// of a mode weft does not have is refused when it is read).
func (n *Network) check(key string) error {
	if n.ID != key {
		return fmt.Errorf("record %q holds network %q", key, n.ID)
	}
	b := bridgeOf(n)
	if b == nil {
		return nil
	}
	return firewall.Ruleset{Networks: []firewall.Network{b.Firewall()}}.Validate()
}

// restoreEndpoint checks an endpoint's link survived. A container whose link
// is gone (host reboot) is dead; dockerd will delete the endpoint, and until
// then its published ports must not catch traffic meant for a new container.
func (d *Driver) restoreEndpoint(ep *Endpoint) {
	log := d.epLog(ep.NetworkID, ep.ID)
	if _, ok := d.networks[ep.NetworkID]; !ok {
		log.Warn("dropping endpoint of a network weft no longer has")
		if err := d.deleteEndpointRecord(ep.ID); err != nil {
			log.WithError(err).Warn("could not drop endpoint record")
			return
		}
		delete(d.endpoints, ep.ID)
		d.deleteEndpointLinks(ep)
		return
	}
	if len(ep.Ports) == 0 || ep.HostVeth == "" {
		return
	}
	if exists, err := d.nl.LinkExists(ep.HostVeth); err == nil && !exists {
		log.Info("endpoint link is gone; withdrawing its published ports until dockerd deletes it")
		ep.Ports = nil
		if err := d.saveEndpoint(ep); err != nil {
			log.WithError(err).Warn("could not store endpoint")
		}
	}
}

// claimAddresses makes weft's IPAM hold every address of the endpoints it
// knows: a salvaged state database may have kept an endpoint and lost its
// address, which would then go to the next container too.
func (d *Driver) claimAddresses() {
	if d.pools == nil {
		return
	}
	for _, ep := range d.endpoints {
		n := d.networks[ep.NetworkID]
		for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if n == nil || !a.IsValid() {
				continue
			}
			s, ok := n.Config.SubnetOf(a.Addr())
			if !ok {
				continue
			}
			claimed, err := d.pools.ClaimInUse(s.Pool, a.Addr())
			log := d.epLog(ep.NetworkID, ep.ID).WithField("address", a.Addr())
			switch {
			case err != nil:
				log.WithError(err).Warn("could not mark a running container's address in use")
			case claimed:
				log.Warn("a running container's address was missing from IPAM's records; it is marked in use again")
			}
		}
	}
}

// dropRefusedPorts withdraws stored published ports the firewall would
// refuse (a record damaged on disk, two endpoints claiming one port): the
// ruleset is applied whole, so one bad port would leave every network of
// the host without rules. Their containers keep their network.
func (d *Driver) dropRefusedPorts() {
	rs := d.ruleset()
	if rs.Validate() == nil {
		return
	}
	rs.Ports = nil
	ids := make([]string, 0, len(d.endpoints))
	for id := range d.endpoints {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ep := d.endpoints[id]
		n := d.networks[ep.NetworkID]
		if n == nil || bridgeOf(n) == nil || len(ep.Ports) == 0 {
			continue
		}
		try := rs
		try.Ports = append([]firewall.PortMapping(nil), rs.Ports...)
		try.Ports = append(try.Ports, portmap.Mappings(ep.Ports, bridgeOf(n).Options.Bridge, ep.IPv4.Addr(), ep.IPv6.Addr())...)
		if err := try.Validate(); err != nil {
			d.epLog(ep.NetworkID, ep.ID).WithError(err).Error("withdrawing stored published ports the firewall refuses")
			ep.Ports = nil
			if err := d.saveEndpoint(ep); err != nil {
				d.epLog(ep.NetworkID, ep.ID).WithError(err).Warn("could not store endpoint")
			}
			continue
		}
		rs = try
	}
}

// markLinksMade marks the links the records say weft made (leftover.Mark).
func (d *Driver) markLinksMade() {
	var names []string
	for _, n := range d.networks {
		names = append(names, n.mode.LinksMade()...)
	}
	for _, ep := range d.endpoints {
		names = append(names, ep.hostLinks()...)
	}
	leftover.Mark(d.nl, names, d.log)
}

// endpointLinkNames are the names an endpoint's links get in every mode.
func endpointLinkNames(id string) []string {
	return slices.Concat(bridge.EndpointLinks(id), macvlan.EndpointLinks(id))
}

// networkLinkNames are the names a network's links get by default in every
// mode (a bridge named with an option cannot be found from the id).
func networkLinkNames(id string) []string {
	return slices.Concat(bridge.NetworkLinks(id), vxlan.NetworkLinks(id), macvlan.NetworkLinks(id))
}

// removeOrphanLinks deletes the links this state database's mark says weft
// made but no record owns (leftover.RemoveUnowned).
func (d *Driver) removeOrphanLinks() {
	owned := map[string]bool{}
	for _, n := range d.networks {
		for _, name := range n.mode.LinksMade() {
			owned[name] = true
		}
	}
	for _, ep := range d.endpoints {
		owned[ep.HostVeth] = true
		owned[ep.Link] = true
	}
	leftover.RemoveUnowned(d.nl, owned, d.log)
}
