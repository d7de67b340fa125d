// Package firewall keeps weft's iptables rules: the filtering that makes a weft
// bridge network behave like Docker's own bridge on a host where Docker's
// firewall is active (filter FORWARD policy DROP and
// net.bridge.bridge-nf-call-iptables=1, so even traffic between two containers
// of one bridge crosses FORWARD), plus masquerading and published ports.
//
// weft owns these chains and never edits anyone else's, apart from the jumps
// into them:
//
//	filter WEFT-FORWARD      FORWARD -j WEFT-FORWARD (first, or right after
//	                         Docker's DOCKER-USER jump)
//	mangle WEFT-ISOLATION    FORWARD -j WEFT-ISOLATION (first)
//	nat    WEFT-DNAT         PREROUTING -m addrtype --dst-type LOCAL -j WEFT-DNAT
//	                         OUTPUT -m addrtype --dst-type LOCAL -j WEFT-DNAT
//	nat    WEFT-POSTROUTING  POSTROUTING -j WEFT-POSTROUTING
//	filter WEFT-INPUT        INPUT -j WEFT-INPUT (first; only while an
//	                         encrypted VXLAN network exists)
//	raw    WEFT-NOTRACK      PREROUTING -j WEFT-NOTRACK
//
// The same chains exist in ip6tables for networks with an IPv6 subnet (the
// OUTPUT jump there excludes ::1/128).
//
// Apply is declarative: it reads the tables with iptables-save, works out
// what differs from the wanted Ruleset and sends only that, in one
// iptables-restore --noflush transaction per family (atomic per table). A
// chain with no rule left is deleted with its jumps, so an empty Ruleset
// leaves the tables exactly as they were before weft touched them.
//
// WEFT-FORWARD holds every network's ingress rules (traffic leaving the host
// through the bridge: -o BR) before any network's egress accept (-i BR), so
// the egress accept of one network can never let traffic into another one.
//
// Isolation does not hang on where weft's jump sits in filter FORWARD, a
// chain Docker writes too: dockerd 28 and later put their own jump (whose
// chains accept everything leaving a Docker bridge) back on top at every
// start, and 20.10 inserts a new network's accepts on top. A packet is
// dropped if any chain hooked into the kernel drops it, whatever another
// one accepted; so WEFT-ISOLATION, in mangle FORWARD, which runs before
// filter FORWARD and which Docker does not write to, drops everything
// WEFT-FORWARD drops. The same holds beside Docker's nftables backend,
// whose own table accepts at the same hook. WEFT-FORWARD is still needed
// for its accepts (Docker sets the FORWARD policy to DROP) and keeps its
// drops for hosts whose kernel has no mangle table. A user's DOCKER-USER
// rule can therefore still cut a weft network off, but no longer open it.
//
// Guard puts weft's chains and jumps back within a second or two when
// someone else changes them (a dockerd restart, a firewalld reload,
// iptables -F, nft flush ruleset).
//
// WEFT-NOTRACK keeps frames bridged between two containers of one network
// out of conntrack, which Docker's overlay gets for free by keeping its
// bridges in a namespace without rules: the ICC rule decides on them
// without state, and tracking them cost a vxlan network a few percent of
// its throughput. Whatever needs state stays tracked: traffic to the host's
// own addresses (the gateway), routed and masqueraded traffic (its
// destination is outside the subnet), and the replies of published ports,
// which a container reaching another's published port through the host
// (hairpin) gets from inside the subnet and needs un-DNATed.
//
// Published ports are DNATed in the kernel, with no userland proxy: a
// container's connection to its own published port and a host process's
// connection to 127.0.0.1 included. (The one proxy weft runs, portmap's,
// serves a host IPv6 port for a container that has only IPv4; it needs no
// rule here.) The bridge code must therefore set
// hairpin mode on the bridge ports (br_netfilter bridges a DNATed packet back
// out the port it came in) and net.ipv4.conf.<bridge>.route_localnet=1, as
// Docker does with --userland-proxy=false.
package firewall

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
)

