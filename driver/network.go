package driver

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/store"
)

// CreateNetwork validates the options and builds the network: for bridge
// mode the bridge, its gateway addresses and firewall rules; for macvlan and
// ipvlan the parent and host shim. On failure nothing is left behind. A
// CreateNetwork for a network weft already has (dockerd retrying after a
// plugin crash) makes sure the kernel state is there and succeeds.
func (d *Driver) CreateNetwork(req *NetworkRequest) (retErr error) {
	log := d.netLog(req.NetworkID)
	cfg, err := parseNetworkConfig(req)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	if err := d.markSwarmCopy(cfg, req); err != nil {
		return err
	}
	if n, ok := d.networks[req.NetworkID]; ok {
		log.Info("network already known, making sure it is in place")
		return d.ensureNetwork(n)
	}
	if cfg.bridged() {
		if err := d.checkBridgeName(cfg.Bridge); err != nil {
			return err
		}
	}
	if err := d.checkHostRange(cfg, req); err != nil {
		return err
	}

	n := &Network{ID: req.NetworkID, Config: cfg}
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
	// The backend may have learnt something to keep (it owns the parent).
	if err := d.saveNetwork(n); err != nil {
		return err
	}
	log.WithFields(map[string]any{"mode": cfg.Mode, "bridge": cfg.Bridge, "parent": n.parentLinkIfAny()}).Info("network created")
	return nil
}

// checkBridgeName refuses a bridge name another weft network or any other
// link already has.
func (d *Driver) checkBridgeName(name string) error {
	for _, other := range d.networks {
		if other.Config.bridged() && other.Config.Bridge == name {
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: weft network %s already uses that bridge", name, OptBridgeName, ifname.ShortID(other.ID))
		}
	}
	if exists, err := d.nl.LinkExists(name); err != nil {
		return err
	} else if exists {
		return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: a network interface with that name already exists on this host; choose another name", name, OptBridgeName)
	}
	return nil
}

// checkHostRange enforces the rule that keeps addresses apart on a vxlan
// network without a swarm (no manager allocates them): each host hands out
// addresses from its own --ip-range. With weft's IPAM, a pool whose range
// is the whole subnet is refused; other IPAMs cannot be checked.
func (d *Driver) checkHostRange(cfg NetworkConfig, req *NetworkRequest) error {
	if cfg.Mode != ModeVXLAN || d.pools == nil || (len(cfg.Peers) == 0 && !cfg.Group.IsValid()) {
		return nil
	}
	for _, data := range append(append([]IPAMData{}, req.IPv4Data...), req.IPv6Data...) {
		pool, err := netip.ParsePrefix(data.Pool)
		if err != nil {
			continue // parseNetworkConfig has already refused it
		}
		if r, ok := d.pools.DynamicRange(data.AddressSpace, pool.Masked()); ok && r == pool.Masked() {
			return errdefs.Errorf(ErrInvalid,
				"mode=vxlan without a swarm: give each host its own --ip-range inside --subnet %s (for example %s here and the next block on the next host), so containers on different hosts never get the same address",
				pool, exampleRange(pool))
		}
	}
	return nil
}

// markSwarmCopy marks the pools of a swarm network's copy in weft's IPAM,
// so that dockerd, should it die and forget the copy, can create it again.
// Marking is idempotent and changes nothing a later failure must undo.
func (d *Driver) markSwarmCopy(cfg NetworkConfig, req *NetworkRequest) error {
	if !cfg.Swarm || d.pools == nil {
		return nil
	}
	for _, data := range append(append([]IPAMData{}, req.IPv4Data...), req.IPv6Data...) {
		pool, err := netip.ParsePrefix(data.Pool)
		if err != nil {
			continue // parseNetworkConfig has already refused it
		}
		if err := d.pools.MarkSwarmCopy(data.AddressSpace, pool.Masked()); err != nil {
			return err
		}
	}
	return nil
}

// exampleRange suggests a quarter of the pool as one host's range.
func exampleRange(pool netip.Prefix) netip.Prefix {
	bits := min(pool.Bits()+2, pool.Addr().BitLen())
	return netip.PrefixFrom(pool.Masked().Addr(), bits).Masked()
}

// parentLinkIfAny is the parent link of a macvlan or ipvlan network, for logs.
func (n *Network) parentLinkIfAny() string {
	if n.Config.bridged() {
		return ""
	}
	return n.parentLink()
}

// ensureNetwork makes the kernel hold the network's links and firewall
// rules. Callers hold d.mu.
func (d *Driver) ensureNetwork(n *Network) error {
	if err := d.backendOf(n).ensureNetwork(n); err != nil {
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
	d.backendOf(n).deleteNetwork(n)
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
		if d.deleteUnknownLinks(networkID, networkLinkNames(networkID)) {
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
		d.backendOf(n).deleteEndpoint(n, ep)
	}
	delete(d.networks, n.ID)
	d.teardownNetwork(n)
	d.netLog(n.ID).Info("network deleted")
	return nil
}

// gateways returns the gateway addresses of the subnets holding the
// endpoint's addresses (invalid where there is none).
func (n *Network) gateways(ep *Endpoint) (v4, v6 netip.Addr) {
	if s, ok := n.subnetOf(ep.IPv4.Addr()); ep.IPv4.IsValid() && ok && s.Gateway.IsValid() {
		v4 = s.Gateway.Addr()
	}
	if s, ok := n.subnetOf(ep.IPv6.Addr()); ep.IPv6.IsValid() && ok && s.Gateway.IsValid() {
		v6 = s.Gateway.Addr()
	}
	return v4, v6
}

// subnetOf returns the network's subnet holding addr.
func (n *Network) subnetOf(addr netip.Addr) (Subnet, bool) {
	subnets := n.Config.IPv4Subnets
	if addr.Is6() {
		subnets = n.Config.IPv6Subnets
	}
	for _, s := range subnets {
		if s.Pool.Contains(addr) {
			return s, true
		}
	}
	return Subnet{}, false
}
