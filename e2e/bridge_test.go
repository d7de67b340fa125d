package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testlab"
)

// TestBridgeAddressing covers --subnet, --gateway, --ip-range, --aux-address
// and --ip, name resolution, and the container's interfaces and routes.
func TestBridgeAddressing(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.10.0.0/24", "--gateway", "10.10.0.1",
		"--ip-range", "10.10.0.128/25", "--aux-address", "router=10.10.0.2")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net, "--ip", "10.10.0.50")

	ipA := containerIP(t, host, net+"-a")
	if !strings.HasPrefix(ipA, "10.10.0.") || lastOctet(ipA) < 128 {
		t.Errorf("container a got %q, want an address in --ip-range 10.10.0.128/25", ipA)
	}
	addrB, _ := sh(t, net+"-b", "ip -4 -o addr show eth0")
	if !strings.Contains(addrB, "10.10.0.50/24") {
		t.Errorf("--ip 10.10.0.50 not on eth0: %s", addrB)
	}
	route, _ := sh(t, net+"-a", "ip route show default")
	if !strings.Contains(route, "via 10.10.0.1") {
		t.Errorf("default route %q does not use --gateway 10.10.0.1", route)
	}
	links, _ := sh(t, net+"-a", "ip -o link show")
	if n := strings.Count(links, "\n") + 1; n != 2 || !strings.Contains(links, "eth0") {
		t.Errorf("container must have exactly lo and eth0 (no docker_gwbridge leg), has:\n%s", links)
	}
	reaches(t, net+"-a", net+"-b", true)
	reaches(t, net+"-b", ipA, true)
	reaches(t, net+"-a", "10.10.0.1", true)

	// The aux address is reserved: asking for it fails.
	msg := dockerFails(t, host, "run", "--rm", "--network", net, "--ip", "10.10.0.2", lab.Image, "true")
	if !strings.Contains(msg, "10.10.0.2") || !strings.Contains(msg, "in use") {
		t.Errorf("reserved aux address: error %q does not say 10.10.0.2 is in use", msg)
	}
}

// TestBridgeWithDockerIPAM: weft networks also work with Docker's own IPAM,
// and with a subnet weft's IPAM picks by itself.
func TestBridgeWithDockerIPAM(t *testing.T) {
	requireLab(t)
	withDocker := netName(t, "d")
	docker(t, host, "network", "create", "-d", Plugin, "--subnet", "10.11.0.0/24", withDocker)
	t.Cleanup(func() { host.Docker(context.Background(), "network", "rm", withDocker) })
	run(t, withDocker+"-a", "--network", withDocker)
	run(t, withDocker+"-b", "--network", withDocker)
	reaches(t, withDocker+"-a", withDocker+"-b", true)

	auto := netName(t, "auto")
	network(t, auto)
	subnet := docker(t, host, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", auto)
	if subnet == "" || strings.HasPrefix(subnet, "172.17.") {
		t.Errorf("weft picked subnet %q; want a free one (docker0 has 172.17.0.0/16)", subnet)
	}
	run(t, auto+"-a", "--network", auto)
	run(t, auto+"-b", "--network", auto)
	reaches(t, auto+"-a", auto+"-b", true)
}

// TestBridgeOptions: MTU, custom bridge name, ICC off.
func TestBridgeOptions(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.12.0.0/24",
		"-o", "com.docker.network.driver.mtu=1400",
		"-o", "com.docker.network.bridge.name=weftbr12",
		"-o", "com.docker.network.bridge.enable_icc=false")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	mtu, _ := sh(t, net+"-a", "cat /sys/class/net/eth0/mtu")
	if strings.TrimSpace(mtu) != "1400" {
		t.Errorf("container eth0 mtu = %q, want 1400", mtu)
	}
	if out, err := host.Run(ctx(t), "ip", "-d", "link", "show", "weftbr12"); err != nil || !strings.Contains(out, "bridge") {
		t.Errorf("bridge weftbr12 missing: %v %s", err, out)
	}
	reaches(t, net+"-a", net+"-b", false) // ICC off
	reaches(t, net+"-a", "10.12.0.1", true)
}

