package bridge

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/nl"
)

// ErrExists says a link of that name exists and does not belong to the caller.
var ErrExists = errors.New("link already exists")

// Spec describes a bridge weft wants.
type Spec struct {
	Name      string
	MTU       int            // 0 keeps the kernel default
	Addresses []netip.Prefix // gateway addresses, e.g. 10.1.0.1/24
	// Seed makes the bridge MAC stable: without a fixed MAC a Linux bridge
	// takes the lowest MAC of its ports, which changes as containers come and
	// go and makes neighbours relearn the gateway.
	Seed string
}

// Ensure makes the bridge exist, up, with the MTU, MAC and addresses of
// spec; an existing bridge is adopted, any other link type is an error.
func Ensure(h *nl.Handle, spec Spec) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Name
	if spec.MTU > 0 {
		attrs.MTU = spec.MTU
	}
	attrs.HardwareAddr = stableMAC(spec.Seed)
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !nl.IsExist(err) {
		return fmt.Errorf("create bridge %q: %w", spec.Name, err)
	}
	// Re-fetch: it may have existed already, so check what it really is.
	l, err := h.LinkByName(spec.Name)
	if err != nil {
		return err
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: %q is a %s link, not a bridge", ErrExists, spec.Name, l.Type())
	}
	if spec.MTU > 0 && l.Attrs().MTU != spec.MTU {
		if err := h.LinkSetMTU(l, spec.MTU); err != nil {
			return fmt.Errorf("set mtu %d on %q: %w", spec.MTU, spec.Name, err)
		}
	}
	for _, p := range spec.Addresses {
		addr := &netlink.Addr{IPNet: prefixToIPNet(p)}
		if p.Addr().Is6() {
			// The gateway must answer at once; duplicate address detection
			// would keep it tentative for a second or more.
			addr.Flags = netlinkNoDAD
		}
		if err := h.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("add address %s to %q: %w", p, spec.Name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %q up: %w", spec.Name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// stableMAC derives a locally administered unicast MAC from seed.
func stableMAC(seed string) net.HardwareAddr {
	if seed == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(seed))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}
