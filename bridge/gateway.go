package bridge

import (
	"net/netip"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/netmode"
)

// How a bridge network meets the world beyond the host, with Docker's
// semantics (its bridge driver since 27 and 28):
//
//   - gateway_mode_ipv4/_ipv6 (per family): nat, the default, masquerades
//     out and reaches containers through published host ports only;
//     nat-unprotected also lets any host with a route to the subnet reach
//     every container port directly; routed translates nothing and opens
//     published ports (and ICMP) at the container's own address; isolated,
//     for internal networks only, leaves the bridge without an address of
//     the family, so the host is cut off from the containers both ways.
//   - trusted_host_interfaces: host interfaces whose traffic may reach
//     published ports at the container's own address, as the bridge may.
//   - inhibit_ipv4: the bridge gets no IPv4 address, but the containers
//     still route through the gateway: something else on the bridge (a
//     router) answers for it.
//   - host_ipv4/host_ipv6: the source address outbound traffic gets (SNAT)
//     instead of masquerading's choice.

// SkipGateways says which families need no gateway address, as Docker's
// bridge answers a GwAllocCheck: an isolated family has none, nor has the
// IPv4 of an internal network whose bridge gets no IPv4 address.
func (n *Network) SkipGateways() (v4, v6 bool) {
	o := n.Options
	return o.GatewayModeIPv4 == firewall.GatewayIsolated || (o.InhibitIPv4 && n.Config.Internal),
		o.GatewayModeIPv6 == firewall.GatewayIsolated
}

// onBridge says whether the bridge carries gateway address gw.
func (n *Network) onBridge(gw netip.Addr) bool {
	if gw.Is4() {
		return !n.Options.InhibitIPv4 && n.Options.GatewayModeIPv4 != firewall.GatewayIsolated
	}
	return n.Options.GatewayModeIPv6 != firewall.GatewayIsolated
}

// isolateIPv6 keeps an isolated IPv6 family's bridge without even a
// link-local address, which the kernel would give it otherwise.
func (n *Network) isolateIPv6(h netmode.Host) error {
	if n.Options.GatewayModeIPv6 != firewall.GatewayIsolated || len(n.Config.IPv6Subnets) == 0 {
		return nil
	}
	return h.Sysctl("net/ipv6/conf/"+n.Options.Bridge+"/disable_ipv6", "1")
}

// gatewayFirewall adds the gateway options to what the firewall knows of
// the network.
func (n *Network) gatewayFirewall(fn *firewall.Network) {
	fn.GatewayModeIPv4, fn.GatewayModeIPv6 = n.Options.GatewayModeIPv4, n.Options.GatewayModeIPv6
	fn.TrustedInterfaces = n.Options.Trusted
	fn.HostIPv4, fn.HostIPv6 = n.Options.HostIPv4, n.Options.HostIPv6
}
