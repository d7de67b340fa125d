package macvlan

import (
	"net/netip"
	"path"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/nl"
)

// IsPattern says whether a parent value is a name pattern such as "eth*".
func IsPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// FindParent picks this host's parent: the first usable interface (by
// name) matching pattern, optionally followed by a VLAN suffix ("en*.10"),
// or the one holding an address in subnet.
func FindParent(h *nl.Handle, pattern string, subnet netip.Prefix) (string, error) {
	links, err := h.LinkList()
	if err != nil {
		return "", err
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Name < links[j].Attrs().Name })
	base, suffix := pattern, ""
	if p, err := ParseParent(pattern); err == nil && p.VLAN != 0 {
		base, suffix = p.Base, pattern[len(p.Base):]
	}
	for _, l := range links {
		name := l.Attrs().Name
		if _, err := CheckUsable(h, name); err != nil {
			continue // loopback, bridge ports
		}
		if subnet.IsValid() {
			if holds(h, l, subnet) {
				return name, nil
			}
			continue
		}
		if ok, _ := path.Match(base, name); ok && !nl.MadeByWeft(l) {
			return name + suffix, nil
		}
	}
	if subnet.IsValid() {
		return "", errdefs.Errorf(errdefs.Invalid, "invalid value %q for option parent_subnet: no interface of this host has an address in it", subnet)
	}
	return "", errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: no interface of this host matches it", pattern, OptParent)
}

func holds(h *nl.Handle, l netlink.Link, subnet netip.Prefix) bool {
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && subnet.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}
