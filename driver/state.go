package driver

import (
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/store"
)

// Store kinds of the driver's records.
const (
	kindNetwork  = "networks"
	kindEndpoint = "endpoints"
)

// Network is a stored network.
type Network struct {
	ID     string        `json:"id"`
	Config NetworkConfig `json:"config"`
	// OwnsParent: weft created the parent link (a VLAN sub-interface or a
	// placeholder) and deletes it when the last network using it goes.
	OwnsParent bool `json:"owns_parent,omitempty"`
	// ResolvedParent is the interface a parent pattern or parent_subnet
	// found on this host, kept so the choice survives restarts.
	ResolvedParent string `json:"resolved_parent,omitempty"`
	// ESPSourcePort is the UDP port an encrypted vxlan network sends from on
	// this host (see esp.Tunnel).
	ESPSourcePort int `json:"esp_source_port,omitempty"`
}

// Endpoint is a stored endpoint: one container's attachment to a network.
type Endpoint struct {
	ID        string        `json:"id"`
	NetworkID string        `json:"network_id"`
	Link      string        `json:"link"`                // the link dockerd moves into the container
	HostVeth  string        `json:"host_veth,omitempty"` // bridge mode: the veth end left on the bridge
	MAC       string        `json:"mac"`
	IPv4      netip.Prefix  `json:"ipv4,omitzero"`
	IPv6      netip.Prefix  `json:"ipv6,omitzero"`
	Ports     []PortBinding `json:"ports,omitempty"`
	Exposed   []ExposedPort `json:"exposed,omitempty"`
}

func (d *Driver) saveNetwork(n *Network) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Put(kindNetwork, n.ID, n) })
}

func (d *Driver) deleteNetworkRecord(id string) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Delete(kindNetwork, id) })
}

func (d *Driver) saveEndpoint(ep *Endpoint) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Put(kindEndpoint, ep.ID, ep) })
}

func (d *Driver) deleteEndpointRecord(id string) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Delete(kindEndpoint, id) })
}

// ruleset derives the complete firewall state from the networks and
// endpoints held in memory. Callers hold d.mu.
func (d *Driver) ruleset() firewall.Ruleset {
	var rs firewall.Ruleset
	for _, n := range d.networks {
		if !n.Config.bridged() {
			continue // macvlan and ipvlan traffic never crosses the host's firewall
		}
		rs.Networks = append(rs.Networks, n.firewallNetwork())
		if n.Config.Encrypted {
			rs.Encrypted = append(rs.Encrypted, firewall.EncryptedVXLAN{VNI: uint32(n.Config.VNI), Port: uint16(n.Config.VXLANPort)})
		}
	}
	for _, ep := range d.endpoints {
		n := d.networks[ep.NetworkID]
		if n == nil || !n.Config.bridged() {
			continue
		}
		for _, p := range ep.Ports {
			rs.Ports = append(rs.Ports, p.mapping(n.Config.Bridge, ep))
		}
	}
	return rs
}

// firewallNetwork is what the firewall needs to know of a bridged network.
func (n *Network) firewallNetwork() firewall.Network {
	fn := firewall.Network{
		Bridge:     n.Config.Bridge,
		ICC:        n.Config.ICC,
		Masquerade: n.Config.Masquerade,
		Internal:   n.Config.Internal,
	}
	for _, s := range n.Config.subnets() {
		fn.Subnets = append(fn.Subnets, s.Pool)
		if s.Gateway.IsValid() {
			fn.Gateways = append(fn.Gateways, s.Gateway.Addr())
		}
	}
	return fn
}

// applyFirewall makes the kernel's rules match memory. Callers hold d.mu.
func (d *Driver) applyFirewall() error {
	rs := d.ruleset()
	rs.Kept = d.keptNetworks()
	return d.fw.Apply(rs)
}

// keptNetworks finds the bridges weft made under an earlier state database
// (damaged, emptied or replaced) that are still there: their containers may
// be running, so their rules stay (firewall.Ruleset.Kept) until the bridge
// is gone.
func (d *Driver) keptNetworks() []firewall.KeptNetwork {
	links, err := d.nl.LinkList()
	if err != nil {
		d.log.WithError(err).Warn("could not list links to find bridges of an earlier state")
		return nil
	}
	known := map[string]bool{}
	for _, n := range d.networks {
		known[n.Config.Bridge] = true
	}
	var kept []firewall.KeptNetwork
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "bridge" || !nl.MadeByWeft(l) || d.nl.Mine(l) || known[name] || ifname.CheckNew(name) != nil {
			continue
		}
		k := firewall.KeptNetwork{Bridge: name}
		addrs, err := d.nl.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && !ip.IsLinkLocalUnicast() {
				bits, _ := a.Mask.Size()
				k.Subnets = append(k.Subnets, netip.PrefixFrom(ip.Unmap(), bits).Masked())
			}
		}
		kept = append(kept, k)
	}
	return kept
}
