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

// Choose fixes b.HostPort: the requested one, or the first free one of the
// requested range, or an ephemeral one. A port is free when no binding in
// taken (weft's other containers') holds it and no socket on this host does.
func Choose(b *Binding, taken []Binding) error {
	first, last := b.HostPort, b.HostPortEnd
	if first == 0 {
		first, last = ephemeralFirst, ephemeralLast
	}
	if last < first {
		last = first
	}
	var lastErr error
	for port := int(first); port <= int(last); port++ {
		candidate := *b
		candidate.HostPort, candidate.HostPortEnd = uint16(port), uint16(port)
		if err := free(candidate, taken); err != nil {
			lastErr = err
			continue
		}
		*b = candidate
		return nil
	}
	if first == last {
		return lastErr
	}
	return errdefs.Errorf(errdefs.Conflict, "no free host port in %d-%d for %s: %v", first, last, Protocols[b.Proto], lastErr)
}

func free(b Binding, taken []Binding) error {
	for _, t := range taken {
		if t.Proto == b.Proto && t.HostPort == b.HostPort && hostIPsOverlap(t.HostIP, b.HostIP) {
			return errdefs.Errorf(errdefs.Conflict, "cannot publish %s: another weft container already publishes it", b)
		}
	}
	if err := probeSocket(b); err != nil {
		return errdefs.Errorf(errdefs.Conflict, "cannot publish %s: %v", b, err)
	}
	return nil
}

func hostIPsOverlap(a, b string) bool {
	ua, ub := a == "" || a == "0.0.0.0" || a == "::", b == "" || b == "0.0.0.0" || b == "::"
	return ua || ub || a == b
}

// probeSocket fails when a process on this host already listens on the port,
// as Docker's own bridge would fail to bind it.
func probeSocket(b Binding) error {
	addr := net.JoinHostPort(b.HostIP, strconv.Itoa(int(b.HostPort)))
	var err error
	switch b.Proto {
	case 6:
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	case 17:
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
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
