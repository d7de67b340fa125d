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

// The bridge options Docker added since 20.10, each run on weft and on
// Docker's own bridge on the same engine (weft has them on every engine,
// Docker's bridge from 28). Subnets 10.50-10.60 (weft) and 10.150-10.160
// (Docker's bridge).

// requireEngine skips a test of a feature the engine under test is too old
// for (the suite also runs on Debian's Docker 20.10).
func requireEngine(t *testing.T, major int, feature string) {
	t.Helper()
	if got := engineMajor(t, host); got < major {
		t.Skipf("%s needs Docker %d or later; this engine is %d", feature, major, got)
	}
}

// requireOption skips the run on Docker's own bridge where the engine is
// older than 28 and lacks the option; weft has it on every engine.
func (d netDriver) requireOption(t *testing.T, option string) {
	t.Helper()
	if d.name != "weft" {
		requireEngine(t, 28, option+" on Docker's bridge")
	}
}

// webTwoPorts runs a container serving hello-weft on ports 80 and 81,
// publishing 80 on hostPort; it returns the container's address once both
// ports answer inside the container.
func webTwoPorts(t *testing.T, name, net string, hostPort int, extra ...string) string {
	t.Helper()
	web := `mkdir -p /www && echo hello-weft > /www/index.html && httpd -p 81 -h /www && exec httpd -f -p 80 -h /www`
	args := append([]string{"--network", net, "-p", fmt.Sprintf("%d:80", hostPort)}, extra...)
	run(t, name, append(args, lab.Image, "sh", "-c", web)...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		a, _ := sh(t, name, `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 127.0.0.1 80`)
		b, _ := sh(t, name, `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 127.0.0.1 81`)
		if strings.Contains(a, "hello-weft") && strings.Contains(b, "hello-weft") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web server in %s does not answer on 80 and 81", name)
		}
	}
	return containerIP(t, host, name)
}

// httpFromHost asks addr:port from lab host h: "served" when the web server
// answered, "timeout" when nothing answered (a firewall dropped it),
// "refused" when the host answered no one listens. Anything else fails
// the test: it would prove nothing either way.
func httpFromHost(t *testing.T, h *lab.Host, addr string, port int) string {
	t.Helper()
	out, err := h.Run(ctx(t), "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s %d`, addr, port))
	switch {
	case strings.Contains(out, "hello-weft"):
		return "served"
	case strings.Contains(out, "Connection refused"):
		return "refused"
	case err != nil && strings.Contains(out, "timed out"):
		return "timeout"
	}
	t.Fatalf("http %s:%d from %s: neither served, refused nor timed out: %v %q", addr, port, h.Name, err, out)
	return ""
}

func wantHTTP(t *testing.T, h *lab.Host, addr string, port int, want ...string) {
	t.Helper()
	if got := httpFromHost(t, h, addr, port); !strings.Contains(strings.Join(want, " "), got) {
		t.Errorf("http %s:%d from %s: %s, want %s", addr, port, h.Name, got, strings.Join(want, " or "))
	}
}

// TestGatewayModeRouted: with gateway_mode_ipv4=routed another lab host
// with a route to the subnet reaches the container's published port at
// the container's own address, and no other port (the container serves
// 81 too, and the Docker host itself reaches it: the positive control);
// the host port is not published; the container's traffic leaves with its
// own address. Beside it a nat network, where the same direct access
// fails.
func TestGatewayModeRouted(t *testing.T) {
	requireLab(t)
	whoami := startWhoami(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "gateway_mode_ipv4=routed")
			net, natNet := netName(t, "r"), netName(t, "nat")
			d.network(t, net, "--subnet", d.subnet(50), "-o", "com.docker.network.bridge.gateway_mode_ipv4=routed")
			d.network(t, natNet, "--subnet", d.subnet(51))
			routeVia(t, ext, d.subnet(50), host)
			routeVia(t, ext, d.subnet(51), host)
			ip := webTwoPorts(t, net+"-web", net, 8090)
			natIP := webTwoPorts(t, natNet+"-web", natNet, 8091)

			wantHTTP(t, ext, ip, 80, "served")
			wantHTTP(t, host.Host, ip, 81, "served")
			wantHTTP(t, ext, ip, 81, "timeout")
			wantHTTP(t, ext, host.Addr.String(), 8090, "refused")
			wantHTTP(t, ext, natIP, 80, "timeout")
			wantHTTP(t, ext, host.Addr.String(), 8091, "served")
			if out, err := sh(t, net+"-web", whoami); err != nil || !strings.Contains(out, "::ffff:"+ip+"]") {
				t.Errorf("routed: the outside host saw %q (err %v); want the container's own address %s", out, err, ip)
			}
			if d.name != "weft" {
				return
			}
			// The mode is in the network's record: a restarted weft
			// rebuilds the same rules.
			if _, _, err := host.KillPlugin(ctx(t), Plugin); err != nil {
				t.Fatal(err)
			}
			wantHTTP(t, ext, ip, 80, "served")
			wantHTTP(t, ext, ip, 81, "timeout")
		})
	}
}

