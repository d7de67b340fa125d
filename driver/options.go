package driver

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/macvlan"
	"github.com/weftnet/weft/vxlan"
)

// Option names a user types after `docker network create -o`. Docker's own
// bridge option names are accepted verbatim.
const (
	OptMode            = "mode"
	OptBridgeName      = "com.docker.network.bridge.name"
	OptICC             = "com.docker.network.bridge.enable_icc"
	OptMasquerade      = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBindingIPv4 = "com.docker.network.bridge.host_binding_ipv4"
	OptMTU             = "com.docker.network.driver.mtu"
	OptIfacePrefix     = "com.docker.network.container_iface_prefix"
	OptParent          = macvlan.OptParent
	OptMacvlanMode     = "macvlan_mode"
	OptIpvlanMode      = "ipvlan_mode"
	OptIpvlanFlag      = "ipvlan_flag"
	OptHostShim        = "host_shim"
	OptParentSubnet    = "parent_subnet"
	OptVNI             = "vni"
	OptVXLANPort       = "vxlan_port"
	OptPeers           = "peers"
	OptGroup           = "group"
	OptUnderlay        = "underlay"
	OptEncrypted       = "encrypted"
	OptEncryptionKey   = "encryption_key"
	// OptSwarm is not for users: weft's AllocateNetwork sets it on every
	// swarm network, so each node knows its copy is one dockerd does not
	// persist (see ipam's MarkSwarmCopy).
	OptSwarm = "swarm"
)

// Network modes.
const (
	ModeBridge  = "bridge"
	ModeMacvlan = "macvlan"
	ModeIpvlan  = "ipvlan"
	ModeVXLAN   = "vxlan"
)

var acceptedModes = []string{ModeBridge, ModeMacvlan, ModeIpvlan, ModeVXLAN}

// modeOptions lists the -o options each mode accepts.
var modeOptions = map[string][]string{
	ModeBridge:  {OptMode, OptBridgeName, OptICC, OptMasquerade, OptHostBindingIPv4, OptMTU, OptIfacePrefix},
	ModeMacvlan: {OptMode, OptParent, OptParentSubnet, OptMacvlanMode, OptHostShim, OptMTU, OptIfacePrefix},
	ModeIpvlan:  {OptMode, OptParent, OptParentSubnet, OptIpvlanMode, OptIpvlanFlag, OptHostShim, OptMTU, OptIfacePrefix},
	ModeVXLAN: {OptMode, OptVNI, OptVXLANPort, OptPeers, OptGroup, OptUnderlay, OptEncrypted, OptEncryptionKey,
		OptBridgeName, OptICC, OptMasquerade, OptHostBindingIPv4, OptMTU, OptIfacePrefix},
}

func init() {
	for mode := range modeOptions {
		modeOptions[mode] = append(modeOptions[mode], OptSwarm)
	}
}

// MTU bounds: 68 is IPv4's minimum link MTU, 1280 IPv6's.
const (
	minMTU     = 68
	minMTUIPv6 = 1280
	maxMTU     = 65535
)

// defaultIfacePrefix is the name dockerd gives the interface in the container (eth0, eth1...).
const defaultIfacePrefix = "eth"

