package driver

import (
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/portmap"
)

// ProgramExternalConnectivity publishes the container's ports (docker run
// -p). dockerd calls it for the endpoint that is the container's gateway.
// requested is nil when dockerd sent no port map, which changes nothing; an
// empty list withdraws what the endpoint published.
func (d *Driver) ProgramExternalConnectivity(_, endpointID string, requested []PortBinding) error {
	if requested == nil {
		return nil
	}
	if err := portmap.Check(requested); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(requested) == 0 {
		// dockerd sends an empty list for every container without -p: with
		// nothing published before either, there is nothing to change, and
		// skipping the rule check and the store write saves ~5 ms per start.
		if ep := d.endpoints[endpointID]; ep == nil || len(ep.Ports) == 0 {
			return nil
		}
	}
	ep, ok := d.endpoints[endpointID]
	if !ok {
		return errdefs.Errorf(ErrNotFound, "endpoint %s is not known to weft", ifname.ShortID(endpointID))
	}
	n := d.networks[ep.NetworkID]
	log := d.epLog(ep.NetworkID, ep.ID)
	if n == nil || n.Config.Internal || bridgeOf(n) == nil {
		// Docker publishes nothing from internal networks, nor from macvlan
		// and ipvlan ones, whose containers are on the LAN themselves.
		return nil
	}
	binding := bridgeOf(n).Options.HostBindingIPv4
	var bound []PortBinding
	for _, b := range requested {
		if b.HostIP == "" && binding.IsValid() {
			b.HostIP = binding.String()
		}
		if hostIP := b.HostAddr(); hostIP.Is6() && !ep.IPv6.IsValid() || hostIP.Is4() && !ep.IPv4.IsValid() {
			log.WithField("port", b.String()).Info("skipping a published port of an address family the container does not have")
			continue
		}
		if err := portmap.Choose(&b, append(bound, d.boundPorts(ep.ID)...)); err != nil {
			return err
		}
		bound = append(bound, b)
	}
	previous := ep.Ports
	ep.Ports = bound
	if err := d.applyFirewall(); err != nil {
		ep.Ports = previous
		return err
	}
	if err := d.saveEndpoint(ep); err != nil {
		ep.Ports = previous
		if fwErr := d.applyFirewall(); fwErr != nil {
			log.WithError(fwErr).Warn("could not withdraw the ports that failed to store")
		}
		return err
	}
	for _, b := range bound {
		log.WithField("port", b.String()).Infof("published to %s:%d", ep.IPv4.Addr(), b.Port)
	}
	return nil
}

// RevokeExternalConnectivity withdraws the container's published ports.
func (d *Driver) RevokeExternalConnectivity(_, endpointID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unpublish(endpointID)
}

// unpublish drops an endpoint's ports. Callers hold d.mu.
func (d *Driver) unpublish(endpointID string) error {
	ep, ok := d.endpoints[endpointID]
	if !ok || len(ep.Ports) == 0 {
		return nil
	}
	ep.Ports = nil
	if err := d.applyFirewall(); err != nil {
		return err
	}
	return d.saveEndpoint(ep)
}

// boundPorts lists the bindings of every endpoint but except.
func (d *Driver) boundPorts(except string) []PortBinding {
	var all []PortBinding
	for id, ep := range d.endpoints {
		if id != except {
			all = append(all, ep.Ports...)
		}
	}
	return all
}
