package netmode

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// The options every mode takes.
const (
	OptMode        = "mode"
	OptMTU         = "com.docker.network.driver.mtu"
	OptIfacePrefix = "com.docker.network.container_iface_prefix"
	// OptSwarm is not for users: weft's AllocateNetwork sets it on every
	// swarm network, so each node knows its copy is one dockerd does not
	// persist (see ipam's MarkSwarmCopy).
	OptSwarm = "swarm"
)

// MTU bounds: 68 is IPv4's minimum link MTU, 1280 IPv6's.
const (
	MinMTU     = 68
	MinMTUIPv6 = 1280
	MaxMTU     = 65535
)

// DefaultIfacePrefix is the name dockerd gives the interface in the
// container (eth0, eth1...).
const DefaultIfacePrefix = "eth"

// Config is the configuration every mode shares. The network's record
// stores it in its "config" object, beside the mode's options.
type Config struct {
	Mode        string   `json:"mode"`
	MTU         int      `json:"mtu,omitempty"`
	IfacePrefix string   `json:"iface_prefix"`
	Internal    bool     `json:"internal"`
	IPv6        bool     `json:"ipv6"`
	IPv4Subnets []Subnet `json:"ipv4_subnets,omitempty"`
	IPv6Subnets []Subnet `json:"ipv6_subnets,omitempty"`
	// Swarm marks a swarm network's copy on this node (OptSwarm).
	Swarm bool `json:"swarm,omitempty"`
}

// Subnet is one IPAM pool of a network and its gateway, e.g. pool
// 10.1.0.0/24, gateway 10.1.0.1/24.
type Subnet struct {
	Pool    netip.Prefix `json:"pool"`
	Gateway netip.Prefix `json:"gateway,omitzero"`
}

// IPAMData is one pool IPAM allocated for a network: its prefix, gateway
// and reserved (--aux-address) addresses, as dockerd sends them.
type IPAMData struct {
	AddressSpace string
	Pool         string            // a CIDR, e.g. 10.1.0.0/24
	Gateway      string            // an address or a CIDR, "" for none
	AuxAddresses map[string]string // --aux-address NAME=ADDRESS
}

// NewConfig returns the defaults of a network of mode.
func NewConfig(mode string) Config {
	return Config{Mode: mode, IfacePrefix: DefaultIfacePrefix}
}

// SetOption applies one of the options every mode takes; known is false
// for any other option.
func (c *Config) SetOption(key, value string) (known bool, err error) {
	switch key {
	case OptMTU:
		mtu, perr := strconv.Atoi(value)
		if perr != nil || mtu < MinMTU || mtu > MaxMTU {
			return true, OptionError(key, value, fmt.Sprintf("use a whole number from %d to %d", MinMTU, MaxMTU))
		}
		c.MTU = mtu
	case OptIfacePrefix:
		// dockerd appends an index, so leave room for it.
		if err := ifname.Check(value + "0"); err != nil || !IsAlnum(value) {
			return true, OptionError(key, value, "use letters and digits, at most 14 characters")
		}
		c.IfacePrefix = value
	case OptSwarm:
		c.Swarm, err = ParseBool(key, value)
	default:
		return false, nil
	}
	return true, err
}

// SetSubnets checks the MTU against the address families and reads the
// pools and gateways IPAM allocated.
func (c *Config) SetSubnets(v4, v6 []IPAMData) error {
	if c.IPv6 && c.MTU != 0 && c.MTU < MinMTUIPv6 {
		return OptionError(OptMTU, strconv.Itoa(c.MTU), fmt.Sprintf("an IPv6 network needs at least %d", MinMTUIPv6))
	}
	var err error
	if c.IPv4Subnets, err = parseSubnets(v4, false); err != nil {
		return err
	}
	c.IPv6Subnets, err = parseSubnets(v6, true)
	return err
}

// CheckIPv6 refuses --ipv6 without an IPv6 subnet.
func (c *Config) CheckIPv6() error {
	if c.IPv6 && len(c.IPv6Subnets) == 0 {
		return errdefs.Errorf(errdefs.Invalid, "--ipv6 needs an IPv6 subnet: add --subnet with an IPv6 prefix such as fd00:1::/64")
	}
	return nil
}

// parseSubnets reads the pools and gateways IPAM allocated.
func parseSubnets(data []IPAMData, v6 bool) ([]Subnet, error) {
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	var subnets []Subnet
	for _, d := range data {
		pool, err := netip.ParsePrefix(d.Pool)
		if err != nil || pool.Addr().Is6() != v6 {
			return nil, errdefs.Errorf(errdefs.Invalid, "IPAM returned %q as an %s subnet, which is not an %s CIDR", d.Pool, family, family)
		}
		pool = pool.Masked()
		s := Subnet{Pool: pool}
		if d.Gateway != "" {
			gw, err := ParseAddrOrPrefix(d.Gateway, pool.Bits())
			if err != nil {
				return nil, errdefs.Errorf(errdefs.Invalid, "invalid --gateway %q: %v", d.Gateway, err)
			}
			if !pool.Contains(gw.Addr()) {
				return nil, errdefs.Errorf(errdefs.Invalid, "--gateway %s is outside --subnet %s", gw.Addr(), pool)
			}
			s.Gateway = netip.PrefixFrom(gw.Addr(), pool.Bits())
		}
		subnets = append(subnets, s)
	}
	for i := range subnets {
		for j := range i {
			if subnets[i].Pool.Overlaps(subnets[j].Pool) {
				return nil, errdefs.Errorf(errdefs.Invalid, "subnets %s and %s overlap", subnets[j].Pool, subnets[i].Pool)
			}
		}
	}
	return subnets, nil
}

// Subnets lists the network's IPv4 then IPv6 subnets.
func (c *Config) Subnets() []Subnet {
	return append(append([]Subnet{}, c.IPv4Subnets...), c.IPv6Subnets...)
}

// SubnetOf returns the network's subnet holding addr.
func (c *Config) SubnetOf(addr netip.Addr) (Subnet, bool) {
	subnets := c.IPv4Subnets
	if addr.Is6() {
		subnets = c.IPv6Subnets
	}
	for _, s := range subnets {
		if s.Pool.Contains(addr) {
			return s, true
		}
	}
	return Subnet{}, false
}

// Gateways returns the gateway addresses of the subnets holding the
// endpoint's addresses (invalid where there is none).
func (c *Config) Gateways(ep *Endpoint) (v4, v6 netip.Addr) {
	if s, ok := c.SubnetOf(ep.IPv4.Addr()); ep.IPv4.IsValid() && ok && s.Gateway.IsValid() {
		v4 = s.Gateway.Addr()
	}
	if s, ok := c.SubnetOf(ep.IPv6.Addr()); ep.IPv6.IsValid() && ok && s.Gateway.IsValid() {
		v6 = s.Gateway.Addr()
	}
	return v4, v6
}

// ParseAddrOrPrefix accepts "10.1.0.1" or "10.1.0.1/24"; a bare address
// gets bits.
func ParseAddrOrPrefix(s string, bits int) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, bits), nil
}