// NetworkConfig is a network's validated configuration, stored as is.
type NetworkConfig struct {
	Mode            string     `json:"mode"`
	Bridge          string     `json:"bridge"`
	ICC             bool       `json:"icc"`
	Masquerade      bool       `json:"masquerade"`
	HostBindingIPv4 netip.Addr `json:"host_binding_ipv4,omitzero"`
	MTU             int        `json:"mtu,omitempty"`
	IfacePrefix     string     `json:"iface_prefix"`
	Internal        bool       `json:"internal"`
	IPv6            bool       `json:"ipv6"`
	IPv4Subnets     []Subnet   `json:"ipv4_subnets,omitempty"`
	IPv6Subnets     []Subnet   `json:"ipv6_subnets,omitempty"`

	// macvlan and ipvlan
	Parent       string       `json:"parent,omitempty"` // as the user gave it (a name or a name pattern); "" for none
	ParentSubnet netip.Prefix `json:"parent_subnet,omitzero"`
	MacvlanMode  string       `json:"macvlan_mode,omitempty"`
	IpvlanMode   string       `json:"ipvlan_mode,omitempty"`
	IpvlanFlag   string       `json:"ipvlan_flag,omitempty"`
	HostShim     netip.Addr   `json:"host_shim,omitzero"`

	// vxlan
	VNI       int          `json:"vni,omitempty"`
	VXLANPort int          `json:"vxlan_port,omitempty"`
	Peers     []netip.Addr `json:"peers,omitempty"`
	Group     netip.Addr   `json:"group,omitzero"`
	Underlay  string       `json:"underlay,omitempty"`
	Encrypted bool         `json:"encrypted,omitempty"`
	// EncryptionKey is the network's ESP master key: the operator's
	// (standalone hosts) or the one the swarm manager's weft made.
	EncryptionKey string `json:"encryption_key,omitempty"`

	// Swarm marks a swarm network's copy on this node (OptSwarm).
	Swarm bool `json:"swarm,omitempty"`
}

// Subnet is one IPAM pool of a network and its gateway, e.g. pool
// 10.1.0.0/24, gateway 10.1.0.1/24.
type Subnet struct {
	Pool    netip.Prefix `json:"pool"`
	Gateway netip.Prefix `json:"gateway,omitzero"`
}

// optionError names the option, the value and what is accepted.
func optionError(opt, value, accepted string) error { return netmode.OptionError(opt, value, accepted) }