// TestGatewayModeNATUnprotected: nat-unprotected still publishes through
// the host's address and masquerades, and also lets a host with a route
// reach every port of the container directly (nat drops that: TestGateway-
// ModeRouted's nat network).
func TestGatewayModeNATUnprotected(t *testing.T) {
	requireLab(t)
	whoami := startWhoami(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "gateway_mode_ipv4=nat-unprotected")
			net := netName(t, "u")
			d.network(t, net, "--subnet", d.subnet(52), "-o", "com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected")
			routeVia(t, ext, d.subnet(52), host)
			ip := webTwoPorts(t, net+"-web", net, 8092)

			wantHTTP(t, ext, host.Addr.String(), 8092, "served")
			wantHTTP(t, ext, ip, 80, "served")
			wantHTTP(t, ext, ip, 81, "served")
			if out, err := sh(t, net+"-web", whoami); err != nil || !strings.Contains(out, host.Addr.String()+"]") {
				t.Errorf("nat-unprotected: the outside host saw %q (err %v); want the Docker host's address %s", out, err, host.Addr)
			}
		})
	}
}

// TestGatewayModeIsolated: an isolated internal network (both families)
// has no address on its bridge: the host cannot reach its containers, nor they the host,
// while they reach each other. A plain internal network beside it lets the
// host reach its container (positive control). Not internal: refused.
func TestGatewayModeIsolated(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "gateway_mode_ipv4=isolated")
			net, plain := netName(t, "i"), netName(t, "p")
			br := "wfiso" + strconv.Itoa(53+d.off)
			d.network(t, net, "--internal", "--subnet", d.subnet(53), "-o", "com.docker.network.bridge.name="+br,
				"--ipv6", "--subnet", fmt.Sprintf("fd00:%d::/64", 53+d.off),
				"-o", "com.docker.network.bridge.gateway_mode_ipv4=isolated", "-o", "com.docker.network.bridge.gateway_mode_ipv6=isolated")
			d.network(t, plain, "--internal", "--subnet", d.subnet(54))
			run(t, net+"-a", "--network", net, "--cap-add", "NET_ADMIN")
			run(t, net+"-b", "--network", net)
			run(t, plain+"-a", "--network", plain)

			// Not even an IPv6 link-local address.
			if out, err := host.Run(ctx(t), "ip", "-o", "addr", "show", "dev", br); err != nil || strings.Contains(out, "inet") {
				t.Errorf("bridge %s of an isolated network has an address (or is missing): %v %s", br, err, out)
			}
			// No gateway address is even reserved (GwAllocCheck, Docker
			// 28+); the plain internal network has one.
			gateway := func(n string) string {
				return docker(t, host, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", n)
			}
			if gw, plainGW := gateway(net), gateway(plain); engineMajor(t, host) >= 28 && (gw != "" || plainGW != d.gateway(54)) {
				t.Errorf("gateways: isolated %q, want none; plain internal %q, want %s", gw, plainGW, d.gateway(54))
			}
			reaches(t, net+"-a", net+"-b")
			hostReaches(t, host.Host, containerIP(t, host, plain+"-a"))
			if r := pingFromHost(t, host.Host, containerIP(t, host, net+"-b")); r == probe.Replied {
				t.Errorf("the Docker host reached a container of an isolated network")
			}
			// A container that routes to the host's address on its link
			// itself: nothing on the bridge answers for it.
			if out, err := sh(t, net+"-a", "ip route add "+host.Addr.String()+" dev eth0"); err != nil {
				t.Fatalf("route in %s: %v %s", net+"-a", err, out)
			}
			cutOff(t, host, net+"-a", host.Addr.String())

			msg := dockerFails(t, host, append(append([]string{"network", "create"}, d.args...),
				"--subnet", d.subnet(55), "-o", "com.docker.network.bridge.gateway_mode_ipv4=isolated", netName(t, "bad"))...)
			if !strings.Contains(msg, "isolated") || !strings.Contains(msg, "internal") {
				t.Errorf("isolated without --internal: error %q does not say it needs an internal network", msg)
			}
		})
	}
}

