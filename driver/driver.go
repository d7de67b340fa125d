// Package driver implements weft's network driver: the lifecycle of its
// networks and endpoints. It takes dockerd's CreateNetwork/CreateEndpoint/
// Join/... calls (translated by package plugin), keeps every network and
// endpoint in the durable store so that a restarted plugin carries on where
// it stopped, derives the firewall's rules from them, and leaves the kernel
// objects of each network to its mode's package (bridge, macvlan, vxlan)
// through the network interface (mode.go).
package driver

import (
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/internal/swarm"
	"github.com/weftnet/weft/portmap"
	"github.com/weftnet/weft/store"
)

// Error classes (see internal/errdefs); the plugin layer maps them to HTTP
// statuses.
var (
	ErrInvalid  = errdefs.Invalid
	ErrConflict = errdefs.Conflict
	ErrNotFound = errdefs.NotFound
)

// Firewall programs the packet filter; *firewall.Firewall implements it.
type Firewall interface {
	Apply(firewall.Ruleset) error
}

// Sysctls sets kernel parameters of the host network namespace.
type Sysctls interface {
	Set(key, value string) error
}

// Pools answers what weft's IPAM holds; *ipam.Service implements it.
type Pools interface {
	// DynamicRange is the range container addresses come from in the
	// pool prefix (its --ip-range, or all of it); ok is false for a pool
	// weft's IPAM does not hold.
	DynamicRange(space string, prefix netip.Prefix) (r netip.Prefix, ok bool)
	// MarkSwarmCopy tells the IPAM that the pool prefix belongs to a swarm
	// network's copy, which dockerd may ask for again without releasing.
	MarkSwarmCopy(space string, prefix netip.Prefix) error
	// ClaimInUse marks a running container's address of pool prefix in
	// use, where weft's IPAM has it free; it reports whether it did.
	ClaimInUse(prefix netip.Prefix, addr netip.Addr) (bool, error)
}

// Config holds what the driver needs from the process.
type Config struct {
	Store    *store.Store
	Netlink  *nl.Handle
	Firewall Firewall
	Sysctls  Sysctls
	Pools    Pools            // nil: no checks against weft's IPAM
	Proxies  *portmap.Proxies // nil: no 6to4 proxy, as Docker's --userland-proxy=false
	Log      logrus.FieldLogger
}

// Driver is weft's network driver. Its methods are safe for concurrent use.
type Driver struct {
	store   *store.Store
	nl      *nl.Handle
	fw      Firewall
	sysctls Sysctls
	pools   Pools
	proxies *portmap.Proxies
	log     logrus.FieldLogger

	// mu serialises every change of networks, endpoints and the kernel state
	// derived from them, so the firewall is always built from one snapshot.
	mu        sync.Mutex
	networks  map[string]*Network
	endpoints map[string]*Endpoint
	nodes     *swarm.Nodes // from DiscoverNew and DiscoverDelete
}

// New loads the stored state and rebuilds whatever the kernel lost (a host
// reboot, a crash in the middle of a request); see restore.go.
func New(cfg Config) (*Driver, error) {
	d := &Driver{
		store:     cfg.Store,
		nl:        cfg.Netlink,
		fw:        cfg.Firewall,
		sysctls:   cfg.Sysctls,
		pools:     cfg.Pools,
		proxies:   cfg.Proxies,
		log:       cfg.Log,
		networks:  map[string]*Network{},
		endpoints: map[string]*Endpoint{},
	}
	// Every link weft makes carries the state database's mark; restore
	// deletes only marked links (see internal/nl/mark.go).
	cfg.Netlink.SetMark(cfg.Store.Instance())
	if err := d.restore(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Driver) netLog(nid string) logrus.FieldLogger {
	return d.log.WithField("network", ifname.ShortID(nid))
}

func (d *Driver) epLog(nid, eid string) logrus.FieldLogger {
	return d.log.WithFields(logrus.Fields{"network": ifname.ShortID(nid), "endpoint": ifname.ShortID(eid)})
}
