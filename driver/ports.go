package driver

import (
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/portmap"
)

// ProgramExternalConnectivity publishes the container's ports (docker run
// -p) for the families this gateway endpoint serves (see portmap.Publish).
func (d *Driver) ProgramExternalConnectivity(_, endpointID string, c Connectivity) error {
	if c.Ports == nil {
		return nil
	}
	if err := portmap.Check(c.Ports); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[endpointID]
	if len(c.Ports) == 0 && (!ok || len(ep.Ports) == 0) {
		// dockerd sends an empty list for every container without -p: with
		// nothing published before either, there is nothing to change, and
		// skipping the rule check and the store write saves ~5 ms per start.
		return nil
	}
	if !ok {
		return errdefs.Errorf(ErrNotFound, "endpoint %s is not known to weft", ifname.ShortID(endpointID))
	}
	n := d.networks[ep.NetworkID]
	if n == nil || n.Config.Internal || bridgeOf(n) == nil {
		// Docker publishes nothing from internal networks, nor from macvlan
		// and ipvlan ones, whose containers are on the LAN themselves.
		return nil
	}
	req := portmap.Request{Ports: c.Ports, NoProxy6to4: c.NoProxy6to4, Current: ep.Ports, Endpoint: portmap.Endpoint{
		IPv4: ep.IPv4.IsValid(), IPv6: ep.IPv6.IsValid(), Proxy6to4: d.proxies != nil, Default: bridgeOf(n).Options.HostBindingIPv4,
	}}
	var siblings []*Endpoint // the container's other endpoints
	for id, other := range d.endpoints {
		switch {
		case id == ep.ID:
		case ep.Sandbox != "" && other.Sandbox == ep.Sandbox:
			siblings = append(siblings, other)
			req.Siblings = append(req.Siblings, other.Ports)
		default:
			req.Taken = append(req.Taken, other.Ports...)
		}
	}
	plan, err := portmap.Publish(req)
	if err != nil {
		return err
	}
	if err := d.commitPorts(ep, plan, siblings); err != nil {
		return err
	}
	// Skipped: no address of the family here, or another endpoint is the
	// container's gateway for it.
	d.epLog(ep.NetworkID, ep.ID).WithField("ports", plan.Ports).WithField("skipped", plan.Skipped).Info("published")
	return nil
}

// commitPorts makes plan the ports of ep and its siblings, in the kernel
// and the store, or puts back what was. Callers hold d.mu.
func (d *Driver) commitPorts(ep *Endpoint, plan portmap.Plan, siblings []*Endpoint) error {
	changed, next := append([]*Endpoint{ep}, siblings...), append([][]PortBinding{plan.Ports}, plan.Siblings...)
	previous := make([][]PortBinding, len(changed))
	for i, e := range changed {
		previous[i], e.Ports = e.Ports, next[i]
	}
	undo := func() {
		for i, e := range changed {
			e.Ports = previous[i]
		}
		if err := d.applyFirewall(); err != nil {
			d.epLog(ep.NetworkID, ep.ID).WithError(err).Warn("could not put back the published ports")
		}
	}
	err := d.applyFirewall()
	for _, e := range changed {
		if err == nil {
			err = d.saveEndpoint(e)
		}
	}
	if err != nil {
		undo()
	}
	return err
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

// forwards lists the ports the proxies serve. Callers hold d.mu.
func (d *Driver) forwards() []portmap.Forward {
	var out []portmap.Forward
	for _, ep := range d.endpoints { // only bridge endpoints have ports
		out = append(out, portmap.Forwards(ep.Ports, ep.IPv4.Addr(), ep.IPv6.IsValid())...)
	}
	return out
}
