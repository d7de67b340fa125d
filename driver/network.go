package driver

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/link"
)

// CreateNetwork validates the options, builds the bridge with its gateway
// addresses and installs the network's firewall rules. A CreateNetwork for a
// network weft already has (dockerd retrying after a plugin crash) makes sure
// the kernel state is there and succeeds.
func (d *Driver) CreateNetwork(req *network.CreateNetworkRequest) (retErr error) {
	log := d.netLog(req.NetworkID)
	cfg, err := parseNetworkConfig(req)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	if n, ok := d.networks[req.NetworkID]; ok {
		log.Info("network already known, making sure it is in place")
		return d.ensureNetwork(n)
	}
	for _, other := range d.networks {
		if other.Config.Bridge == cfg.Bridge {
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: weft network %s already uses that bridge", cfg.Bridge, OptBridgeName, short(other.ID))
		}
	}
	if exists, err := link.Exists(d.nl, cfg.Bridge); err != nil {
		return err
	} else if exists {
		return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: a network interface with that name already exists on this host; choose another name", cfg.Bridge, OptBridgeName)
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
	log.WithField("bridge", cfg.Bridge).Info("network created")
	return nil
}

// ensureNetwork makes the kernel hold the bridge, its addresses and the
// firewall rules of n. Callers hold d.mu.
func (d *Driver) ensureNetwork(n *Network) error {
	if err := d.ensureNetworkLinks(n); err != nil {
		return err
	}
	return d.applyFirewall()
}

// ensureNetworkLinks is ensureNetwork without the firewall, so restore can
// apply the rules of all networks at once.
func (d *Driver) ensureNetworkLinks(n *Network) error {
	if err := d.enableForwarding(n); err != nil {
		return err
	}
	spec := link.BridgeSpec{Name: n.Config.Bridge, MTU: n.Config.MTU, Seed: n.ID}
	// Internal networks keep their gateway address too: the containers reach
	// nothing beyond the bridge, but the host can still reach them.
	for _, s := range append(append([]Subnet{}, n.Config.IPv4Subnets...), n.Config.IPv6Subnets...) {
		if s.Gateway.IsValid() {
			spec.Addresses = append(spec.Addresses, s.Gateway)
		}
	}
	if err := link.EnsureBridge(d.nl, spec); err != nil {
		if errors.Is(err, link.ErrExists) {
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: %v", n.Config.Bridge, OptBridgeName, err)
		}
		return err
	}
	return d.tuneBridge(n)
}

// tuneBridge sets the sysctls the network's rules rely on.
func (d *Driver) tuneBridge(n *Network) error {
	if d.sysctls == nil {
		return nil
	}
	if len(n.Config.IPv4Subnets) > 0 && !n.Config.Internal {
		// Published ports answer on 127.0.0.1 too, as Docker's do: the
		// DNATed packet from loopback must be routable onto the bridge.
		if err := d.sysctls.Set("net/ipv4/conf/"+n.Config.Bridge+"/route_localnet", "1"); err != nil {
			return err
		}
	}
	if !n.Config.ICC {
		// Traffic between two ports of one bridge meets iptables only when
		// br_netfilter hands it over; without that ICC off would do nothing.
		keys := []string{"net/bridge/bridge-nf-call-iptables"}
		if len(n.Config.IPv6Subnets) > 0 {
			keys = append(keys, "net/bridge/bridge-nf-call-ip6tables")
		}
		for _, key := range keys {
			if err := d.sysctls.Set(key, "1"); err != nil {
				return errdefs.Errorf(ErrInvalid, "%s=false needs the br_netfilter kernel module (modprobe br_netfilter): %v", OptICC, err)
			}
		}
	}
	return nil
}

// enableForwarding turns on routing for the address families n uses; hosts
// running Docker already route IPv4, IPv6 forwarding is often off.
func (d *Driver) enableForwarding(n *Network) error {
	if d.sysctls == nil || n.Config.Internal {
		return nil
	}
	if len(n.Config.IPv4Subnets) > 0 {
		if err := d.sysctls.Set("net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
	}
	if len(n.Config.IPv6Subnets) > 0 {
		if err := d.sysctls.Set("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return fmt.Errorf("enable IPv6 forwarding: %w", err)
		}
	}
	return nil
}

// teardownNetwork removes the network's kernel state; n must already be out
// of d.networks. Failures are logged: a delete always goes through.
func (d *Driver) teardownNetwork(n *Network) {
	log := d.netLog(n.ID)
	if err := d.applyFirewall(); err != nil {
		log.WithError(err).Warn("could not update firewall rules")
	}
	if err := link.Delete(d.nl, n.Config.Bridge); err != nil {
		log.WithError(err).Warn("could not delete bridge")
	}
}

// DeleteNetwork removes the bridge, the rules and the record. Deleting a
// network weft does not know succeeds, so `docker network rm` never gets
// stuck on weft.
func (d *Driver) DeleteNetwork(req *network.DeleteNetworkRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.networks[req.NetworkID]
	if !ok {
		d.netLog(req.NetworkID).Info("delete of an unknown network: nothing to do")
		return nil
	}
	// Endpoints dockerd forgot to delete (it does so before DeleteNetwork)
	// would keep veths on the bridge: drop them with it.
	for id, ep := range d.endpoints {
		if ep.NetworkID == n.ID {
			d.removeEndpoint(ep)
			delete(d.endpoints, id)
		}
	}
	delete(d.networks, n.ID)
	d.teardownNetwork(n)
	if err := d.deleteNetworkRecord(n.ID); err != nil {
		return err
	}
	d.netLog(n.ID).Info("network deleted")
	return nil
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
