// Package nl is weft's only gateway to vishvananda/netlink.
//
// Every netlink call made by the daemon goes through a Handle, which is bound
// to one network namespace, has a socket timeout (a wedged kernel call must
// not hang a request from dockerd forever) and retries dump requests the
// kernel interrupted (EINTR / NLM_F_DUMP_INTR) instead of acting on partial
// results.
package nl

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// socketTimeout bounds one netlink round trip.
const socketTimeout = 3 * time.Second

// dumpRetries is how often an interrupted dump is tried again.
const dumpRetries = 5

// Handle is a netlink socket bound to one network namespace.
type Handle struct {
	h *netlink.Handle
	// mark is written as the alias of every link this handle creates; see
	// SetMark.
	mark string
}

// New returns a handle on the caller's network namespace.
func New() (*Handle, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return wrap(h)
}

// NewAt returns a handle on the namespace ns without switching the caller's
// thread into it.
func NewAt(ns netns.NsHandle) (*Handle, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket in namespace: %w", err)
	}
	return wrap(h)
}

func wrap(h *netlink.Handle) (*Handle, error) {
	if err := h.SetSocketTimeout(socketTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("set netlink socket timeout: %w", err)
	}
	return &Handle{h: h}, nil
}

// Close releases the socket.
func (h *Handle) Close() { h.h.Close() }

// ErrNotFound is returned (wrapped) when a link does not exist.
var ErrNotFound = errors.New("link not found")

// IsNotFound reports whether err says a link or address does not exist.
func IsNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.Is(err, ErrNotFound) || errors.As(err, &lnf) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL)
}

// IsBusy reports whether err says the device is taken (EBUSY), e.g. a parent
// that already carries links of another kind.
func IsBusy(err error) bool { return errors.Is(err, unix.EBUSY) }

// IsNoSuchProcess reports ESRCH, which the kernel returns for a missing route.
func IsNoSuchProcess(err error) bool { return errors.Is(err, unix.ESRCH) }

// IsExist reports whether err says the object already exists.
func IsExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// retryDump runs a dump until the kernel returns a consistent result.
func retryDump(fn func() error) error {
	var err error
	for range dumpRetries {
		err = fn()
		if !errors.Is(err, netlink.ErrDumpInterrupted) && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
	return err
}

// LinkByName looks a link up by name; a missing link gives an error for which
// IsNotFound is true.
func (h *Handle) LinkByName(name string) (netlink.Link, error) {
	var l netlink.Link
	err := retryDump(func() (err error) {
		l, err = h.h.LinkByName(name)
		return err
	})
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		return nil, fmt.Errorf("look up link %q: %w", name, err)
	}
	return l, nil
}

// LinkByIndex looks a link up by its index.
func (h *Handle) LinkByIndex(index int) (netlink.Link, error) {
	var l netlink.Link
	err := retryDump(func() (err error) {
		l, err = h.h.LinkByIndex(index)
		return err
	})
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("%w: index %d", ErrNotFound, index)
		}
		return nil, fmt.Errorf("look up link %d: %w", index, err)
	}
	return l, nil
}

// LinkList lists every link of the namespace.
func (h *Handle) LinkList() ([]netlink.Link, error) {
	var links []netlink.Link
	err := retryDump(func() (err error) {
		links, err = h.h.LinkList()
		return err
	})
	return links, err
}

// LinkAdd creates a link and marks it as weft's (see SetMark). A link that
// cannot be marked is deleted again: weft keeps no link it could not later
// prove its own.
func (h *Handle) LinkAdd(l netlink.Link) error {
	if err := h.h.LinkAdd(l); err != nil {
		return err
	}
	if h.mark == "" {
		return nil
	}
	if err := h.h.LinkSetAlias(l, h.mark); err != nil {
		if delErr := h.h.LinkDel(l); delErr != nil {
			err = errors.Join(err, fmt.Errorf("and it could not be deleted again: %w", delErr))
		}
		return fmt.Errorf("mark link %q as weft's: %w", l.Attrs().Name, err)
	}
	return nil
}

// LinkDel deletes a link.
func (h *Handle) LinkDel(l netlink.Link) error { return h.h.LinkDel(l) }

// LinkSetUp sets a link administratively up.
func (h *Handle) LinkSetUp(l netlink.Link) error { return h.h.LinkSetUp(l) }

