package vxlan

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/netmode"
)

// The -o options of vxlan networks; a vxlan network takes bridge mode's
// too.
const (
	OptVNI           = "vni"
	OptPort          = "vxlan_port"
	OptPeers         = "peers"
	OptGroup         = "group"
	OptUnderlay      = "underlay"
	OptEncrypted     = "encrypted"
	OptEncryptionKey = "encryption_key"
)

// OptionNames lists vxlan mode's own -o options.
var OptionNames = []string{OptVNI, OptPort, OptPeers, OptGroup, OptUnderlay, OptEncrypted, OptEncryptionKey}

// Options are a vxlan network's own -o options. The network's record
// stores them in its "config" object, beside the bridge's.
type Options struct {
	VNI       int          `json:"vni,omitempty"`
	Port      int          `json:"vxlan_port,omitempty"`
	Peers     []netip.Addr `json:"peers,omitempty"`
	Group     netip.Addr   `json:"group,omitzero"`
	Underlay  string       `json:"underlay,omitempty"`
	Encrypted bool         `json:"encrypted,omitempty"`
	// EncryptionKey is the network's ESP master key: the operator's
	// (standalone hosts) or the one the swarm manager's weft made.
	EncryptionKey string `json:"encryption_key,omitempty"`
}

// State is what an encrypted network chose on this host; the record
// stores it beside "config".
type State struct {
	// ESPSourcePort is the UDP port the network sends from on this host
	// (see esp.Tunnel).
	ESPSourcePort int `json:"esp_source_port,omitempty"`
}

// SetOption applies one of the mode's options, vxlan's or the bridge's.
func (n *Network) SetOption(key, value string) error {
	o := &n.VXLAN
	var err error
	switch key {
	case OptVNI:
		vni, perr := strconv.Atoi(value)
		if perr != nil || vni < 1 || vni > MaxVNI {
			return netmode.OptionError(key, value, fmt.Sprintf("use a whole number from 1 to %d", MaxVNI))
		}
		o.VNI = vni
	case OptPort:
		port, perr := strconv.Atoi(value)
		if perr != nil || port < 1 || port > 65535 {
			return netmode.OptionError(key, value, "use a UDP port from 1 to 65535 (the standard is 4789)")
		}
		o.Port = port
	case OptPeers:
		for _, p := range strings.Split(value, ",") {
			ip, perr := netip.ParseAddr(strings.TrimSpace(p))
			if perr != nil || !ip.Is4() {
				return netmode.OptionError(key, value, "use the other hosts' IPv4 addresses separated by commas, such as 192.0.2.11,192.0.2.12")
			}
			o.Peers = append(o.Peers, ip)
		}
	case OptGroup:
		ip, perr := netip.ParseAddr(value)
		if perr != nil || !ip.Is4() || !ip.IsMulticast() {
			return netmode.OptionError(key, value, "use an IPv4 multicast group, such as 239.1.1.1")
		}
		o.Group = ip
	case OptUnderlay:
		if err := ifname.Check(value); err != nil {
			return errdefs.Errorf(errdefs.Invalid, "invalid value for option %s: %v", key, err)
		}
		o.Underlay = value
	case OptEncrypted:
		o.Encrypted, err = Encrypted(value)
	case OptEncryptionKey:
		// The key itself is never echoed: errors end up in logs.
		if _, perr := esp.ParseKey(value); perr != nil {
			return errdefs.Errorf(errdefs.Invalid, "invalid value for option %s: %v", key, perr)
		}
		o.EncryptionKey = value
	default:
		return n.Network.SetOption(key, value)
	}
	return err
}

// Encrypted reads -o encrypted: given alone (an empty value, as with
// Docker's overlay) it means true.
func Encrypted(value string) (bool, error) {
	if value == "" {
		return true, nil
	}
	return netmode.ParseBool(OptEncrypted, value)
}

// Check requires a way to find the other hosts and a key for encryption,
// and fills the defaults: a VNI derived from the network id (so every
// swarm node picks the same one) and the standard port.
func (n *Network) Check(v4, v6 []netmode.IPAMData) error {
	if err := n.Network.Check(v4, v6); err != nil {
		return err
	}
	o := &n.VXLAN
	switch {
	case len(o.Peers) > 0 && o.Group.IsValid():
		return errdefs.Errorf(errdefs.Invalid, "options %s and %s exclude each other: list the peers, or name a multicast group", OptPeers, OptGroup)
	case o.Group.IsValid() && o.Underlay == "":
		return errdefs.Errorf(errdefs.Invalid, "option %s needs -o %s=IFACE, the interface the group is joined on", OptGroup, OptUnderlay)
	case o.EncryptionKey != "" && !o.Encrypted:
		return errdefs.Errorf(errdefs.Invalid, "option %s is only used with -o %s", OptEncryptionKey, OptEncrypted)
	case o.Encrypted && o.Group.IsValid():
		return errdefs.Errorf(errdefs.Invalid, "option %s works with -o %s or a swarm, not with a multicast %s: ESP keys are set up between pairs of hosts", OptEncrypted, OptPeers, OptGroup)
	case o.Encrypted && o.EncryptionKey == "" && len(o.Peers) > 0:
		return errdefs.Errorf(errdefs.Invalid, "option %s without a swarm needs -o %s=KEY, the same %d hex digits on every host (e.g. from `openssl rand -hex %d`)",
			OptEncrypted, OptEncryptionKey, 2*esp.KeyBytes, esp.KeyBytes)
	case o.Encrypted && o.EncryptionKey == "":
		return errdefs.Errorf(errdefs.Invalid, "option %s on a swarm network: the network came without a key, which the swarm manager's weft adds; install weft with SCOPE=global on the managers too", OptEncrypted)
	}
	if o.VNI == 0 {
		o.VNI = DefaultVNI(n.ID)
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	return nil
}

// DefaultVNI derives a VNI from the network id, so every swarm node picks
// the same one for the same network.
func DefaultVNI(networkID string) int {
	h := fnv.New32a()
	h.Write([]byte(networkID))
	return int(h.Sum32()%MaxVNI) + 1
}
