package driver

import (
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/portmap"
	"github.com/weftnet/weft/vxlan"
)

// ruleset derives the complete firewall state from the networks and
// endpoints held in memory. Callers hold d.mu.
func (d *Driver) ruleset() firewall.Ruleset {
	var rs firewall.Ruleset
	for _, n := range d.networks {
		b := bridgeOf(n)
		if b == nil {
			continue // macvlan and ipvlan traffic never crosses the host's firewall
		}
		rs.Networks = append(rs.Networks, b.Firewall())
		if v, ok := n.mode.(*vxlan.Network); ok {
			if e, ok := v.Encryption(); ok {
				rs.Encrypted = append(rs.Encrypted, e)
			}
		}
	}
	for _, ep := range d.endpoints {
		n := d.networks[ep.NetworkID]
		if n == nil || bridgeOf(n) == nil {
			continue
		}
		rs.Ports = append(rs.Ports, portmap.Mappings(ep.Ports, bridgeOf(n).Options.Bridge, ep.IPv4.Addr(), ep.IPv6.Addr())...)
	}
	return rs
}

// applyFirewall makes the kernel's rules match memory. Callers hold d.mu.
func (d *Driver) applyFirewall() error {
	rs := d.ruleset()
	rs.Kept = d.keptNetworks()
	if err := d.fw.Apply(rs); err != nil || d.proxies == nil {
		return err
	}
	return d.proxies.Sync(d.forwards())
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
		if b := bridgeOf(n); b != nil {
			known[b.Options.Bridge] = true
		}
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
