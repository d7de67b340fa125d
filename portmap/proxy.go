package portmap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
)

// The kernel cannot translate between families, so a host IPv6 port of a
// container with only IPv4 is served in user space, as Docker's
// docker-proxy does: weft listens on the host's IPv6 port and relays each
// connection (or, for udp, each client's datagrams) to the container's
// IPv4 address. The container sees the connection come from its network's
// gateway.

const (
	dialTimeout = 5 * time.Second
	// udpIdle ends a udp client's relay after this long without a
	// datagram either way, as conntrack forgets a udp flow.
	udpIdle = 90 * time.Second
)

// Forward is one proxied port: connections to Host are relayed to Target.
type Forward struct {
	Proto        string // tcp or udp
	Host, Target netip.AddrPort
}

func (f Forward) String() string {
	return fmt.Sprintf("%s/%s to %s", f.Host, f.Proto, f.Target)
}

// Proxies runs the proxied ports. Safe for concurrent use.
type Proxies struct {
	log logrus.FieldLogger

	// mu guards open.
	mu   sync.Mutex
	open map[Forward]io.Closer
}

// NewProxies returns a Proxies with none open.
func NewProxies(log logrus.FieldLogger) *Proxies {
	return &Proxies{log: log, open: map[Forward]io.Closer{}}
}

// Sync makes the open proxies exactly want: it closes the others first (a
// wanted one may take over their port), then opens the missing ones. The
// error names every one that could not open; the rest are open.
func (p *Proxies) Sync(want []Forward) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	wanted := map[Forward]bool{}
	for _, f := range want {
		wanted[f] = true
	}
	for f, c := range p.open {
		if !wanted[f] {
			c.Close()
			delete(p.open, f)
			p.log.WithField("port", f.String()).Debug("proxy closed")
		}
	}
	var errs []error
	for f := range wanted {
		if p.open[f] != nil {
			continue
		}
		c, err := start(f, p.log.WithField("port", f.String()))
		if err != nil {
			errs = append(errs, errdefs.Errorf(errdefs.Conflict, "cannot publish [%s]:%d/%s: %v", f.Host.Addr(), f.Host.Port(), f.Proto, err))
			continue
		}
		p.open[f] = c
		p.log.WithField("port", f.String()).Debug("proxy open")
	}
	return errors.Join(errs...)
}

// IPv6Listenable reports whether this host can open IPv6 sockets, which
// the proxies need (Docker checks the same before it publishes on ::).
func IPv6Listenable() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Close closes every proxy.
func (p *Proxies) Close() error {
	return p.Sync(nil)
}

func start(f Forward, log logrus.FieldLogger) (io.Closer, error) {
	switch f.Proto {
	case "tcp":
		l, err := net.Listen("tcp6", f.Host.String())
		if err != nil {
			return nil, err
		}
		t := &tcpProxy{l: l, target: f.Target.String(), log: log, conns: map[net.Conn]bool{}}
		go t.serve()
		return t, nil
	case "udp":
		c, err := net.ListenPacket("udp6", f.Host.String())
		if err != nil {
			return nil, err
		}
		u := &udpProxy{c: c, target: f.Target.String(), log: log, clients: map[string]net.Conn{}}
		go u.serve()
		return u, nil
	}
	return nil, fmt.Errorf("weft proxies only tcp and udp")
}

// tcpProxy relays the connections of one listener.
type tcpProxy struct {
	l      net.Listener
	target string
	log    logrus.FieldLogger

	// mu guards conns, both ends of every relayed connection, so Close
	// ends them as Docker's proxy does when the port is withdrawn.
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (t *tcpProxy) serve() {
	for {
		in, err := t.l.Accept()
		if err != nil {
			return // closed
		}
		go t.relay(in)
	}
}

func (t *tcpProxy) relay(in net.Conn) {
	out, err := net.DialTimeout("tcp4", t.target, dialTimeout)
	if err != nil {
		t.log.WithError(err).Debug("proxy cannot reach the container")
		in.Close()
		return
	}
	if !t.track(in, out) {
		return
	}
	defer t.untrack(in, out)
	done := make(chan struct{})
	go func() {
		copyHalf(out, in)
		close(done)
	}()
	copyHalf(in, out)
	<-done
}

// copyHalf copies one direction, then passes the end of it on.
func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if c, ok := dst.(*net.TCPConn); ok {
		_ = c.CloseWrite()
	}
}

func (t *tcpProxy) track(conns ...net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		t.conns[c] = true
	}
	return true
}

func (t *tcpProxy) untrack(conns ...net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(t.conns, c)
	}
}

func (t *tcpProxy) Close() error {
	err := t.l.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	return err
}
