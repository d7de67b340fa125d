package firewall

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// errorf makes an error of one class; see internal/errdefs.
var errorf = errdefs.Errorf

// Validate reports whether Apply would accept r, without touching the
// kernel: the driver can check a candidate Ruleset (say, with one more
// published port) before it commits to it. Errors match ErrInvalid or
// ErrConflict.
func (r Ruleset) Validate() error {
	_, err := r.normalize()
	return err
}

// normalize validates r and returns a copy in canonical form: addresses
// unmapped and masked, duplicates removed, networks sorted by bridge, ports by
// bridge, protocol, host port and address. The rules generated from it are
// therefore the same whatever order the caller listed things in.
func (r Ruleset) normalize() (Ruleset, error) {
	var out Ruleset
	nets := map[string]Network{}
	for _, n := range r.Networks {
		n, err := normalizeNetwork(n, nets)
		if err != nil {
			return Ruleset{}, err
		}
		out.Networks = append(out.Networks, n)
		nets[n.Bridge] = n
	}
	slices.SortFunc(out.Networks, func(a, b Network) int { return strings.Compare(a.Bridge, b.Bridge) })

	for _, p := range r.Ports {
		p, err := normalizePort(p, nets)
		if err != nil {
			return Ruleset{}, err
		}
		if !slices.Contains(out.Ports, p) {
			out.Ports = append(out.Ports, p)
		}
	}
	slices.SortFunc(out.Ports, comparePorts)
	for _, k := range r.Kept {
		k, err := normalizeKept(k, nets)
		if err != nil {
			return Ruleset{}, err
		}
		out.Kept = append(out.Kept, k)
	}
	slices.SortFunc(out.Kept, func(a, b KeptNetwork) int { return strings.Compare(a.Bridge, b.Bridge) })
	for _, e := range r.Encrypted {
		if e.VNI == 0 || e.VNI > 1<<24-1 || e.Port == 0 {
			return Ruleset{}, errorf(ErrInvalid, "encrypted VXLAN segment with VNI %d on port %d", e.VNI, e.Port)
		}
		if !slices.Contains(out.Encrypted, e) {
			out.Encrypted = append(out.Encrypted, e)
		}
	}
	slices.SortFunc(out.Encrypted, func(a, b EncryptedVXLAN) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.VNI, b.VNI))
	})
	if err := checkPortClashes(out.Ports); err != nil {
		return Ruleset{}, err
	}
	return out, nil
}