// TestMasquerade: a container reaches a machine outside through the host,
// which sees the Docker host's address; with masquerade off it cannot.
func TestMasquerade(t *testing.T) {
	requireLab(t)
	whoami := startWhoami(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.13.0.0/24")
	run(t, net+"-a", "--network", net)
	out, err := sh(t, net+"-a", whoami)
	// busybox httpd listens on IPv6 and reports [::ffff:198.18.0.11].
	if err != nil || !strings.Contains(out, host.Addr.String()+"]") {
		t.Errorf("outside host saw %q (err %v); want the Docker host's address %s", out, err, host.Addr)
	}

	plain := netName(t, "nomasq")
	network(t, plain, "--subnet", "10.14.0.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=false")
	run(t, plain+"-a", "--network", plain)
	if out, err := sh(t, plain+"-a", whoami); err == nil && strings.Contains(out, "remote=") {
		t.Errorf("with masquerade off the outside host answered %q; it has no route back, so it must not", out)
	}
}

// startWhoami runs, on the outside host, an HTTP server answering with the
// caller's address; it returns the container command that asks it.
func startWhoami(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cgi := filepath.Join(dir, "cgi-bin", "ip")
	os.MkdirAll(filepath.Dir(cgi), 0o755)
	os.WriteFile(cgi, []byte("#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho remote=$REMOTE_ADDR\n"), 0o755)
	p, err := ext.Start("busybox", "httpd", "-f", "-p", "9000", "-h", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return fmt.Sprintf(`printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | nc -w 3 %s 9000`, ext.Addr)
}

// TestPublishedPorts: -p with and without a host IP, UDP, host_binding_ipv4,
// reachable from another lab host, gone when the container stops.
func TestPublishedPorts(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.15.0.0/24")
	web := `mkdir -p /www && echo hello-weft > /www/index.html && exec httpd -f -p 80 -h /www`
	run(t, net+"-web", "--network", net, "-p", "8080:80", "-p", host.Addr.String()+":8081:80", lab.Image, "sh", "-c", web)
	docker(t, host, "create", "--name", net+"-udp", "--stop-timeout", "1", "--network", net, "-p", "5353:53/udp", lab.Image, "/udpecho", "serve", "53")
	t.Cleanup(func() { host.Docker(context.Background(), "rm", "-f", net+"-udp") })
	docker(t, host, "cp", udpEcho, net+"-udp:/udpecho")
	docker(t, host, "start", net+"-udp")

	get := func(addr string, port int) string {
		out, _ := ext.Run(ctx(t), "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s %d`, addr, port))
		return out
	}
	// A container's server takes a moment to listen after `docker run -d`
	// returns ("connection refused" then means DNAT worked and nobody
	// listens yet): wait for the first answer, then assert.
	waitServed := func(addr string, port int) string {
		var out string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if out = get(addr, port); strings.Contains(out, "hello-weft") {
				break
			}
		}
		return out
	}
	if out := waitServed(host.Addr.String(), 8080); !strings.Contains(out, "hello-weft") {
		t.Errorf("-p 8080:80 not reachable from the outside host: %q", out)
	}
	if out := get(host.Addr.String(), 8081); !strings.Contains(out, "hello-weft") {
		t.Errorf("-p %s:8081:80 not reachable: %q", host.Addr, out)
	}
	var udpOut string
	var udpErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if udpOut, udpErr = ext.Run(ctx(t), udpEcho, "send", host.Addr.String()+":5353", "weft-udp"); strings.Contains(udpOut, "echo:weft-udp") {
			break
		}
	}
	if !strings.Contains(udpOut, "echo:weft-udp") {
		t.Errorf("-p 5353:53/udp: no answer from the container: %q %v", udpOut, udpErr)
	}

	// Beyond Docker's iptables-only mode: the host itself (also on 127.0.0.1)
	// and a container on the same network (hairpin) reach the port.
	if out, _ := host.Run(ctx(t), "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 127.0.0.1 8080`); !strings.Contains(out, "hello-weft") {
		t.Errorf("published port not reachable from the Docker host at 127.0.0.1:8080: %q", out)
	}
	run(t, net+"-peer", "--network", net)
	if out, _ := sh(t, net+"-peer", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s 8080`, host.Addr)); !strings.Contains(out, "hello-weft") {
		t.Errorf("published port not reachable from a container on the same network via the host address: %q", out)
	}
	// Between the network's own containers the host tracks nothing
	// (WEFT-NOTRACK): the hairpin above needed conntrack, this does not.
	before := untrackedPackets(t, "10.15.0.0/24")
	if out, _ := sh(t, net+"-peer", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 `+net+`-web 80`); !strings.Contains(out, "hello-weft") {
		t.Errorf("web not reachable by name from a container of its network: %q", out)
	}
	if after := untrackedPackets(t, "10.15.0.0/24"); after < before+2 {
		t.Errorf("%d packets between two containers of %s kept out of conntrack, want the connection's", after-before, net)
	}

	// host_binding_ipv4 picks the host address ports are published on.
	second := "198.18.0.61"
	if _, err := host.Run(ctx(t), "ip", "addr", "add", second+"/24", "dev", "lab0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Run(context.Background(), "ip", "addr", "del", second+"/24", "dev", "lab0") })
	bound := netName(t, "bound")
	network(t, bound, "--subnet", "10.16.0.0/24", "-o", "com.docker.network.bridge.host_binding_ipv4="+second)
	run(t, bound+"-web", "--network", bound, "-p", "8082:80", lab.Image, "sh", "-c", web)
	if out := waitServed(second, 8082); !strings.Contains(out, "hello-weft") {
		t.Errorf("port not published on host_binding_ipv4 %s: %q", second, out)
	}
	if out := get(host.Addr.String(), 8082); strings.Contains(out, "hello-weft") {
		t.Errorf("port published on %s although host_binding_ipv4 is %s", host.Addr, second)
	}

	docker(t, host, "stop", "-t", "1", net+"-web")
	if out := get(host.Addr.String(), 8080); strings.Contains(out, "hello-weft") {
		t.Errorf("port 8080 still answers after the container stopped")
	}
}

// TestInternal: containers on an internal network reach each other and
// nothing outside; nothing outside reaches them.
func TestInternal(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--internal", "--subnet", "10.17.0.0/24")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	reaches(t, net+"-a", net+"-b", true)
	reaches(t, net+"-a", ext.Addr.String(), false)
	ipA := containerIP(t, host, net+"-a")
	if _, err := ext.Run(ctx(t), "ip", "route", "add", "10.17.0.0/24", "via", host.Addr.String()); err == nil {
		t.Cleanup(func() { ext.Run(context.Background(), "ip", "route", "del", "10.17.0.0/24") })
	}
	// Positive control: the outside host can ping at all.
	if _, err := ext.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", "2", host.Addr.String()); err != nil {
		t.Fatalf("outside host cannot ping the Docker host, so the next check would prove nothing: %v", err)
	}
	if _, err := ext.Run(ctx(t), "busybox", "ping", "-c", "1", "-W", "2", ipA); err == nil {
		t.Errorf("outside host reached %s on an internal network", ipA)
	}
	links, _ := sh(t, net+"-a", "ip -o link show")
	if strings.Count(links, "\n")+1 != 2 {
		t.Errorf("internal container must have only lo and eth0 (no docker_gwbridge), has:\n%s", links)
	}
}

// TestIsolationAndMultiTier: two weft networks are isolated; a container on
// both reaches both (the front-end/back-end pattern), and the back end,
// internal, reaches nothing outside.
func TestIsolationAndMultiTier(t *testing.T) {
	requireLab(t)
	front, back := netName(t, "front"), netName(t, "back")
	network(t, front, "--subnet", "10.18.0.0/24")
	network(t, back, "--internal", "--subnet", "10.19.0.0/24")
	run(t, "web", "--network", front)
	docker(t, host, "network", "connect", back, "web")
	run(t, "db", "--network", back)
	run(t, "client", "--network", front)

	reaches(t, "web", "db", true)     // app tier reaches data tier by name
	reaches(t, "client", "web", true) // public tier reaches app tier
	reaches(t, "client", "db", false) // ...but not the data tier
	dbIP := containerIP(t, host, "db")
	reaches(t, "client", dbIP, false)
	reaches(t, "db", ext.Addr.String(), false)
	reaches(t, "web", ext.Addr.String(), true)

	// Isolation between two ordinary networks, and against Docker's bridge.
	other := netName(t, "other")
	network(t, other, "--subnet", "10.20.0.0/24")
	run(t, "stranger", "--network", other)
	strangerIP := containerIP(t, host, "stranger")
	webIP := docker(t, host, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+front+"\").IPAddress}}", "web")
	reaches(t, "client", strangerIP, false)
	reaches(t, "stranger", webIP, false)
	run(t, "on-docker-bridge")
	reaches(t, "on-docker-bridge", webIP, false)
}

// TestIPv6DualStack: --ipv6 gives containers both families; they talk over v6.
func TestIPv6DualStack(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--ipv6", "--subnet", "10.21.0.0/24", "--subnet", "fd00:21::/64")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net, "--ip6", "fd00:21::50")
	v6, _ := sh(t, net+"-b", "ip -6 -o addr show eth0 scope global")
	if !strings.Contains(v6, "fd00:21::50/64") {
		t.Fatalf("--ip6 fd00:21::50 not on eth0: %q", v6)
	}
	if out, err := sh(t, net+"-a", "ping -6 -c 1 -W 2 fd00:21::50"); err != nil {
		t.Errorf("IPv6 ping between containers failed: %v %s", err, out)
	}
	route, _ := sh(t, net+"-a", "ip -6 route show default")
	if !strings.Contains(route, "via fd00:21::1") {
		t.Errorf("IPv6 default route %q does not use the gateway fd00:21::1", route)
	}
}

func lastOctet(ip string) int {
	var a, b, c, d int
	fmt.Sscanf(ip, "%d.%d.%d.%d", &a, &b, &c, &d)
	return d
}

// untrackedPackets is how many packets within subnet weft's WEFT-NOTRACK
// rule has kept out of the Docker host's conntrack.
func untrackedPackets(t *testing.T, subnet string) int {
	t.Helper()
	out, err := host.Run(ctx(t), "iptables", "-w", "-t", "raw", "-S", "WEFT-NOTRACK", "-v")
	if err != nil {
		t.Fatalf("no WEFT-NOTRACK chain on the Docker host: %v", err)
	}
	n, err := testlab.CountedPackets(out, func(rule string) bool {
		return strings.Contains(rule, "-s "+subnet+" -d "+subnet+" ") && strings.HasSuffix(rule, "--notrack")
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