// Chains weft owns. Nothing else may write to them: Apply replaces their
// content wholesale.
const (
	// ChainForward (filter) filters every packet that enters or leaves a
	// weft bridge.
	ChainForward = "WEFT-FORWARD"
	// ChainDNAT (nat) translates published ports.
	ChainDNAT = "WEFT-DNAT"
	// ChainPostrouting (nat) masquerades networks' outbound traffic and
	// hairpin connections to published ports.
	ChainPostrouting = "WEFT-POSTROUTING"
	// ChainInput (filter) drops VXLAN packets of encrypted networks that
	// arrive in clear text. IPsec input policies cannot do it: the kernel
	// hands VXLAN packets to the tunnel before it checks them.
	ChainInput = "WEFT-INPUT"
	// ChainNotrack (raw) exempts traffic between the containers of a
	// network from connection tracking.
	ChainNotrack = "WEFT-NOTRACK"
	// ChainIsolation (mangle) drops what ChainForward drops, before any
	// filter rule can accept it: see the package documentation.
	ChainIsolation = "WEFT-ISOLATION"
)

// Error classes. Every error Validate (and so Apply) returns for a bad
// Ruleset matches one of them with errors.Is; the error text itself is meant
// for the docker user and does not repeat the class.
var (
	// ErrInvalid marks a malformed Ruleset (bad bridge name, unknown
	// protocol, container address outside its network...).
	ErrInvalid = errdefs.Invalid
	// ErrConflict marks two port mappings that claim the same host port.
	ErrConflict = errdefs.Conflict
)

// Config tells a Firewall which commands to run.
type Config struct {
	// IPTables and IP6Tables name the iptables and ip6tables commands
	// ("iptables" and "ip6tables" when empty; see Detect). Only the
	// matching -save and -restore commands are run (e.g.
	// iptables-nft-save and iptables-nft-restore for "iptables-nft"); they
	// are looked up in this process's PATH, also when Prefix is set.
	IPTables, IP6Tables string
	// Prefix is put before every command, e.g. {"ip", "netns", "exec",
	// "weft-t-1234"} in tests. nil in production.
	Prefix []string
	// Log receives the generated iptables-restore input at debug level.
	Log logrus.FieldLogger
}

// Network is one weft bridge network as the firewall sees it.
type Network struct {
	// Bridge is the Linux bridge's name.
	Bridge string
	// Subnets are the network's IPv4 and/or IPv6 subnets. Filter rules
	// are made for each address family that has a subnet.
	Subnets []netip.Prefix
	// ICC lets containers of the network talk to each other; when false
	// traffic between them is dropped. Bridged traffic only reaches
	// iptables with net.bridge.bridge-nf-call-iptables=1 (and -ip6tables,
	// per network namespace); where br_netfilter is not loaded the
	// bridge's isolated ports (bridge.VethSpec.Isolated) do it alone.
	ICC bool
	// Masquerade hides the network's IPv4 subnets behind the host's
	// address on the way out (Docker's ip-masquerade option). IPv6 is
	// never masqueraded, as in Docker 20.10.
	Masquerade bool
	// Internal cuts the network off from everything but itself: no way in,
	// no way out, no published ports.
	Internal bool
	// Gateways are the host's addresses on the bridge: traffic to them
	// stays tracked (see WEFT-NOTRACK).
	Gateways []netip.Addr
	// GatewayModeIPv4 and GatewayModeIPv6 say how each family meets the
	// world beyond the host ("" is GatewayNAT); see gwmode.go.
	GatewayModeIPv4, GatewayModeIPv6 GatewayMode
	// TrustedInterfaces may reach published ports at the container's own
	// address in nat mode, as the bridge itself can.
	TrustedInterfaces []string
	// HostIPv4 and HostIPv6, when valid, are the source address of the
	// network's outbound traffic (SNAT) instead of masquerading.
	HostIPv4, HostIPv6 netip.Addr
}

