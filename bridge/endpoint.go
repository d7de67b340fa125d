package bridge

import (
	"net"

	"github.com/weftnet/weft/internal/netmode"
)

// NewEndpoint names the endpoint's veth pair and gives it the MAC asked
// for or one derived from its address.
func (n *Network) NewEndpoint(ep *netmode.Endpoint, mac string) error {
	ep.HostVeth, ep.Link = VethNames(ep.ID)
	return netmode.ChooseMAC(ep, mac)
}

// CreateEndpoint makes the endpoint's veth pair on the bridge.
func (n *Network) CreateEndpoint(h netmode.Host, ep *netmode.Endpoint) error {
	mac, _ := net.ParseMAC(ep.MAC)
	return CreateVeth(h.NL(), VethSpec{
		Host: ep.HostVeth, Container: ep.Link, Bridge: n.Options.Bridge, MTU: n.Config.MTU, MAC: mac,
		Isolated: !n.Options.ICC,
	})
}

// DeleteEndpoint deletes the veth pair: deleting one end deletes the
// other, wherever it is.
func (n *Network) DeleteEndpoint(h netmode.Host, ep *netmode.Endpoint) {
	netmode.DeleteLinks(h, ep, ep.HostVeth, ep.Link)
}

// Join routes the container through the bridge's gateway addresses; an
// internal network's containers get none.
func (n *Network) Join(ep *netmode.Endpoint) netmode.JoinInfo {
	var j netmode.JoinInfo
	if !n.Config.Internal {
		j.Gateway, j.GatewayIPv6 = n.Config.Gateways(ep)
	}
	return j
}
