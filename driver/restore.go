package driver

import (
	"fmt"
	"strings"

	"github.com/weftnet/weft/internal/link"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/store"
	"github.com/weftnet/weft/vxlan"
)

// restore loads the stored networks and endpoints and makes the kernel match
// them. dockerd never re-sends CreateNetwork for networks it already has, so
// after a host reboot (links and rules gone, store kept) this is what brings
// the bridges back. Links named like weft's that no record owns are leftovers
// of a crash and are removed.
func (d *Driver) restore() error {
	err := d.store.View(func(tx *store.Tx) error {
		if err := tx.ForEach(kindNetwork, func(_ string, raw []byte) error {
			n := &Network{}
			if err := store.Decode(raw, n); err != nil {
				return err
			}
			d.networks[n.ID] = n
			return nil
		}); err != nil {
			return err
		}
		if err := d.loadNodes(tx); err != nil {
			return err
		}
		return tx.ForEach(kindEndpoint, func(_ string, raw []byte) error {
			ep := &Endpoint{}
			if err := store.Decode(raw, ep); err != nil {
				return err
			}
			d.endpoints[ep.ID] = ep
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load driver state: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.networks {
		if err := d.backendOf(n).ensureNetwork(n); err != nil {
			// One broken network must not take the others down with it.
			d.netLog(n.ID).WithError(err).Error("could not restore network")
		}
	}
	for _, ep := range d.endpoints {
		d.restoreEndpoint(ep)
	}
	d.removeOrphanLinks()
	if err := d.applyFirewall(); err != nil {
		return fmt.Errorf("restore firewall rules: %w", err)
	}
	d.log.WithFields(map[string]any{"networks": len(d.networks), "endpoints": len(d.endpoints)}).Info("state restored")
	return nil
}

// restoreEndpoint checks an endpoint's link survived. A container whose link
// is gone (host reboot) is dead; dockerd will delete the endpoint, and until
// then its published ports must not catch traffic meant for a new container.
func (d *Driver) restoreEndpoint(ep *Endpoint) {
	log := d.epLog(ep.NetworkID, ep.ID)
	if _, ok := d.networks[ep.NetworkID]; !ok {
		log.Warn("dropping endpoint of a network weft no longer has")
		delete(d.endpoints, ep.ID)
		n := d.networkOrStub(ep.NetworkID)
		d.backendOf(n).deleteEndpoint(n, ep)
		if err := d.deleteEndpointRecord(ep.ID); err != nil {
			log.WithError(err).Warn("could not drop endpoint record")
		}
		return
	}
	if len(ep.Ports) == 0 || ep.HostVeth == "" {
		return
	}
	if exists, err := link.Exists(d.nl, ep.HostVeth); err == nil && !exists {
		log.Info("endpoint link is gone; withdrawing its published ports until dockerd deletes it")
		ep.Ports = nil
		if err := d.saveEndpoint(ep); err != nil {
			log.WithError(err).Warn("could not store endpoint")
		}
	}
}

// removeOrphanLinks deletes links that carry weft's name prefixes but belong
// to no stored network or endpoint.
func (d *Driver) removeOrphanLinks() {
	owned := map[string]bool{}
	for _, n := range d.networks {
		owned[n.Config.Bridge] = true
		if !n.Config.bridged() {
			owned[n.parentLink()] = true
			owned[macvlan.ShimName(n.ID)] = true
		}
		if n.Config.Mode == ModeVXLAN {
			owned[vxlan.Name(n.ID)] = true
		}
	}
	for _, ep := range d.endpoints {
		owned[ep.HostVeth] = true
		owned[ep.Link] = true
	}
	links, err := d.nl.LinkList()
	if err != nil {
		d.log.WithError(err).Warn("could not list links to find leftovers")
		return
	}
	for _, l := range links {
		name := l.Attrs().Name
		if weftNamed(name, l.Type()) && !owned[name] {
			d.log.WithField("link", name).Info("removing leftover link")
			if err := link.Delete(d.nl, name); err != nil {
				d.log.WithError(err).WithField("link", name).Warn("could not remove leftover link")
			}
		}
	}
}

// weftNamed says whether a link has the name and type of one weft makes.
func weftNamed(name, kind string) bool {
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	switch kind {
	case "bridge":
		return has(link.BridgePrefix, macvlan.PlaceholderPrefix)
	case "veth":
		return has(link.HostVethPrefix, link.ContainerVethPrefix)
	case "macvlan", "ipvlan":
		return has(macvlan.MacvlanPrefix, macvlan.IpvlanPrefix, macvlan.ShimPrefix, macvlan.ProbePrefix)
	case "dummy":
		return has(macvlan.PlaceholderPrefix)
	case "vxlan":
		return has(vxlan.Prefix)
	}
	return false
}
