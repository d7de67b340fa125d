package bridge

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/nl"
)

// netlinkNoDAD is IFA_F_NODAD.
const netlinkNoDAD = 0x02

// VethSpec describes an endpoint's veth pair: Host is enslaved to Bridge and
// set up; Container stays down in the host namespace for dockerd to move
// into the container.
type VethSpec struct {
	Host, Container string
	Bridge          string
	MTU             int
	MAC             net.HardwareAddr // MAC of the container side
	// Isolated makes Host an isolated bridge port (icc=false).
	Isolated bool
}

// CreateVeth creates the pair and attaches it to the bridge. On failure
// nothing is left behind.
func CreateVeth(h *nl.Handle, spec VethSpec) (retErr error) {
	br, err := h.LinkByName(spec.Bridge)
	if err != nil {
		return fmt.Errorf("bridge of the network: %w", err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Host
	attrs.MTU = spec.MTU
	attrs.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: spec.Container, PeerHardwareAddr: spec.MAC}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %q/%q: %w", spec.Host, spec.Container, err)
	}
	defer func() {
		if retErr != nil {
			_ = h.DeleteLink(spec.Host) // best effort: retErr is what the caller must hear
		}
	}()
	host, err := h.LinkByName(spec.Host)
	if err != nil {
		return err
	}
	// Hairpin lets a container reach its own published port: the DNATed
	// packet is bridged back out the port it came in on.
	if err := h.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin on %q: %w", spec.Host, err)
	}
	// icc=false in the bridge itself: frames between two isolated ports
	// are never forwarded, with or without br_netfilter.
	if spec.Isolated {
		if err := h.LinkSetIsolated(host, true); err != nil {
			return fmt.Errorf("isolate bridge port %q: %w", spec.Host, err)
		}
	}
	if err := h.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %q up: %w", spec.Host, err)
	}
	return nil
}