// TestTrustedHostInterfaces: traffic arriving on a trusted interface (the
// Docker host's lab NIC) reaches a published port at the container's own
// address, and still no unpublished port; without the option the same
// access fails (TestGatewayModeRouted's nat network).
func TestTrustedHostInterfaces(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "trusted_host_interfaces")
			net := netName(t, "t")
			d.network(t, net, "--subnet", d.subnet(56), "-o", "com.docker.network.bridge.trusted_host_interfaces=eth9:lab0")
			routeVia(t, ext, d.subnet(56), host)
			ip := webTwoPorts(t, net+"-web", net, 8093)

			wantHTTP(t, ext, ip, 80, "served")
			wantHTTP(t, host.Host, ip, 81, "served")
			wantHTTP(t, ext, ip, 81, "timeout")
			wantHTTP(t, ext, host.Addr.String(), 8093, "served")
		})
	}
}

// TestInhibitIPv4: the bridge gets no IPv4 address, yet containers still
// route through the gateway address: once something on the bridge holds
// it (here the host, by hand), they reach it.
func TestInhibitIPv4(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "inhibit_ipv4")
			net := netName(t, "n")
			br := "wfinh" + strconv.Itoa(57+d.off)
			d.network(t, net, "--subnet", d.subnet(57), "-o", "com.docker.network.bridge.name="+br,
				"-o", "com.docker.network.bridge.inhibit_ipv4=true")
			run(t, net+"-a", "--network", net)
			gw := d.gateway(57)
			if out, err := host.Run(ctx(t), "ip", "-4", "-o", "addr", "show", "dev", br); err != nil || strings.Contains(out, "inet ") {
				t.Errorf("bridge %s with inhibit_ipv4 has an IPv4 address (or is missing): %v %s", br, err, out)
			}
			if out, _ := sh(t, net+"-a", "ip route show default"); !strings.Contains(out, "via "+gw) {
				t.Errorf("container's default route %q, want via %s", out, gw)
			}
			cutOff(t, host, net+"-a", gw)
			if _, err := host.Run(ctx(t), "ip", "addr", "add", gw+"/24", "dev", br); err != nil {
				t.Fatal(err)
			}
			// The host's ARP request teaches the container the gateway's
			// MAC: its own resolution, begun by the ping above, may still
			// be running out its probes and drop the next packet.
			hostReaches(t, host.Host, containerIP(t, host, net+"-a"))
			reaches(t, net+"-a", gw)
		})
	}
}

// TestHostIPv4 (com.docker.network.host_ipv4): a remote peer sees the
// network's outbound traffic come from the address given, not from the
// address masquerading picks (which a plain network shows beside it).
func TestHostIPv4(t *testing.T) {
	requireLab(t)
	whoami := startWhoami(t)
	second := "198.18.0.63"
	if _, err := host.Run(ctx(t), "ip", "addr", "add", second+"/24", "dev", "lab0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Run(context.Background(), "ip", "addr", "del", second+"/24", "dev", "lab0") })
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			d.requireOption(t, "com.docker.network.host_ipv4")
			net, plain := netName(t, "s"), netName(t, "p")
			d.network(t, net, "--subnet", d.subnet(58), "-o", "com.docker.network.host_ipv4="+second)
			d.network(t, plain, "--subnet", d.subnet(59))
			run(t, net+"-a", "--network", net)
			run(t, plain+"-a", "--network", plain)
			if out, err := sh(t, net+"-a", whoami); err != nil || !strings.Contains(out, "::ffff:"+second+"]") {
				t.Errorf("host_ipv4=%s: the outside host saw %q (err %v)", second, out, err)
			}
			if out, err := sh(t, plain+"-a", whoami); err != nil || !strings.Contains(out, "::ffff:"+host.Addr.String()+"]") {
				t.Errorf("plain network: the outside host saw %q (err %v), want %s", out, err, host.Addr)
			}
		})
	}
}

