package driver

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/leftover"
	"github.com/weftnet/weft/internal/netmode"
)

// CreateEndpoint creates the link the container will get: a veth pair on the
// network's bridge, or a macvlan/ipvlan child of its parent. The link stays
// in the host namespace until dockerd moves it in after Join. When dockerd
// gave no MAC (and the mode lets weft choose one), weft picks one and
// returns it.
func (d *Driver) CreateEndpoint(req *EndpointRequest) (_ *EndpointReply, retErr error) {
	log := d.epLog(req.NetworkID, req.EndpointID)
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.networks[req.NetworkID]
	if !ok {
		return nil, errdefs.Errorf(ErrNotFound, "network %s is not a weft network on this host", ifname.ShortID(req.NetworkID))
	}
	ep, err := newEndpoint(n, req)
	if err != nil {
		return nil, err
	}
	if old, ok := d.endpoints[ep.ID]; ok {
		// dockerd retried after a crash: the first attempt may be complete.
		if exists, _ := d.nl.LinkExists(old.Link); exists {
			return endpointReply(req, old), nil
		}
		ep = old
	}
	if err := d.saveEndpoint(ep); err != nil {
		return nil, err
	}
	d.endpoints[ep.ID] = ep
	h := d.host(n)
	defer func() {
		if retErr != nil {
			delete(d.endpoints, ep.ID)
			n.mode.DeleteEndpoint(h, &ep.Endpoint)
			if err := d.deleteEndpointRecord(ep.ID); err != nil {
				log.WithError(err).Warn("could not remove the record of an endpoint that failed to create")
			}
		}
	}()
	// A leftover link from a crash in the middle of this call is replaced.
	n.mode.DeleteEndpoint(h, &ep.Endpoint)
	if err := n.mode.CreateEndpoint(h, &ep.Endpoint); err != nil {
		return nil, err
	}
	log.WithFields(map[string]any{"ipv4": ep.IPv4, "ipv6": ep.IPv6, "link": ep.Link}).Info("endpoint created")
	return endpointReply(req, ep), nil
}

// newEndpoint validates the addresses dockerd sends; the mode names the
// links and picks the MAC.
func newEndpoint(n *Network, req *EndpointRequest) (*Endpoint, error) {
	ep := &Endpoint{Endpoint: netmode.Endpoint{ID: req.EndpointID, NetworkID: n.ID}, Exposed: req.Exposed}
	var err error
	if ep.IPv4, err = endpointAddress(n, req.Address, false); err != nil {
		return nil, err
	}
	if ep.IPv6, err = endpointAddress(n, req.AddressIPv6, true); err != nil {
		return nil, err
	}
	if req.IfName != "" {
		// dockerd renames the link to it in the container: a name the
		// kernel refuses would fail the container's start, later and
		// less clearly.
		if err := ifname.Check(req.IfName); err != nil {
			return nil, errdefs.Errorf(ErrInvalid, "invalid value for endpoint option %s: %v", OptIfName, err)
		}
		ep.IfName = req.IfName
	}
	if err := n.mode.NewEndpoint(&ep.Endpoint, req.MAC); err != nil {
		return nil, err
	}
	return ep, nil
}

// endpointAddress parses an address from IPAM and checks it belongs to n.
func endpointAddress(n *Network, s string, v6 bool) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is6() != v6 {
		return netip.Prefix{}, errdefs.Errorf(ErrInvalid, "invalid endpoint address %q", s)
	}
	if _, ok := n.Config.SubnetOf(p.Addr()); !ok {
		return netip.Prefix{}, errdefs.Errorf(ErrInvalid, "address %s is outside the subnets of network %s", p.Addr(), ifname.ShortID(n.ID))
	}
	return p, nil
}

// endpointReply fills only what dockerd left empty: echoing a field it set
// makes it fail with "driver modified interface".
func endpointReply(req *EndpointRequest, ep *Endpoint) *EndpointReply {
	if req.MAC != "" {
		return &EndpointReply{}
	}
	return &EndpointReply{MAC: ep.MAC}
}

// DeleteEndpoint removes the veth pair, the endpoint's published ports and
// its record, the record first (see DeleteNetwork). An unknown endpoint is
// deleted successfully.
func (d *Driver) DeleteEndpoint(networkID, endpointID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[endpointID]
	if !ok {
		d.epLog(networkID, endpointID).Info("delete of an unknown endpoint")
		leftover.RemoveMarked(d.nl, endpointID, endpointLinkNames(endpointID), d.log)
		return d.deleteEndpointRecord(endpointID)
	}
	if err := d.deleteEndpointRecord(ep.ID); err != nil {
		return fmt.Errorf("endpoint %s is kept: its record cannot be removed: %w", ifname.ShortID(ep.ID), err)
	}
	delete(d.endpoints, ep.ID)
	d.deleteEndpointLinks(ep)
	if len(ep.Ports) > 0 {
		if err := d.applyFirewall(); err != nil {
			d.epLog(ep.NetworkID, ep.ID).WithError(err).Warn("could not remove published ports")
		}
	}
	d.epLog(ep.NetworkID, ep.ID).Info("endpoint deleted")
	return nil
}

// deleteEndpointLinks removes what CreateEndpoint made; when the network is
// gone, its mode is unknown and the links are deleted by name.
func (d *Driver) deleteEndpointLinks(ep *Endpoint) {
	if n, ok := d.networks[ep.NetworkID]; ok {
		n.mode.DeleteEndpoint(d.host(n), &ep.Endpoint)
		return
	}
	netmode.DeleteLinks(host{d: d, id: ep.NetworkID}, &ep.Endpoint, ep.HostVeth, ep.Link)
}

// EndpointInfo reports an endpoint's published and exposed ports, as
// Docker's bridge does; an unknown endpoint has none.
func (d *Driver) EndpointInfo(_, endpointID string) (EndpointInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[endpointID]
	if !ok {
		return EndpointInfo{}, nil
	}
	return EndpointInfo{Ports: ep.Ports, Exposed: ep.Exposed}, nil
}
