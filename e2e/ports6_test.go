package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// whoamiWeb serves /cgi-bin/ip in a container: the client address the
// container's server sees. It tells a DNATed connection (the client's own
// address) from a proxied one (the host's address on the network).
const whoamiWeb = `mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho remote=$REMOTE_ADDR\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www`

// requireCLI skips the test on a dockerd older than major (requireEngine),
// or when the lab's docker CLI is (scripts/e2e.sh gives a current engine a
// current CLI): the test needs its flags (--ipv4=false, gw-priority).
func requireCLI(t *testing.T, major int, why string) {
	t.Helper()
	requireEngine(t, major, why)
	client := docker(t, host, "version", "-f", "{{.Client.Version}}")
	if m, err := strconv.Atoi(strings.SplitN(client, ".", 2)[0]); err != nil || m < major {
		t.Skipf("docker CLI %s (%s): %s needs a CLI of Docker %d or later ($WEFT_LAB_DOCKER)", client, theLab.DockerCLI(), why, major)
	}
}

// labIPv6 gives the Docker host and the outside host IPv6 addresses on the
// lab LAN (fd18::/64, the last byte of their IPv4 address), removed at
// cleanup, and returns them.
func labIPv6(t *testing.T) (hostAddr, extAddr string) {
	t.Helper()
	add := func(h *lab.Host) string {
		a := fmt.Sprintf("fd18::%d", h.Addr.As4()[3])
		if _, err := h.Run(ctx(t), "sysctl", "-qw", "net.ipv6.conf.lab0.disable_ipv6=0"); err != nil {
			t.Fatalf("enable IPv6 on %s: %v", h.Name, err)
		}
		if _, err := h.Run(ctx(t), "ip", "-6", "addr", "add", a+"/64", "dev", "lab0", "nodad"); err != nil {
			t.Fatalf("address %s on %s: %v", a, h.Name, err)
		}
		t.Cleanup(func() { h.Run(context.Background(), "ip", "-6", "addr", "del", a+"/64", "dev", "lab0") })
		return a
	}
	hostAddr, extAddr = add(host.Host), add(ext)
	if r := pingFromHost(t, ext, hostAddr); r != probe.Replied {
		t.Fatalf("the outside host cannot ping the Docker host at %s: %s", hostAddr, r)
	}
	return hostAddr, extAddr
}

// whoami asks the container behind addr:port, from the outside host, which
// client address it sees; "" when nothing answered.
func whoami(t *testing.T, addr string, port int) string {
	t.Helper()
	out, _ := ext.Run(ctx(t), "sh", "-c", fmt.Sprintf(`printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s %d`, addr, port))
	if _, after, ok := strings.Cut(out, "remote="); ok {
		return strings.TrimSpace(after)
	}
	return ""
}

// waitWhoami is whoami after the container's server is up: it retries for
// a while only until the first answer, on the address given.
func waitWhoami(t *testing.T, addr string, port int) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = whoami(t, addr, port); got != "" {
			break
		}
	}
	return got
}

// refused reports whether a connection from the outside host to addr:port
// is refused: the request arrived and nothing listens there.
func refused(t *testing.T, addr string, port int) bool {
	t.Helper()
	out, _ := ext.Run(ctx(t), "sh", "-c", fmt.Sprintf(`busybox nc -w 3 %s %d </dev/null 2>&1`, addr, port))
	return strings.Contains(out, "Connection refused")
}

// v6subnet is the scenario's IPv6 subnet fd00:N::/64 in the driver's range.
func (d netDriver) v6subnet(n int) string { return fmt.Sprintf("fd00:%d::/64", n+d.off) }