// normalizeNetwork checks one network against those already seen (nets)
// and returns it with its subnets masked, sorted and deduplicated, and its
// gateways unmapped, sorted and deduplicated.
func normalizeNetwork(n Network, nets map[string]Network) (Network, error) {
	if err := checkBridge(n.Bridge); err != nil {
		return Network{}, err
	}
	if _, dup := nets[n.Bridge]; dup {
		return Network{}, errorf(ErrInvalid, "bridge %s is listed as two networks", n.Bridge)
	}
	if len(n.Subnets) == 0 {
		return Network{}, errorf(ErrInvalid, "network on bridge %s has no subnet", n.Bridge)
	}
	if err := n.checkGateway(); err != nil {
		return Network{}, err
	}
	var subnets []netip.Prefix
	for _, s := range n.Subnets {
		if !s.IsValid() || s.Addr().Is4In6() || s.Addr().Zone() != "" {
			return Network{}, errorf(ErrInvalid, "network on bridge %s has an invalid subnet %q", n.Bridge, s)
		}
		s = s.Masked()
		if !slices.Contains(subnets, s) {
			subnets = append(subnets, s)
		}
	}
	slices.SortFunc(subnets, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	n.Subnets = subnets
	var gateways []netip.Addr
	for _, g := range n.Gateways {
		g = g.Unmap()
		if !inSubnets(subnets, g) {
			return Network{}, errorf(ErrInvalid, "network on bridge %s has gateway %s outside its subnets", n.Bridge, g)
		}
		if !slices.Contains(gateways, g) {
			gateways = append(gateways, g)
		}
	}
	slices.SortFunc(gateways, netip.Addr.Compare)
	n.Gateways = gateways
	return n, nil
}

// normalizeKept checks a kept bridge, which must not also be a network, and
// masks its subnets.
func normalizeKept(k KeptNetwork, nets map[string]Network) (KeptNetwork, error) {
	if err := checkBridge(k.Bridge); err != nil {
		return KeptNetwork{}, err
	}
	if _, dup := nets[k.Bridge]; dup {
		return KeptNetwork{}, errorf(ErrInvalid, "bridge %s is listed as a network and as kept", k.Bridge)
	}
	k.Subnets = slices.Clone(k.Subnets)
	for i, s := range k.Subnets {
		if !s.IsValid() {
			return KeptNetwork{}, errorf(ErrInvalid, "kept bridge %s has an invalid subnet", k.Bridge)
		}
		k.Subnets[i] = s.Masked()
	}
	return k, nil
}

// checkPortClashes refuses two publications of one host port.
func checkPortClashes(ports []PortMapping) error {
	for i, a := range ports {
		for _, b := range ports[i+1:] {
			if clash(a, b) {
				return errorf(ErrConflict, "host port %s is published twice: to %s and to %s",
					hostSide(a), netip.AddrPortFrom(a.ContainerIP, a.ContainerPort), netip.AddrPortFrom(b.ContainerIP, b.ContainerPort))
			}
		}
	}
	return nil
}

// checkBridge accepts the interface names weft could have given its bridges.
// The character set is narrow on purpose: the name is written into
// iptables-restore input and must neither split into two words nor end in
// '+', which iptables reads as a wildcard.
func checkBridge(name string) error {
	if err := ifname.CheckNew(name); err != nil {
		return errorf(ErrInvalid, "invalid bridge name: %v", err)
	}
	return nil
}

func normalizePort(p PortMapping, nets map[string]Network) (PortMapping, error) {
	if err := checkBridge(p.Bridge); err != nil {
		return p, err
	}
	n, ok := nets[p.Bridge]
	if !ok {
		return p, errorf(ErrInvalid, "port %d is published on bridge %s, which is not a network of the ruleset", p.HostPort, p.Bridge)
	}
	if n.Internal {
		return p, errorf(ErrInvalid, "port %d cannot be published on internal network %s", p.HostPort, p.Bridge)
	}
	p.Proto = strings.ToLower(p.Proto)
	switch p.Proto {
	case "tcp", "udp", "sctp":
	default:
		return p, errorf(ErrInvalid, "unsupported protocol %q for published port %d: expected tcp, udp or sctp", p.Proto, p.HostPort)
	}
	if p.HostPort == 0 || p.ContainerPort == 0 {
		return p, errorf(ErrInvalid, "invalid published port %d/%s to container port %d: port 0 is not allowed", p.HostPort, p.Proto, p.ContainerPort)
	}
	if !p.ContainerIP.IsValid() || p.ContainerIP.Zone() != "" {
		return p, errorf(ErrInvalid, "published port %d/%s has an invalid container address %q", p.HostPort, p.Proto, p.ContainerIP)
	}
	p.ContainerIP = p.ContainerIP.Unmap()
	if !inSubnets(n.Subnets, p.ContainerIP) {
		return p, errorf(ErrInvalid, "container address %s of published port %d/%s is outside the subnets of network %s", p.ContainerIP, p.HostPort, p.Proto, p.Bridge)
	}
	if p.HostIP.IsValid() {
		if p.HostIP.Zone() != "" {
			return p, errorf(ErrInvalid, "host address %s of published port %d/%s has a zone", p.HostIP, p.HostPort, p.Proto)
		}
		p.HostIP = p.HostIP.Unmap()
		if p.HostIP.Is4() != p.ContainerIP.Is4() {
			return p, errorf(ErrInvalid, "published port %s/%s maps to %s: host and container addresses must be of the same family", hostSide(p), p.Proto, p.ContainerIP)
		}
		if p.HostIP.IsUnspecified() {
			p.HostIP = netip.Addr{}
		}
	}
	return p, nil
}

// clash reports whether two (distinct) mappings would catch the same
// connections.
func clash(a, b PortMapping) bool {
	return a.Proto == b.Proto && a.HostPort == b.HostPort &&
		a.ContainerIP.Is4() == b.ContainerIP.Is4() &&
		(!a.HostIP.IsValid() || !b.HostIP.IsValid() || a.HostIP == b.HostIP)
}

func comparePorts(a, b PortMapping) int {
	return cmp.Or(
		strings.Compare(a.Bridge, b.Bridge),
		strings.Compare(a.Proto, b.Proto),
		cmp.Compare(a.HostPort, b.HostPort),
		a.HostIP.Compare(b.HostIP),
		a.ContainerIP.Compare(b.ContainerIP),
		cmp.Compare(a.ContainerPort, b.ContainerPort),
	)
}

// hostSide formats a mapping's host end for messages: "0.0.0.0:8080",
// "[::]:8080" or "192.0.2.1:8080".
func hostSide(p PortMapping) string {
	ip := p.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
		if p.ContainerIP.Is6() {
			ip = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(ip, p.HostPort).String()
}

// inSubnets reports whether a lies in one of subnets.
func inSubnets(subnets []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(subnets, func(s netip.Prefix) bool { return s.Contains(a) })
}
