package portmap

import (
	"net/netip"

	"github.com/weftnet/weft/firewall"
)

// Families says for which host address families an endpoint publishes the
// container's ports: dockerd's gateway roles (Docker 28+ can make one
// endpoint the IPv4 gateway and another the IPv6 one).
type Families struct {
	IPv4, IPv6 bool
}

// Endpoint is what Expand needs to know of the endpoint that publishes.
type Endpoint struct {
	IPv4, IPv6 bool // the container has an address of the family here
	// Proxy6to4 allows serving the host's IPv6 port of a container with no
	// IPv6 address through a proxy to its IPv4 address.
	Proxy6to4 bool
	// Default is the host address for bindings that name none
	// (host_binding_ipv4); invalid for both 0.0.0.0 and ::.
	Default netip.Addr
}

// Expand turns the bindings dockerd asked for into the ones ep publishes
// for fams, as Docker 28+ does: one that names no host address becomes one
// on 0.0.0.0 and one on ::. A host IPv6 binding of a container without
// IPv6 is served by a proxy to its IPv4 address, only when ep also serves
// IPv4 (Docker's rule) and for tcp and udp. Each group holds the bindings
// of one request, which get the same host port. skipped lists what ep does
// not publish.
func Expand(requested []Binding, fams Families, ep Endpoint) (groups [][]Binding, skipped []Binding) {
	v6ok := func(b Binding) bool {
		if !fams.IPv6 {
			return false
		}
		return ep.IPv6 || ep.Proxy6to4 && ep.IPv4 && fams.IPv4 && (b.Proto == 6 || b.Proto == 17)
	}
	for _, b := range requested {
		var group []Binding
		host, named := hostOf(b)
		if !named && ep.Default.IsValid() {
			host, named = ep.Default, true
		}
		switch {
		case !named:
			if fams.IPv4 && ep.IPv4 {
				group = append(group, withHost(b, netip.IPv4Unspecified()))
			}
			if v6ok(b) {
				group = append(group, withHost(b, netip.IPv6Unspecified()))
			}
		case host.Is4() && fams.IPv4 && ep.IPv4, host.Is6() && v6ok(b):
			group = append(group, withHost(b, host))
		}
		if len(group) == 0 {
			skipped = append(skipped, b)
			continue
		}
		groups = append(groups, group)
	}
	return groups, skipped
}

// hostOf is the host address a binding names, IPv4-mapped ones unmapped.
func hostOf(b Binding) (netip.Addr, bool) {
	a, err := netip.ParseAddr(b.HostIP)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func withHost(b Binding, host netip.Addr) Binding {
	b.HostIP = host.String()
	return b
}

// Proxied reports whether the binding is served by the 6to4 proxy: a host
// IPv6 port of a container that has no IPv6 address.
func (b Binding) Proxied(containerIPv6 bool) bool {
	return b.HostAddr().Is6() && !containerIPv6
}

// Mapping turns a binding of a container on bridge, at v4 and v6 (invalid
// when it has none), into the firewall's DNAT description. false: the
// binding is not the kernel's to translate (see Proxied).
func (b Binding) Mapping(bridge string, v4, v6 netip.Addr) (firewall.PortMapping, bool) {
	host := b.HostAddr()
	m := firewall.PortMapping{
		Bridge: bridge, Proto: Protocols[b.Proto], HostPort: b.HostPort, ContainerPort: b.Port,
		ContainerIP: v4,
	}
	if !host.IsUnspecified() {
		m.HostIP = host
	}
	if host.Is6() {
		m.ContainerIP = v6
	}
	return m, m.ContainerIP.IsValid()
}

// Mappings is Mapping of every binding the kernel translates.
func Mappings(bindings []Binding, bridge string, v4, v6 netip.Addr) []firewall.PortMapping {
	var out []firewall.PortMapping
	for _, b := range bindings {
		if m, ok := b.Mapping(bridge, v4, v6); ok {
			out = append(out, m)
		}
	}
	return out
}

// Forwards lists the proxy's jobs among the bindings of a container at
// v4 (invalid for none): its host IPv6 ports when it has no IPv6 address.
func Forwards(bindings []Binding, v4 netip.Addr, hasIPv6 bool) []Forward {
	var out []Forward
	for _, b := range bindings {
		if v4.IsValid() && b.Proxied(hasIPv6) {
			out = append(out, Forward{
				Proto:  Protocols[b.Proto],
				Host:   netip.AddrPortFrom(b.HostAddr(), b.HostPort),
				Target: netip.AddrPortFrom(v4, b.Port),
			})
		}
	}
	return out
}

// Drop returns bindings without those of the families in fams: what
// another endpoint of the same container publishes once this one is its
// gateway for fams.
func Drop(bindings []Binding, fams Families) []Binding {
	var kept []Binding
	for _, b := range bindings {
		if h := b.HostAddr(); h.Is4() && fams.IPv4 || h.Is6() && fams.IPv6 {
			continue
		}
		kept = append(kept, b)
	}
	return kept
}

// ServesIPv4 reports whether any binding publishes on a host IPv4 address.
func ServesIPv4(bindings []Binding) bool {
	for _, b := range bindings {
		if b.HostAddr().Is4() {
			return true
		}
	}
	return false
}
