package driver

import (
	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// Join tells dockerd which link to move into the container and which
// gateways to route through. The link already exists (CreateEndpoint made
// it), so Join touches no kernel state and is cheap.
func (d *Driver) Join(req *network.JoinRequest) (*network.JoinResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[req.EndpointID]
	if !ok {
		return nil, errdefs.Errorf(ErrNotFound, "endpoint %s is not known to weft", ifname.ShortID(req.EndpointID))
	}
	n, ok := d.networks[ep.NetworkID]
	if !ok {
		return nil, errdefs.Errorf(ErrNotFound, "network %s is not a weft network on this host", ifname.ShortID(ep.NetworkID))
	}
	resp := &network.JoinResponse{
		InterfaceName: network.InterfaceName{SrcName: ep.Link, DstPrefix: n.Config.IfacePrefix},
		// weft gives every non-internal endpoint a way out of its own; this
		// also keeps dockerd from adding a docker_gwbridge interface.
		DisableGatewayService: true,
	}
	d.backendOf(n).join(n, ep, resp)
	d.epLog(n.ID, ep.ID).WithField("sandbox", req.SandboxKey).Debug("joined")
	return resp, nil
}

// Leave withdraws published ports: since v29, dockerd may skip Revoke after a
// plugin restart, and a stopped container must not keep its ports.
func (d *Driver) Leave(req *network.LeaveRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.unpublish(req.EndpointID); err != nil {
		d.epLog(req.NetworkID, req.EndpointID).WithError(err).Warn("could not withdraw published ports")
	}
	return nil
}
