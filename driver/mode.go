package driver

import (
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

// network is the part of a weft network its mode owns: the typed -o
// options, the state the mode keeps, and the kernel objects it builds. The
// mode packages (bridge, macvlan, vxlan) implement it; they see the driver
// only through netmode.Host, bound to the network, and are called with
// d.mu held.
type network interface {
	// SetOption applies one of the mode's -o options (mode.options).
	SetOption(key, value string) error
	// Check runs the checks that need every option and the IPAM data, and
	// fills the defaults that depend on them.
	Check(v4, v6 []netmode.IPAMData) error
	// Record returns pointers to what the network's record stores of the
	// mode: its options, beside the common ones in the record's "config"
	// object, and its state (nil for none), beside "config".
	Record() (options []any, state any)

	// CheckNew refuses a new network that would clash with what the host
	// has (a bridge name in use).
	CheckNew(h netmode.Host, v4, v6 []netmode.IPAMData) error
	// Ensure makes the network's kernel objects exist; it is idempotent,
	// so create, retry and restore all use it.
	Ensure(h netmode.Host) error
	// Teardown removes what Ensure made; the network is already out of
	// d.networks. Failures are logged: a delete always goes through.
	Teardown(h netmode.Host)
	// LinksMade names the links weft made for the network (never a parent
	// the user gave), for marking them and finding leftovers.
	LinksMade() []string

	// NewEndpoint names the links of a new endpoint and picks its MAC
	// (mac: --mac-address, "" for none).
	NewEndpoint(ep *netmode.Endpoint, mac string) error
	// CreateEndpoint makes the link handed to dockerd (ep.Link).
	CreateEndpoint(h netmode.Host, ep *netmode.Endpoint) error
	// DeleteEndpoint removes what CreateEndpoint made.
	DeleteEndpoint(h netmode.Host, ep *netmode.Endpoint)
	// Join answers the mode's part of Join.
	Join(ep *netmode.Endpoint) netmode.JoinInfo
}

// Beyond network, the driver uses bridge.Bridged (bridge and vxlan
// networks have firewall rules and publish ports) and *vxlan.Network
// (encryption, swarm peers, VNIs).
var (
	_ network        = (*bridge.Network)(nil)
	_ network        = (*macvlan.Network)(nil)
	_ network        = (*vxlan.Network)(nil)
	_ bridge.Bridged = (*vxlan.Network)(nil)
)

// mode is one value of -o mode.
type mode struct {
	// options are the mode's -o options beyond the common ones, in the
	// order errors list them.
	options []string
	// new returns a network of the mode with its options' defaults.
	new func(*netmode.Network) network
}

// modes are weft's network modes; modeNames orders them for messages.
var (
	modes = map[string]mode{
		netmode.Bridge:  {bridge.OptionNames, func(b *netmode.Network) network { return bridge.New(b) }},
		netmode.Macvlan: {macvlan.MacvlanOptions, func(b *netmode.Network) network { return macvlan.New(b) }},
		netmode.Ipvlan:  {macvlan.IpvlanOptions, func(b *netmode.Network) network { return macvlan.New(b) }},
		netmode.VXLAN:   {slices.Concat(vxlan.OptionNames, bridge.OptionNames), func(b *netmode.Network) network { return vxlan.New(b) }},
	}
	modeNames = []string{netmode.Bridge, netmode.Macvlan, netmode.Ipvlan, netmode.VXLAN}
)

// accepted lists every -o option of a mode, as errors name them.
func (m mode) accepted() []string {
	return slices.Concat([]string{netmode.OptMode}, m.options, []string{netmode.OptMTU, netmode.OptIfacePrefix, netmode.OptSwarm})
}

// bridgeOf returns the bridge of a bridge or vxlan network, nil for others.
func bridgeOf(n *Network) *bridge.Network {
	if b, ok := n.mode.(bridge.Bridged); ok {
		return b.Bridge()
	}
	return nil
}

// host is the netmode.Host the driver gives a mode working on network n
// (id, where n is gone). Callers hold d.mu.
type host struct {
	d  *Driver
	id string
	n  *Network // nil: the network is gone
}

func (d *Driver) host(n *Network) host { return host{d: d, id: n.ID, n: n} }

func (h host) NL() *nl.Handle { return h.d.nl }

func (h host) Sysctl(key, value string) error {
	if h.d.sysctls == nil {
		return nil
	}
	return h.d.sysctls.Set(key, value)
}

func (h host) Log() logrus.FieldLogger { return h.d.netLog(h.id) }

func (h host) Others() []any {
	var others []any
	for _, o := range h.d.networks {
		if o.ID != h.id {
			others = append(others, o.mode)
		}
	}
	return others
}

func (h host) Endpoints() []*netmode.Endpoint {
	var eps []*netmode.Endpoint
	for _, ep := range h.d.endpoints {
		if ep.NetworkID == h.id {
			eps = append(eps, &ep.Endpoint)
		}
	}
	return eps
}

func (h host) Save() error { return h.d.saveNetwork(h.n) }

func (h host) Swarm() (self netip.Addr, ok bool, peers []netip.Addr) {
	self, ok = h.d.nodes.Self()
	return self, ok, h.d.nodes.Peers()
}

func (h host) DynamicRange(space string, pool netip.Prefix) (netip.Prefix, bool) {
	if h.d.pools == nil {
		return netip.Prefix{}, false
	}
	return h.d.pools.DynamicRange(space, pool)
}
