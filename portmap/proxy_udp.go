package portmap

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// udpProxy relays datagrams: each client address gets its own socket
// towards the container, so replies find their way back.
type udpProxy struct {
	c      net.PacketConn
	target string
	log    logrus.FieldLogger

	// mu guards clients (client address -> socket towards the container).
	mu      sync.Mutex
	clients map[string]net.Conn
	closed  bool
}

func (u *udpProxy) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := u.c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out := u.client(from)
		if out == nil {
			continue
		}
		_ = out.SetReadDeadline(time.Now().Add(udpIdle))
		if _, err := out.Write(buf[:n]); err != nil {
			u.log.WithError(err).Debug("proxy cannot reach the container")
		}
	}
}

// client is the socket towards the container for one client, made on its
// first datagram.
func (u *udpProxy) client(from net.Addr) net.Conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	if out := u.clients[from.String()]; out != nil {
		return out
	}
	out, err := net.Dial("udp4", u.target)
	if err != nil {
		u.log.WithError(err).Debug("proxy cannot reach the container")
		return nil
	}
	u.clients[from.String()] = out
	go u.replies(from, out)
	return out
}

// replies relays the container's answers to one client until it has been
// quiet for udpIdle.
func (u *udpProxy) replies(to net.Addr, out net.Conn) {
	defer func() {
		u.mu.Lock()
		delete(u.clients, to.String())
		u.mu.Unlock()
		out.Close()
	}()
	buf := make([]byte, 65535)
	for {
		_ = out.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := out.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // an ICMP error for one datagram: the relay goes on
		}
		if _, err := u.c.WriteTo(buf[:n], to); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (u *udpProxy) Close() error {
	err := u.c.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for _, out := range u.clients {
		out.Close()
	}
	return err
}
