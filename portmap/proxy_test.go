package portmap

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
)

// freePort is a tcp and udp port free on ::1 now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// TestProxyRelays: a proxied IPv6 port reaches an IPv4 server over tcp
// and udp, the server's answer comes back, and Sync closes what is no
// longer wanted.
func TestProxyRelays(t *testing.T) {
	echo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	uecho, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uecho.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := uecho.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = uecho.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	port := freePort(t)
	host := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	fwd := []Forward{
		{Proto: "tcp", Host: host, Target: netip.MustParseAddrPort(echo.Addr().String())},
		{Proto: "udp", Host: host, Target: netip.MustParseAddrPort(uecho.LocalAddr().String())},
	}
	p := NewProxies(logrus.New())
	defer p.Close()
	if err := p.Sync(fwd); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp6", host.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "hello\n" {
		t.Errorf("tcp through the proxy: %q %v", line, err)
	}
	u, err := net.Dial("udp6", host.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(u, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := u.Read(buf); string(buf[:n]) != "echo:ping" {
		t.Errorf("udp through the proxy: %q %v", buf[:n], err)
	}

	if err := p.Sync(fwd[1:]); err != nil {
		t.Fatal(err)
	}
	// The relayed connection ends with the port, as Docker's proxy's does.
	if _, err := bufio.NewReader(c).ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("relayed connection after its port was withdrawn: %v, want EOF", err)
	}
	c.Close()
	if c, err := net.DialTimeout("tcp6", host.String(), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("tcp port still open after Sync withdrew it")
	}
}

// TestProxyBusyPort: a port another socket holds is a conflict naming it.
func TestProxyBusyPort(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	host := netip.MustParseAddrPort(l.Addr().String())
	p := NewProxies(logrus.New())
	defer p.Close()
	err = p.Sync([]Forward{{Proto: "tcp", Host: host, Target: netip.MustParseAddrPort("127.0.0.1:80")}})
	if !errors.Is(err, errdefs.Conflict) {
		t.Errorf("got %v, want a conflict", err)
	}
}