// TestPublishedPortsIPv6: -p publishes on the host's IPv4 and IPv6
// addresses. From a dual-stack network each family reaches the container's
// own address of that family (the server sees the client's address); from
// an IPv6-only network (--ipv4=false) on IPv6 only; to a container without
// IPv6 the host's IPv6 port is proxied to its IPv4 address (for weft, also
// once dockerd has restarted a killed weft). Docker's bridge does each on
// the same engine.
func TestPublishedPortsIPv6(t *testing.T) {
	requireLab(t)
	requireCLI(t, 28, "IPv6-only networks (--ipv4=false) and port publishing on both families")
	host6, ext6 := labIPv6(t)
	host4, ext4 := host.Addr.String(), ext.Addr.String()
	for i, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			port := 8100 + 10*i
			dual, v6only, v4only := netName(t, "dual"), netName(t, "v6"), netName(t, "v4")
			d.network(t, dual, "--ipv6", "--subnet", d.subnet(30), "--subnet", d.v6subnet(30))
			d.network(t, v6only, "--ipv4=false", "--ipv6", "--subnet", d.v6subnet(31))
			d.network(t, v4only, "--subnet", d.subnet(32))
			run(t, dual+"-web", "--network", dual, "-p", fmt.Sprintf("%d:80", port), lab.Image, "sh", "-c", whoamiWeb)
			run(t, v6only+"-web", "--network", v6only, "-p", fmt.Sprintf("%d:80", port+1), lab.Image, "sh", "-c", whoamiWeb)
			run(t, v4only+"-web", "--network", v4only, "-p", fmt.Sprintf("%d:80", port+2), lab.Image, "sh", "-c", whoamiWeb)

			if got := waitWhoami(t, host4, port); !strings.Contains(got, ext4) {
				t.Errorf("dual-stack -p %d:80 on the host's IPv4 address: the container saw %q, want the client %s", port, got, ext4)
			}
			if got := waitWhoami(t, host6, port); !strings.Contains(got, "["+ext6+"]") {
				t.Errorf("dual-stack -p %d:80 on the host's IPv6 address: the container saw %q, want the client %s", port, got, ext6)
			}
			if got := waitWhoami(t, host6, port+1); !strings.Contains(got, "["+ext6+"]") {
				t.Errorf("IPv6-only network, -p %d:80 on the host's IPv6 address: the container saw %q, want the client %s", port+1, got, ext6)
			}
			if !refused(t, host4, port+1) {
				t.Errorf("IPv6-only network, -p %d:80: the host's IPv4 port does not refuse, want nothing published there", port+1)
			}
			if got := waitWhoami(t, host4, port+2); !strings.Contains(got, ext4) {
				t.Errorf("IPv4-only network, -p %d:80 on the host's IPv4 address: the container saw %q, want the client %s", port+2, got, ext4)
			}
			// No IPv6 in the container: a proxy on the host connects to
			// its IPv4 address, from the network's gateway.
			if got := waitWhoami(t, host6, port+2); !strings.Contains(got, d.gateway(32)) {
				t.Errorf("IPv4-only network, -p %d:80 on the host's IPv6 address: the container saw %q, want the proxy's %s", port+2, got, d.gateway(32))
			}
			if d.name == "weft" {
				// The proxy lives in weft's process: once dockerd has
				// restarted a killed weft, it serves the port again.
				if _, _, err := host.KillPlugin(ctx(t), Plugin); err != nil {
					t.Fatal(err)
				}
				eventually(t, 30*time.Second, "the proxied IPv6 port answers after weft restarted", func() error {
					if got := whoami(t, host6, port+2); !strings.Contains(got, d.gateway(32)) {
						return fmt.Errorf("the container saw %q, want %s", got, d.gateway(32))
					}
					return nil
				})
			}
			docker(t, host, "rm", "-f", v4only+"-web")
			if !refused(t, host6, port+2) {
				t.Errorf("the host's IPv6 port %d still open after its container was removed", port+2)
			}
		})
	}
}

// TestSplitGatewayPorts: a container on an IPv4-only network that is its
// IPv4 gateway (gw-priority) and on a dual-stack one, which is then its
// IPv6 gateway, publishes -p on IPv4 from the first and on IPv6 from the
// second: each family reaches the container's own address on the
// network of that family's gateway (the server sees the client's
// address, so the IPv4-only endpoint did not proxy IPv6). The same when
// the IPv4 gateway is connected after the container started (dockerd then
// sends no_proxy_6to4); once it is disconnected, the dual-stack endpoint
// serves both families again.
func TestSplitGatewayPorts(t *testing.T) {
	requireLab(t)
	requireCLI(t, 28, "split IPv4 and IPv6 gateways (gw-priority)")
	host6, ext6 := labIPv6(t)
	host4, ext4 := host.Addr.String(), ext.Addr.String()
	for i, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			port := 8200 + 10*i
			n4, dual := netName(t, "n4"), netName(t, "dual")
			d.network(t, n4, "--subnet", d.subnet(33))
			d.network(t, dual, "--ipv6", "--subnet", d.subnet(34), "--subnet", d.v6subnet(34))
			run(t, n4+"-web", "--network", "name="+n4+",gw-priority=1", "--network", dual,
				"-p", fmt.Sprintf("%d:80", port), lab.Image, "sh", "-c", whoamiWeb)
			run(t, n4+"-late", "--network", dual, "-p", fmt.Sprintf("%d:80", port+1), lab.Image, "sh", "-c", whoamiWeb)
			if got := waitWhoami(t, host6, port+1); !strings.Contains(got, "["+ext6+"]") {
				t.Fatalf("before the IPv4 gateway is connected, -p %d:80 on the host's IPv6 address: the container saw %q, want %s", port+1, got, ext6)
			}
			docker(t, host, "network", "connect", "--gw-priority", "1", n4, n4+"-late")
			for _, p := range []int{port, port + 1} {
				if got := waitWhoami(t, host4, p); !strings.Contains(got, ext4) {
					t.Errorf("-p %d:80 on the host's IPv4 address: the container saw %q, want the client %s", p, got, ext4)
				}
				if got := waitWhoami(t, host6, p); !strings.Contains(got, "["+ext6+"]") {
					t.Errorf("-p %d:80 on the host's IPv6 address: the container saw %q, want the client %s", p, got, ext6)
				}
			}
			// Without its IPv4 gateway the dual-stack endpoint serves both
			// families again.
			docker(t, host, "network", "disconnect", n4, n4+"-late")
			if got := waitWhoami(t, host4, port+1); !strings.Contains(got, ext4) {
				t.Errorf("after disconnecting the IPv4 gateway, -p %d:80 on the host's IPv4 address: the container saw %q, want the client %s", port+1, got, ext4)
			}
			if got := waitWhoami(t, host6, port+1); !strings.Contains(got, "["+ext6+"]") {
				t.Errorf("after disconnecting the IPv4 gateway, -p %d:80 on the host's IPv6 address: the container saw %q, want the client %s", port+1, got, ext6)
			}
		})
	}
}
