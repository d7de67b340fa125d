// Package bridge is weft's bridge network mode: a Linux bridge holding the
// gateway addresses, a veth pair per container on it, and the kernel
// settings its firewall rules rely on. vxlan networks are bridge networks
// too, with a VXLAN device on the bridge. Every netlink call goes through
// internal/nl.
package bridge

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// Network is a bridge network's part that bridge mode owns: its options,
// and the bridge, veth pairs and kernel settings it builds from them.
type Network struct {
	*netmode.Network
	Options Options
}

// Bridged is a network whose containers hang off a weft bridge: a bridge
// network, or a vxlan network built on one. The driver gives them firewall
// rules and published ports.
type Bridged interface {
	Bridge() *Network
}

// New returns a bridge network with the defaults of its options.
func New(base *netmode.Network) *Network {
	return &Network{Network: base, Options: Options{Bridge: Name(base.ID), ICC: true, Masquerade: true}}
}

// Bridge returns n itself.
func (n *Network) Bridge() *Network { return n }

// Record returns what the network's record stores of bridge mode: the
// options (no state).
func (n *Network) Record() (options []any, state any) { return []any{&n.Options}, nil }

// CheckNew refuses a bridge name another weft network or any other link
// already has.
func (n *Network) CheckNew(h netmode.Host, _, _ []netmode.IPAMData) error {
	name := n.Options.Bridge
	for _, o := range h.Others() {
		if b, ok := o.(Bridged); ok && b.Bridge().Options.Bridge == name {
			return errdefs.Errorf(errdefs.Conflict, "invalid value %q for option %s: weft network %s already uses that bridge", name, OptName, ifname.ShortID(b.Bridge().ID))
		}
	}
	if exists, err := h.NL().LinkExists(name); err != nil {
		return err
	} else if exists {
		return errdefs.Errorf(errdefs.Conflict, "invalid value %q for option %s: a network interface with that name already exists on this host; choose another name", name, OptName)
	}
	return nil
}

// Ensure makes the bridge exist with its gateway addresses, and the kernel
// settings the network's rules rely on; it is idempotent, so create, retry
// and restore all use it. The bridge's MAC is seeded by the network id.
func (n *Network) Ensure(h netmode.Host) error { return n.EnsureBridge(h, n.ID) }

// EnsureBridge is Ensure with the seed of the bridge's MAC (see Spec.Seed).
func (n *Network) EnsureBridge(h netmode.Host, seed string) error {
	if err := n.enableForwarding(h); err != nil {
		return err
	}
	spec := Spec{Name: n.Options.Bridge, MTU: n.Config.MTU, Seed: seed}
	// Internal networks keep their gateway address too: the containers reach
	// nothing beyond the bridge, but the host can still reach them. Unless
	// the user said otherwise (onBridge: isolated, inhibit_ipv4).
	for _, s := range n.Config.Subnets() {
		if s.Gateway.IsValid() && n.onBridge(s.Gateway.Addr()) {
			spec.Addresses = append(spec.Addresses, s.Gateway)
		}
	}
	if err := Ensure(h.NL(), spec); err != nil {
		if errors.Is(err, ErrExists) {
			return errdefs.Errorf(errdefs.Conflict, "invalid value %q for option %s: %v", n.Options.Bridge, OptName, err)
		}
		return err
	}
	return n.tune(h)
}

// tune sets the sysctls the network's rules rely on.
func (n *Network) tune(h netmode.Host) error {
	if err := n.isolateIPv6(h); err != nil {
		return err
	}
	if len(n.Config.IPv4Subnets) > 0 && !n.Config.Internal {
		// Published ports answer on 127.0.0.1 too, as Docker's do: the
		// DNATed packet from loopback must be routable onto the bridge.
		if err := h.Sysctl("net/ipv4/conf/"+n.Options.Bridge+"/route_localnet", "1"); err != nil {
			return err
		}
	}
	if !n.Options.ICC {
		// icc=false is the containers' isolated bridge ports (CreateVeth).
		// Where br_netfilter is loaded, bridged traffic also meets weft's
		// iptables rules, which drop it a second time. Where it is not
		// (Docker 27.3+ loads it only for its own icc=false networks), the
		// keys do not exist and the ports alone do it: loading the module
		// would need CAP_SYS_MODULE.
		keys := []string{"net/bridge/bridge-nf-call-iptables"}
		if len(n.Config.IPv6Subnets) > 0 {
			keys = append(keys, "net/bridge/bridge-nf-call-ip6tables")
		}
		for _, key := range keys {
			if err := h.Sysctl(key, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s=false: set %s: %w", OptICC, key, err)
			}
		}
	}
	return nil
}

// enableForwarding turns on routing for the address families n uses; hosts
// running Docker already route IPv4, IPv6 forwarding is often off.
func (n *Network) enableForwarding(h netmode.Host) error {
	if n.Config.Internal {
		return nil
	}
	if len(n.Config.IPv4Subnets) > 0 {
		if err := h.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
	}
	if len(n.Config.IPv6Subnets) > 0 {
		if err := h.Sysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return fmt.Errorf("enable IPv6 forwarding: %w", err)
		}
	}
	return nil
}

// Teardown deletes the bridge. Failures are logged: a delete always goes
// through.
func (n *Network) Teardown(h netmode.Host) {
	if err := h.NL().DeleteLink(n.Options.Bridge); err != nil {
		h.Log().WithError(err).Warn("could not delete bridge")
	}
}

// LinksMade names the links weft made for the network: its bridge.
func (n *Network) LinksMade() []string { return []string{n.Options.Bridge} }

// Firewall is what the firewall needs to know of the network.
func (n *Network) Firewall() firewall.Network {
	fn := firewall.Network{
		Bridge:     n.Options.Bridge,
		ICC:        n.Options.ICC,
		Masquerade: n.Options.Masquerade,
		Internal:   n.Config.Internal,
	}
	for _, s := range n.Config.Subnets() {
		fn.Subnets = append(fn.Subnets, s.Pool)
		// Also where the bridge does not hold it (inhibit_ipv4): whoever
		// does, traffic to it stays tracked.
		if s.Gateway.IsValid() {
			fn.Gateways = append(fn.Gateways, s.Gateway.Addr())
		}
	}
	n.gatewayFirewall(&fn)
	return fn
}