// LinkSetMTU sets a link's MTU.
func (h *Handle) LinkSetMTU(l netlink.Link, mtu int) error { return h.h.LinkSetMTU(l, mtu) }

// LinkSetMaster enslaves l to master (a bridge).
func (h *Handle) LinkSetMaster(l, master netlink.Link) error { return h.h.LinkSetMaster(l, master) }

// LinkSetIsolated makes l an isolated bridge port: the bridge forwards no
// frame between two isolated ports, only to and from the others and the
// bridge itself.
func (h *Handle) LinkSetIsolated(l netlink.Link, on bool) error { return h.h.LinkSetIsolated(l, on) }

// LinkSetHairpin lets a bridge port send frames back out the port they came
// in on.
func (h *Handle) LinkSetHairpin(l netlink.Link, on bool) error { return h.h.LinkSetHairpin(l, on) }

// LinkSetHardwareAddr sets a link's MAC address.
func (h *Handle) LinkSetHardwareAddr(l netlink.Link, mac net.HardwareAddr) error {
	return h.h.LinkSetHardwareAddr(l, mac)
}

// AddrList lists the addresses of one link (family: netlink.FAMILY_*).
func (h *Handle) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	var addrs []netlink.Addr
	err := retryDump(func() (err error) {
		addrs, err = h.h.AddrList(l, family)
		return err
	})
	return addrs, err
}

// AddrReplace adds an address to a link, or updates it if present.
func (h *Handle) AddrReplace(l netlink.Link, a *netlink.Addr) error { return h.h.AddrReplace(l, a) }

// RouteReplace adds or updates a route.
func (h *Handle) RouteReplace(r *netlink.Route) error { return h.h.RouteReplace(r) }

// RouteDel removes a route.
func (h *Handle) RouteDel(r *netlink.Route) error { return h.h.RouteDel(r) }

// RouteGet asks the kernel which route it would use to reach dst.
func (h *Handle) RouteGet(dst net.IP) ([]netlink.Route, error) { return h.h.RouteGet(dst) }

// NeighAppend adds a neighbour or forwarding entry, keeping others for the
// same address (a VXLAN flood list has one all-zero MAC entry per peer).
func (h *Handle) NeighAppend(n *netlink.Neigh) error { return h.h.NeighAppend(n) }

// NeighDel removes a neighbour or forwarding entry.
func (h *Handle) NeighDel(n *netlink.Neigh) error { return h.h.NeighDel(n) }

// NeighList lists the neighbour or forwarding entries of one link.
func (h *Handle) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	var ns []netlink.Neigh
	err := retryDump(func() (err error) {
		ns, err = h.h.NeighList(linkIndex, family)
		return err
	})
	return ns, err
}

// AddrDel removes an address from a link.
func (h *Handle) AddrDel(l netlink.Link, a *netlink.Addr) error { return h.h.AddrDel(l, a) }

// XfrmStateAdd installs an IPsec security association.
func (h *Handle) XfrmStateAdd(s *netlink.XfrmState) error { return h.h.XfrmStateAdd(s) }

// XfrmStateDel removes an IPsec security association.
func (h *Handle) XfrmStateDel(s *netlink.XfrmState) error { return h.h.XfrmStateDel(s) }

// XfrmStateList lists the security associations (family: netlink.FAMILY_*).
func (h *Handle) XfrmStateList(family int) ([]netlink.XfrmState, error) {
	var states []netlink.XfrmState
	err := retryDump(func() (err error) {
		states, err = h.h.XfrmStateList(family)
		return err
	})
	return states, err
}

// XfrmPolicyUpdate installs an IPsec policy, or replaces the one with the
// same selector and direction.
func (h *Handle) XfrmPolicyUpdate(p *netlink.XfrmPolicy) error { return h.h.XfrmPolicyUpdate(p) }

// XfrmPolicyDel removes an IPsec policy.
func (h *Handle) XfrmPolicyDel(p *netlink.XfrmPolicy) error { return h.h.XfrmPolicyDel(p) }

// XfrmPolicyList lists the IPsec policies (family: netlink.FAMILY_*).
func (h *Handle) XfrmPolicyList(family int) ([]netlink.XfrmPolicy, error) {
	var policies []netlink.XfrmPolicy
	err := retryDump(func() (err error) {
		policies, err = h.h.XfrmPolicyList(family)
		return err
	})
	return policies, err
}