// PortMapping is one published port: connections to HostIP:HostPort reach
// ContainerIP:ContainerPort.
type PortMapping struct {
	// Bridge is the bridge of the container's network; it must be one of
	// the Ruleset's non-internal networks.
	Bridge string
	// Proto is "tcp", "udp" or "sctp".
	Proto string
	// HostIP limits the mapping to one host address; the zero value (or
	// an unspecified address) means every address of the host in
	// ContainerIP's family.
	HostIP   netip.Addr
	HostPort uint16
	// ContainerIP must lie in one of the network's subnets; its family
	// picks iptables or ip6tables.
	ContainerIP   netip.Addr
	ContainerPort uint16
}

// Ruleset is the complete set of weft networks and published ports of the
// host. Order does not matter: Apply sorts it.
type Ruleset struct {
	Networks []Network
	Ports    []PortMapping
	// Encrypted lists the VXLAN segments that only ESP may deliver.
	Encrypted []EncryptedVXLAN
	// Kept lists bridges weft made under an earlier state database (one
	// that was damaged, emptied or replaced) that may still carry running
	// containers: Apply leaves their rules exactly as the kernel holds
	// them, instead of removing rules it no longer has a record of.
	Kept []KeptNetwork
}

// KeptNetwork is a bridge whose rules Apply keeps: every rule of weft's
// chains that names the bridge, or an address in one of its subnets.
type KeptNetwork struct {
	Bridge  string
	Subnets []netip.Prefix
}

// EncryptedVXLAN is one encrypted VXLAN network's traffic: VNI on UDP Port
// (IPv4 underlay).
type EncryptedVXLAN struct {
	VNI  uint32
	Port uint16
}

// Firewall applies Rulesets to the kernel. It is safe for concurrent use:
// Apply and Teardown calls are serialised.
type Firewall struct {
	cfg Config
	log logrus.FieldLogger

	// mu serialises every read-modify-write of the tables.
	mu sync.Mutex
	// usable caches successful probes of optional features, by family.
	usable [2]map[string]bool
	// restores counts iptables-restore runs; tests use it to prove that an
	// Apply with nothing to change runs none.
	restores int
	// noMangle records, by family, that the missing mangle table was
	// reported.
	noMangle [2]bool
	// last is the Ruleset of the last Apply that succeeded (nil before
	// the first): what Guard puts back.
	last *Ruleset
}

// New returns a Firewall running the commands cfg names.
func New(cfg Config) *Firewall {
	if cfg.IPTables == "" {
		cfg.IPTables = "iptables"
	}
	if cfg.IP6Tables == "" {
		cfg.IP6Tables = "ip6tables"
	}
	log := cfg.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	return &Firewall{cfg: cfg, log: log}
}

// Apply makes weft's rules in the kernel exactly r: chains are rebuilt where
// they differ, rules and chains no longer needed are removed, and jumps are
// restored where someone else (typically a restarting dockerd) moved or
// removed them. Applying the same Ruleset twice changes nothing the second
// time. An empty Ruleset removes every weft chain and jump, as Teardown does.
//
// r is checked first (see Validate); nothing is changed when it is invalid.
// A network with an IPv6 subnet needs ip6tables; IPv6 port mappings are
// skipped (logged at debug level) when the ip6tables nat table does not work.
func (f *Firewall) Apply(r Ruleset) error {
	n, err := r.normalize()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err = f.apply(n)
	return err
}

// Teardown removes every weft chain and every jump into them, in iptables and
// ip6tables. A missing ip6tables command is not an error here: there is
// nothing weft could have left behind in it.
func (f *Firewall) Teardown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.apply(Ruleset{}); err != nil {
		return fmt.Errorf("remove weft firewall rules: %w", err)
	}
	return nil
}
