package driver

import "github.com/weftnet/weft/internal/netmode"

// backend builds the kernel objects of one network mode. Callers hold d.mu.
type backend interface {
	// ensureNetwork makes the network's links exist; it is idempotent, so
	// create, retry and restore all use it.
	ensureNetwork(n *Network) error
	// deleteNetwork removes what n owns; n is already out of d.networks.
	// Failures are logged: a delete always goes through.
	deleteNetwork(n *Network)
	// nameEndpoint names the links of a new endpoint.
	nameEndpoint(n *Network, ep *Endpoint)
	// createEndpoint makes the link handed to dockerd (ep.Link).
	createEndpoint(n *Network, ep *Endpoint) error
	// deleteEndpoint removes what createEndpoint made.
	deleteEndpoint(n *Network, ep *Endpoint)
	// join answers the mode's part of Join.
	join(n *Network, ep *Endpoint) netmode.JoinInfo
}

// backendOf picks the backend of a network's mode.
func (d *Driver) backendOf(n *Network) backend {
	switch n.Config.Mode {
	case ModeMacvlan, ModeIpvlan:
		return macvlanBackend{d}
	case ModeVXLAN:
		return vxlanBackend{bridgeBackend{d}}
	default:
		return bridgeBackend{d}
	}
}
