package macvlan

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
)

// OptParent is the option that names the parent interface.
const OptParent = "parent"

// VLAN ids usable on a trunk: 0 and 4095 are reserved by 802.1q.
const (
	minVLAN = 1
	maxVLAN = 4094
)

// Parent is a parsed `-o parent=` value: eth1, or eth1.10 for VLAN 10 on eth1.
type Parent struct {
	Name string // the link children hang off, e.g. "eth1.10"
	Base string // for a VLAN parent, the trunk link, e.g. "eth1"
	VLAN int    // 0 when Name is a plain interface
}

// ParseParent validates a parent name. A dotted suffix of digits asks for
// an 802.1q sub-interface, as Docker's macvlan and ipvlan drivers read it.
func ParseParent(s string) (Parent, error) {
	if err := ifname.Check(s); err != nil {
		return Parent{}, errdefs.Errorf(errdefs.Invalid, "invalid value for option %s: %v", OptParent, err)
	}
	p := Parent{Name: s}
	dot := strings.LastIndex(s, ".")
	if dot <= 0 || dot == len(s)-1 {
		return p, nil
	}
	vid, err := strconv.Atoi(s[dot+1:])
	if err != nil {
		return p, nil //nolint:nilerr // a dot in an ordinary name, such as "br.lan"
	}
	if vid < minVLAN || vid > maxVLAN {
		return Parent{}, errdefs.Errorf(errdefs.Invalid,
			"invalid value %q for option %s: VLAN id %d is out of range; use %d to %d", s, OptParent, vid, minVLAN, maxVLAN)
	}
	p.Base, p.VLAN = s[:dot], vid
	return p, nil
}

// CheckUsable refuses links that cannot carry macvlan or ipvlan children:
// missing, loopback, or a port of a bridge (the bridge owns its frames).
func CheckUsable(h *nl.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if nl.IsNotFound(err) {
		return nil, errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: no interface of that name on this host", name, OptParent)
	}
	if err != nil {
		return nil, err
	}
	if l.Attrs().Flags&net.FlagLoopback != 0 {
		return nil, errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: the loopback interface cannot be a parent", name, OptParent)
	}
	if idx := l.Attrs().MasterIndex; idx != 0 {
		master := strconv.Itoa(idx)
		if m, err := h.LinkByIndex(idx); err == nil {
			master = m.Attrs().Name
		}
		return nil, errdefs.Errorf(errdefs.Invalid,
			"invalid value %q for option %s: it is a port of %s, which takes its traffic; use %s itself or another interface",
			name, OptParent, master, master)
	}
	return l, nil
}

// EnsureVLAN makes the 802.1q sub-interface p.Name (VLAN p.VLAN on p.Base)
// exist and be up. created says whether this call made it.
func EnsureVLAN(h *nl.Handle, p Parent) (created bool, err error) {
	if l, err := h.LinkByName(p.Name); err == nil {
		if v, ok := l.(*netlink.Vlan); ok && v.VlanId == p.VLAN {
			return false, h.LinkSetUp(l)
		}
		return false, errdefs.Errorf(errdefs.Conflict,
			"invalid value %q for option %s: a %s link of that name exists and is not VLAN %d of %s", p.Name, OptParent, l.Type(), p.VLAN, p.Base)
	} else if !nl.IsNotFound(err) {
		return false, err
	}
	base, err := CheckUsable(h, p.Base)
	if err != nil {
		return false, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = p.Name
	attrs.ParentIndex = base.Attrs().Index
	if err := h.LinkAdd(&netlink.Vlan{LinkAttrs: attrs, VlanId: p.VLAN}); err != nil {
		if unsupported(err) {
			return false, errdefs.Errorf(errdefs.Invalid,
				"cannot create VLAN %d on %s: this kernel has no 802.1q support (load the 8021q module)", p.VLAN, p.Base)
		}
		return false, fmt.Errorf("create VLAN link %q: %w", p.Name, err)
	}
	l, err := h.LinkByName(p.Name)
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err != nil {
		_ = h.DeleteLink(p.Name) // best effort: err is what the caller must hear
		return false, err
	}
	return true, nil
}

// EnsureDummy makes the placeholder parent of a network that has none. It
// is a dummy link where the kernel has them, else an empty bridge: either
// carries children that reach each other and nothing else.
func EnsureDummy(h *nl.Handle, name string) error {
	if l, err := h.LinkByName(name); err == nil {
		return h.LinkSetUp(l)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	err := h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
	if unsupported(err) {
		err = h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	}
	if err != nil && !nl.IsExist(err) {
		return fmt.Errorf("create placeholder parent %q: %w", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

// unsupported says the kernel does not know a link type (its module is
// missing): rtnetlink answers EOPNOTSUPP.
func unsupported(err error) bool { return errors.Is(err, unix.EOPNOTSUPP) }
