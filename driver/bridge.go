package driver

import (
	"errors"
	"fmt"
	"net"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/netmode"
)

// bridgeBackend builds bridge networks: a Linux bridge holding the gateway
// addresses, a veth pair per container, and iptables rules (firewall).
type bridgeBackend struct{ d *Driver }

func (b bridgeBackend) ensureNetwork(n *Network) error {
	if err := b.enableForwarding(n); err != nil {
		return err
	}
	spec := bridge.Spec{Name: n.Config.Bridge, MTU: n.Config.MTU, Seed: n.bridgeSeed()}
	// Internal networks keep their gateway address too: the containers reach
	// nothing beyond the bridge, but the host can still reach them.
	for _, s := range n.Config.subnets() {
		if s.Gateway.IsValid() {
			spec.Addresses = append(spec.Addresses, s.Gateway)
		}
	}
	if err := bridge.Ensure(b.d.nl, spec); err != nil {
		if errors.Is(err, bridge.ErrExists) {
			return errdefs.Errorf(ErrConflict, "invalid value %q for option %s: %v", n.Config.Bridge, OptBridgeName, err)
		}
		return err
	}
	return b.tune(n)
}

// tune sets the sysctls the network's rules rely on.
func (b bridgeBackend) tune(n *Network) error {
	if b.d.sysctls == nil {
		return nil
	}
	if len(n.Config.IPv4Subnets) > 0 && !n.Config.Internal {
		// Published ports answer on 127.0.0.1 too, as Docker's do: the
		// DNATed packet from loopback must be routable onto the bridge.
		if err := b.d.sysctls.Set("net/ipv4/conf/"+n.Config.Bridge+"/route_localnet", "1"); err != nil {
			return err
		}
	}
	if !n.Config.ICC {
		// Traffic between two ports of one bridge meets iptables only when
		// br_netfilter hands it over; without that ICC off would do nothing.
		keys := []string{"net/bridge/bridge-nf-call-iptables"}
		if len(n.Config.IPv6Subnets) > 0 {
			keys = append(keys, "net/bridge/bridge-nf-call-ip6tables")
		}
		for _, key := range keys {
			if err := b.d.sysctls.Set(key, "1"); err != nil {
				return errdefs.Errorf(ErrInvalid, "%s=false needs the br_netfilter kernel module (modprobe br_netfilter): %v", OptICC, err)
			}
		}
	}
	return nil
}

// enableForwarding turns on routing for the address families n uses; hosts
// running Docker already route IPv4, IPv6 forwarding is often off.
func (b bridgeBackend) enableForwarding(n *Network) error {
	if b.d.sysctls == nil || n.Config.Internal {
		return nil
	}
	if len(n.Config.IPv4Subnets) > 0 {
		if err := b.d.sysctls.Set("net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
	}
	if len(n.Config.IPv6Subnets) > 0 {
		if err := b.d.sysctls.Set("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return fmt.Errorf("enable IPv6 forwarding: %w", err)
		}
	}
	return nil
}

func (b bridgeBackend) deleteNetwork(n *Network) {
	if err := b.d.nl.DeleteLink(n.Config.Bridge); err != nil {
		b.d.netLog(n.ID).WithError(err).Warn("could not delete bridge")
	}
}

func (b bridgeBackend) nameEndpoint(_ *Network, ep *Endpoint) {
	ep.HostVeth, ep.Link = bridge.VethNames(ep.ID)
}

func (b bridgeBackend) createEndpoint(n *Network, ep *Endpoint) error {
	mac, _ := net.ParseMAC(ep.MAC)
	return bridge.CreateVeth(b.d.nl, bridge.VethSpec{
		Host: ep.HostVeth, Container: ep.Link, Bridge: n.Config.Bridge, MTU: n.Config.MTU, MAC: mac,
	})
}

func (b bridgeBackend) deleteEndpoint(_ *Network, ep *Endpoint) {
	// Deleting one end of a veth pair deletes the other, wherever it is.
	b.d.deleteLinks(ep, ep.HostVeth, ep.Link)
}

func (b bridgeBackend) join(n *Network, ep *Endpoint) netmode.JoinInfo {
	if n.Config.Internal {
		return netmode.JoinInfo{}
	}
	var j netmode.JoinInfo
	j.Gateway, j.GatewayIPv6 = n.gateways(ep)
	return j
}