// parseNetworkConfig turns CreateNetwork's request into a NetworkConfig,
// rejecting anything a user could have typed wrong.
func parseNetworkConfig(req *NetworkRequest) (NetworkConfig, error) {
	// Link names are made from the id: one with a space or a slash would
	// make names the kernel refuses.
	if !ifname.ValidID(req.NetworkID) {
		return NetworkConfig{}, errdefs.Errorf(ErrInvalid, "network id %q: expected up to %d letters, digits, '-', '_' or '.', as dockerd's ids are", req.NetworkID, ifname.MaxIDLen)
	}
	cfg := NetworkConfig{
		Mode:        ModeBridge,
		Bridge:      bridge.Name(req.NetworkID),
		ICC:         true,
		Masquerade:  true,
		IfacePrefix: defaultIfacePrefix,
	}
	var err error
	cfg.IPv6, cfg.Internal = req.IPv6, req.Internal
	generic := req.Options
	if mode, ok := generic[OptMode]; ok {
		if !slices.Contains(acceptedModes, mode) {
			return cfg, optionError(OptMode, mode, "accepted modes are "+strings.Join(acceptedModes, ", "))
		}
		cfg.Mode = mode
	}
	switch cfg.Mode {
	case ModeMacvlan:
		cfg.MacvlanMode = "bridge"
	case ModeIpvlan:
		cfg.IpvlanMode, cfg.IpvlanFlag = "l2", "bridge"
	}
	for _, key := range slices.Sorted(maps.Keys(generic)) {
		value := generic[key]
		if !slices.Contains(modeOptions[cfg.Mode], key) {
			return cfg, unknownOption(key, cfg.Mode)
		}
		switch key {
		case OptBridgeName:
			if err := ifname.CheckNew(value); err != nil {
				return cfg, errdefs.Errorf(ErrInvalid, "invalid value for option %s: %v", key, err)
			}
			cfg.Bridge = value
		case OptICC:
			if cfg.ICC, err = parseBool(key, value); err != nil {
				return cfg, err
			}
		case OptMasquerade:
			if cfg.Masquerade, err = parseBool(key, value); err != nil {
				return cfg, err
			}
		case OptSwarm:
			if cfg.Swarm, err = parseBool(key, value); err != nil {
				return cfg, err
			}
		case OptHostBindingIPv4:
			ip, perr := netip.ParseAddr(value)
			if perr != nil || !ip.Is4() {
				return cfg, optionError(key, value, "use an IPv4 address of this host, such as 0.0.0.0 or 192.0.2.10")
			}
			if !ip.IsUnspecified() {
				cfg.HostBindingIPv4 = ip
			}
		case OptMTU:
			mtu, perr := strconv.Atoi(value)
			if perr != nil || mtu < minMTU || mtu > maxMTU {
				return cfg, optionError(key, value, fmt.Sprintf("use a whole number from %d to %d", minMTU, maxMTU))
			}
			cfg.MTU = mtu
		case OptIfacePrefix:
			// dockerd appends an index, so leave room for it.
			if err := ifname.Check(value + "0"); err != nil || !isAlnum(value) {
				return cfg, optionError(key, value, "use letters and digits, at most 14 characters")
			}
			cfg.IfacePrefix = value
		case OptParent:
			if _, err := macvlan.ParseParent(value); err != nil {
				return cfg, err
			}
			cfg.Parent = value
		case OptParentSubnet:
			p, perr := netip.ParsePrefix(value)
			if perr != nil {
				return cfg, optionError(key, value, "use the CIDR of the LAN the parent interface sits on, such as 192.0.2.0/24")
			}
			cfg.ParentSubnet = p.Masked()
		case OptMacvlanMode:
			if _, ok := macvlan.MacvlanModes[value]; !ok {
				return cfg, optionError(key, value, "use "+macvlan.Names(macvlan.MacvlanModes))
			}
			cfg.MacvlanMode = value
		case OptIpvlanMode:
			if _, ok := macvlan.IpvlanModes[value]; !ok {
				return cfg, optionError(key, value, "use "+macvlan.Names(macvlan.IpvlanModes))
			}
			cfg.IpvlanMode = value
		case OptIpvlanFlag:
			if _, ok := macvlan.IpvlanFlags[value]; !ok {
				return cfg, optionError(key, value, "use "+macvlan.Names(macvlan.IpvlanFlags))
			}
			cfg.IpvlanFlag = value
		case OptVNI:
			vni, perr := strconv.Atoi(value)
			if perr != nil || vni < 1 || vni > vxlan.MaxVNI {
				return cfg, optionError(key, value, fmt.Sprintf("use a whole number from 1 to %d", vxlan.MaxVNI))
			}
			cfg.VNI = vni
		case OptVXLANPort:
			port, perr := strconv.Atoi(value)
			if perr != nil || port < 1 || port > 65535 {
				return cfg, optionError(key, value, "use a UDP port from 1 to 65535 (the standard is 4789)")
			}
			cfg.VXLANPort = port
		case OptPeers:
			for _, p := range strings.Split(value, ",") {
				ip, perr := netip.ParseAddr(strings.TrimSpace(p))
				if perr != nil || !ip.Is4() {
					return cfg, optionError(key, value, "use the other hosts' IPv4 addresses separated by commas, such as 192.0.2.11,192.0.2.12")
				}
				cfg.Peers = append(cfg.Peers, ip)
			}
		case OptGroup:
			ip, perr := netip.ParseAddr(value)
			if perr != nil || !ip.Is4() || !ip.IsMulticast() {
				return cfg, optionError(key, value, "use an IPv4 multicast group, such as 239.1.1.1")
			}
			cfg.Group = ip
		case OptUnderlay:
			if err := ifname.Check(value); err != nil {
				return cfg, errdefs.Errorf(ErrInvalid, "invalid value for option %s: %v", key, err)
			}
			cfg.Underlay = value
		case OptEncrypted:
			if cfg.Encrypted, err = encryptedOption(value); err != nil {
				return cfg, err
			}
		case OptEncryptionKey:
			// The key itself is never echoed: errors end up in logs.
			if _, perr := esp.ParseKey(value); perr != nil {
				return cfg, errdefs.Errorf(ErrInvalid, "invalid value for option %s: %v", key, perr)
			}
			cfg.EncryptionKey = value
		case OptHostShim:
			ip, perr := netip.ParseAddr(value)
			if perr != nil {
				return cfg, optionError(key, value, "use an address of the network's subnet for the host, such as 192.0.2.250")
			}
			cfg.HostShim = ip
		}
	}
	if cfg.IPv6 && cfg.MTU != 0 && cfg.MTU < minMTUIPv6 {
		return cfg, optionError(OptMTU, strconv.Itoa(cfg.MTU), fmt.Sprintf("an IPv6 network needs at least %d", minMTUIPv6))
	}
	if cfg.IPv4Subnets, err = parseIPAMData(req.IPv4Data, false); err != nil {
		return cfg, err
	}
	if cfg.IPv6Subnets, err = parseIPAMData(req.IPv6Data, true); err != nil {
		return cfg, err
	}
	if !cfg.bridged() {
		cfg.Bridge = ""
	}
	if cfg.Mode == ModeVXLAN {
		if err := checkVXLAN(&cfg); err != nil {
			return cfg, err
		}
		if cfg.VNI == 0 {
			cfg.VNI = defaultVNI(req.NetworkID)
		}
		if cfg.VXLANPort == 0 {
			cfg.VXLANPort = vxlan.DefaultPort
		}
	}
	if err := checkHostShim(&cfg, req); err != nil {
		return cfg, err
	}
	if cfg.Parent != "" && cfg.ParentSubnet.IsValid() {
		return cfg, errdefs.Errorf(ErrInvalid, "options %s and %s exclude each other: name the parent, or the subnet it sits on", OptParent, OptParentSubnet)
	}
	if cfg.Internal {
		// As Docker's macvlan and ipvlan do: an internal network gets a
		// private placeholder parent, so nothing reaches the LAN.
		cfg.Parent, cfg.ParentSubnet = "", netip.Prefix{}
	}
	if cfg.IPv6 && len(cfg.IPv6Subnets) == 0 {
		return cfg, errdefs.Errorf(ErrInvalid, "--ipv6 needs an IPv6 subnet: add --subnet with an IPv6 prefix such as fd00:1::/64")
	}
	return cfg, nil
}