// TestEndpointIfName: driver-opt com.docker.network.endpoint.ifname names
// the container's interface; without it the name is eth0.
func TestEndpointIfName(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			if d.name == "weft" {
				requireEngine(t, 29, "com.docker.network.endpoint.ifname on a remote driver (InterfaceName.DstName)")
			}
			d.requireOption(t, "com.docker.network.endpoint.ifname")
			net := netName(t, "n")
			d.network(t, net, "--subnet", d.subnet(60))
			run(t, net+"-a", "--network", "name="+net+",driver-opt=com.docker.network.endpoint.ifname=foo0")
			run(t, net+"-b", "--network", net)
			if out, _ := sh(t, net+"-a", "ip -o link show"); !strings.Contains(out, ": foo0@") || strings.Contains(out, "eth0") {
				t.Errorf("container's interfaces, want foo0 and no eth0:\n%s", out)
			}
			if out, _ := sh(t, net+"-b", "ip -o link show"); !strings.Contains(out, ": eth0@") {
				t.Errorf("container without the option, want eth0:\n%s", out)
			}
			reaches(t, net+"-b", net+"-a")
		})
	}
}

// TestBadGatewayOptions: a bad value of each option fails the create with
// an error naming the option and what is accepted, and leaves nothing
// behind: no link, no rule, no pool (the subnet is free afterwards). The
// same for a bad interface name at docker run.
func TestBadGatewayOptions(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown gateway mode", []string{"-o", "com.docker.network.bridge.gateway_mode_ipv4=bridged"},
			[]string{`invalid value "bridged" for option com.docker.network.bridge.gateway_mode_ipv4`, "nat, nat-unprotected, routed, isolated"}},
		{"gateway mode in capitals", []string{"-o", "com.docker.network.bridge.gateway_mode_ipv6=NAT"},
			[]string{"com.docker.network.bridge.gateway_mode_ipv6", "nat, nat-unprotected, routed, isolated"}},
		{"isolated not internal", []string{"-o", "com.docker.network.bridge.gateway_mode_ipv4=isolated"},
			[]string{"com.docker.network.bridge.gateway_mode_ipv4", "isolated needs an internal network"}},
		{"trusted wildcard", []string{"-o", "com.docker.network.bridge.trusted_host_interfaces=eth+"},
			[]string{"com.docker.network.bridge.trusted_host_interfaces", "interface names separated by ':'"}},
		{"inhibit not a bool", []string{"-o", "com.docker.network.bridge.inhibit_ipv4=yes"},
			[]string{"com.docker.network.bridge.inhibit_ipv4", "true or false"}},
		{"host_ipv4 of IPv6", []string{"-o", "com.docker.network.host_ipv4=2001:db8::1"},
			[]string{"com.docker.network.host_ipv4", "IPv4 address"}},
		{"host_ipv6 of IPv4", []string{"-o", "com.docker.network.host_ipv6=198.18.0.1"},
			[]string{"com.docker.network.host_ipv6", "IPv6 address"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--subnet", "10.99.0.0/24"}, tt.args...)
			msg := dockerFails(t, host, append(args, "bad-"+strings.ReplaceAll(tt.name, " ", "-"))...)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if after := hostState(t); after != before {
		t.Errorf("failed creates left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	net := netName(t, "ok")
	network(t, net, "--subnet", "10.99.0.0/24")
	if engineMajor(t, host) < 29 {
		return // only Docker 29+ passes the interface name on
	}
	before = hostState(t)
	msg := dockerFails(t, host, "run", "--rm", "--network", "name="+net+",driver-opt=com.docker.network.endpoint.ifname=a-very-long-ifname", lab.Image, "true")
	t.Logf("docker run with a bad interface name: %s", msg)
	if !strings.Contains(msg, "com.docker.network.endpoint.ifname") || !strings.Contains(msg, "at most 15") {
		t.Errorf("bad interface name: error %q does not name the option and the limit", msg)
	}
	if after := hostState(t); after != before {
		t.Errorf("a failed run left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
