package driver

import (
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// Join tells dockerd which link to move into the container and which
// gateways to route through. The link already exists (CreateEndpoint made
// it), so Join touches no kernel state and is cheap. Every non-internal
// endpoint gets a way out of its own (plugin sets DisableGatewayService,
// which also keeps dockerd from adding a docker_gwbridge interface).
func (d *Driver) Join(_, endpointID, sandbox string) (*JoinReply, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[endpointID]
	if !ok {
		return nil, errdefs.Errorf(ErrNotFound, "endpoint %s is not known to weft", ifname.ShortID(endpointID))
	}
	n, ok := d.networks[ep.NetworkID]
	if !ok {
		return nil, errdefs.Errorf(ErrNotFound, "network %s is not a weft network on this host", ifname.ShortID(ep.NetworkID))
	}
	ep.Sandbox = sandbox // in memory: stored with the ports, which need it

	reply := &JoinReply{Link: ep.Link, IfacePrefix: n.Config.IfacePrefix, IfName: ep.IfName, JoinInfo: n.mode.Join(&ep.Endpoint)}
	d.epLog(n.ID, ep.ID).WithField("sandbox", sandbox).Debug("joined")
	return reply, nil
}

// Leave withdraws published ports: since v29, dockerd may skip Revoke after a
// plugin restart, and a stopped container must not keep its ports.
func (d *Driver) Leave(networkID, endpointID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.unpublish(endpointID); err != nil {
		d.epLog(networkID, endpointID).WithError(err).Warn("could not withdraw published ports")
	}
	return nil
}