// subnets lists the network's IPv4 then IPv6 subnets.
func (c NetworkConfig) subnets() []Subnet {
	return append(append([]Subnet{}, c.IPv4Subnets...), c.IPv6Subnets...)
}

// bridged says whether the network's containers hang off a weft bridge
// (bridge and vxlan modes), with veths and firewall rules.
func (c NetworkConfig) bridged() bool { return c.Mode == ModeBridge || c.Mode == ModeVXLAN }

// checkVXLAN requires a way to find the other hosts, and a key for
// encryption.
func checkVXLAN(cfg *NetworkConfig) error {
	switch {
	case len(cfg.Peers) > 0 && cfg.Group.IsValid():
		return errdefs.Errorf(ErrInvalid, "options %s and %s exclude each other: list the peers, or name a multicast group", OptPeers, OptGroup)
	case cfg.Group.IsValid() && cfg.Underlay == "":
		return errdefs.Errorf(ErrInvalid, "option %s needs -o %s=IFACE, the interface the group is joined on", OptGroup, OptUnderlay)
	case cfg.EncryptionKey != "" && !cfg.Encrypted:
		return errdefs.Errorf(ErrInvalid, "option %s is only used with -o %s", OptEncryptionKey, OptEncrypted)
	case cfg.Encrypted && cfg.Group.IsValid():
		return errdefs.Errorf(ErrInvalid, "option %s works with -o %s or a swarm, not with a multicast %s: ESP keys are set up between pairs of hosts", OptEncrypted, OptPeers, OptGroup)
	case cfg.Encrypted && cfg.EncryptionKey == "" && len(cfg.Peers) > 0:
		return errdefs.Errorf(ErrInvalid, "option %s without a swarm needs -o %s=KEY, the same %d hex digits on every host (e.g. from `openssl rand -hex %d`)",
			OptEncrypted, OptEncryptionKey, 2*esp.KeyBytes, esp.KeyBytes)
	case cfg.Encrypted && cfg.EncryptionKey == "":
		return errdefs.Errorf(ErrInvalid, "option %s on a swarm network: the network came without a key, which the swarm manager's weft adds; install weft with SCOPE=global on the managers too", OptEncrypted)
	}
	return nil
}

// encryptedOption reads -o encrypted: given alone (an empty value, as with
// Docker's overlay) it means true.
func encryptedOption(value string) (bool, error) {
	if value == "" {
		return true, nil
	}
	return parseBool(OptEncrypted, value)
}

