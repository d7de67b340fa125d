// Package netmode is what the driver and the network modes (bridge,
// macvlan, vxlan) share: the configuration every mode has, the endpoint
// data a mode works on, the errors an option gets, and Host, the view of
// the driver a mode is given. Mode packages import it, never the driver.
package netmode

import (
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
)

// Network modes: the values of -o mode.
const (
	Bridge  = "bridge"
	Macvlan = "macvlan"
	Ipvlan  = "ipvlan"
	VXLAN   = "vxlan"
)

// Network is what every weft network has, whatever its mode: the id
// dockerd gave it and the configuration all modes share. A mode's part of
// the network points to the driver's copy, so what a mode learns (vxlan's
// MTU) is stored with the rest.
type Network struct {
	ID     string
	Config Config
}

// Host is what a mode sees while it works on one network: the host's
// kernel, and weft's other networks and the network's endpoints there. The
// driver implements it, holding its lock for the whole call; a mode never
// sees the driver itself.
type Host interface {
	// NL is the netlink handle on the host's namespace.
	NL() *nl.Handle
	// Sysctl sets a kernel parameter of the host's namespace (a no-op
	// where weft is not given them).
	Sysctl(key, value string) error
	// Log is the network's logger.
	Log() logrus.FieldLogger
	// Others returns the mode parts of weft's other networks on this host
	// (*bridge.Network, *macvlan.Network, *vxlan.Network).
	Others() []any
	// Endpoints returns the network's endpoints.
	Endpoints() []*Endpoint
	// Save stores the network's record, the mode's state included, at once:
	// before a kernel change the record must survive a crash for.
	Save() error
	// Swarm returns this node's swarm address (ok is false until dockerd
	// announced it) and the other nodes' addresses, sorted.
	Swarm() (self netip.Addr, ok bool, peers []netip.Addr)
	// DynamicRange is the range IPAM hands container addresses out of in
	// pool (its --ip-range, or all of it); ok is false for a pool weft's
	// IPAM does not hold.
	DynamicRange(space string, pool netip.Prefix) (r netip.Prefix, ok bool)
}

// DeleteLinks deletes an endpoint's links by name, skipping empty names;
// failures are logged: a delete always goes through.
func DeleteLinks(h Host, ep *Endpoint, names ...string) {
	for _, name := range names {
		if name == "" {
			continue
		}
		if err := h.NL().DeleteLink(name); err != nil {
			h.Log().WithError(err).WithFields(logrus.Fields{"endpoint": ifname.ShortID(ep.ID), "link": name}).Warn("could not delete link")
		}
	}
}
