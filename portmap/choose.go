package portmap

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/weftnet/weft/internal/errdefs"
)

// Ephemeral host ports for `-p 80` (no host port given), as Docker uses.
const (
	ephemeralFirst = 49153
	ephemeralLast  = 65535
)

// Choose fixes the host port of a group of bindings that differ only in
// their host address (one per family, see Expand), the same for all: the
// requested one, or the first free one of the requested range, or an
// ephemeral one. A port is free when no binding in taken (weft's other
// containers') holds it and no socket on this host does; one that ours
// (the container's own) holds is free without asking the host, whose
// socket may be the container's own proxy.
func Choose(group []Binding, taken, ours []Binding) error {
	if len(group) == 0 {
		return nil
	}
	b := group[0]
	first, last := b.HostPort, b.HostPortEnd
	if first == 0 {
		first, last = ephemeralFirst, ephemeralLast
	}
	if last < first {
		last = first
	}
	var lastErr error
	for port := int(first); port <= int(last); port++ {
		if lastErr = freeGroup(group, uint16(port), taken, ours); lastErr != nil {
			continue
		}
		for i := range group {
			group[i].HostPort, group[i].HostPortEnd = uint16(port), uint16(port)
		}
		return nil
	}
	if first == last {
		return lastErr
	}
	return errdefs.Errorf(errdefs.Conflict, "no free host port in %d-%d for %s: %v", first, last, Protocols[b.Proto], lastErr)
}

func freeGroup(group []Binding, port uint16, taken, ours []Binding) error {
	for _, b := range group {
		b.HostPort, b.HostPortEnd = port, port
		if err := free(b, taken, ours); err != nil {
			return err
		}
	}
	return nil
}

func free(b Binding, taken, ours []Binding) error {
	for _, t := range taken {
		if t.Proto == b.Proto && t.HostPort == b.HostPort && hostIPsOverlap(t, b) {
			return errdefs.Errorf(errdefs.Conflict, "cannot publish %s: another weft container already publishes it", b)
		}
	}
	for _, o := range ours {
		if o.Proto == b.Proto && o.HostPort == b.HostPort && hostIPsOverlap(o, b) {
			return nil
		}
	}
	if err := probeSocket(b); err != nil {
		return errdefs.Errorf(errdefs.Conflict, "cannot publish %s: %v", b, err)
	}
	return nil
}

// hostIPsOverlap reports whether two bindings' host addresses share an
// address: 0.0.0.0 covers every IPv4 address, :: every IPv6 one (Docker
// binds it IPv6-only).
func hostIPsOverlap(a, b Binding) bool {
	x, y := a.HostAddr(), b.HostAddr()
	if x.Is4() != y.Is4() {
		return false
	}
	return x.IsUnspecified() || y.IsUnspecified() || x == y
}

// probeSocket fails when a process on this host already listens on the port,
// as Docker's own bridge would fail to bind it.
func probeSocket(b Binding) error {
	host := b.HostAddr()
	addr := net.JoinHostPort(host.String(), strconv.Itoa(int(b.HostPort)))
	// One family only: a dual-stack socket on :: would also test IPv4.
	fam := "4"
	if host.Is6() {
		fam = "6"
	}
	var err error
	switch b.Proto {
	case 6:
		var l net.Listener
		if l, err = net.Listen("tcp"+fam, addr); err == nil {
			l.Close()
		}
	case 17:
		var c net.PacketConn
		if c, err = net.ListenPacket("udp"+fam, addr); err == nil {
			c.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("the port is already in use on this host")
	}
	// Other errors (a host address that is not local yet, say) do not make
	// the port busy: DNAT works without a socket.
	return nil
}