// defaultVNI derives a VNI from the network id, so every swarm node picks
// the same one for the same network.
func defaultVNI(networkID string) int {
	h := fnv.New32a()
	h.Write([]byte(networkID))
	return int(h.Sum32()%vxlan.MaxVNI) + 1
}

// unknownOption explains an option the mode does not take, naming the mode
// it belongs to when it is another mode's.
func unknownOption(key, mode string) error {
	for _, other := range acceptedModes {
		if other != mode && slices.Contains(modeOptions[other], key) {
			return errdefs.Errorf(ErrInvalid, "option %s applies to mode=%s, not mode=%s; mode=%s accepts: %s",
				key, other, mode, mode, strings.Join(modeOptions[mode], ", "))
		}
	}
	return errdefs.Errorf(ErrInvalid, "unknown option %q for weft %s networks; accepted options are: %s",
		key, mode, strings.Join(modeOptions[mode], ", "))
}

// checkHostShim requires the host's address on a macvlan or ipvlan network
// to lie in the network's subnet and to be reserved with --aux-address, so
// IPAM never hands it to a container.
func checkHostShim(cfg *NetworkConfig, req *NetworkRequest) error {
	if !cfg.HostShim.IsValid() {
		return nil
	}
	if cfg.Internal {
		return errdefs.Errorf(ErrInvalid, "option %s cannot be used with --internal: nothing outside an internal network reaches it", OptHostShim)
	}
	data, subnets := req.IPv4Data, cfg.IPv4Subnets
	if cfg.HostShim.Is6() {
		data, subnets = req.IPv6Data, cfg.IPv6Subnets
	}
	inside := false
	for _, s := range subnets {
		inside = inside || s.Pool.Contains(cfg.HostShim)
	}
	if !inside {
		return optionError(OptHostShim, cfg.HostShim.String(), "use an address inside the network's --subnet")
	}
	for _, d := range data {
		for _, aux := range d.AuxAddresses {
			if p, err := parseAddrOrPrefix(aux, 0); err == nil && p.Addr() == cfg.HostShim {
				return nil
			}
		}
	}
	return errdefs.Errorf(ErrInvalid,
		"option %s=%s: reserve the address with --aux-address host=%s as well, so no container is given it",
		OptHostShim, cfg.HostShim, cfg.HostShim)
}

func parseBool(key, value string) (bool, error) { return netmode.ParseBool(key, value) }

// parseIPAMData reads the pools and gateways IPAM allocated.
func parseIPAMData(data []IPAMData, v6 bool) ([]Subnet, error) {
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	var subnets []Subnet
	for _, d := range data {
		pool, err := netip.ParsePrefix(d.Pool)
		if err != nil || pool.Addr().Is6() != v6 {
			return nil, errdefs.Errorf(ErrInvalid, "IPAM returned %q as an %s subnet, which is not an %s CIDR", d.Pool, family, family)
		}
		pool = pool.Masked()
		s := Subnet{Pool: pool}
		if d.Gateway != "" {
			gw, err := parseAddrOrPrefix(d.Gateway, pool.Bits())
			if err != nil {
				return nil, errdefs.Errorf(ErrInvalid, "invalid --gateway %q: %v", d.Gateway, err)
			}
			if !pool.Contains(gw.Addr()) {
				return nil, errdefs.Errorf(ErrInvalid, "--gateway %s is outside --subnet %s", gw.Addr(), pool)
			}
			s.Gateway = netip.PrefixFrom(gw.Addr(), pool.Bits())
		}
		subnets = append(subnets, s)
	}
	for i := range subnets {
		for j := range i {
			if subnets[i].Pool.Overlaps(subnets[j].Pool) {
				return nil, errdefs.Errorf(ErrInvalid, "subnets %s and %s overlap", subnets[j].Pool, subnets[i].Pool)
			}
		}
	}
	return subnets, nil
}

// parseAddrOrPrefix accepts "10.1.0.1" or "10.1.0.1/24"; a bare address gets bits.
func parseAddrOrPrefix(s string, bits int) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, bits), nil
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
