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
	"github.com/weftnet/weft/internal/probe"
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
	reaches(t, net+"-a", net+"-b")
	reaches(t, net+"-b", ipA)
	reaches(t, net+"-a", "10.10.0.1")

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
	reaches(t, withDocker+"-a", withDocker+"-b")

	auto := netName(t, "auto")
	network(t, auto)
	subnet := docker(t, host, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", auto)
	if subnet == "" || strings.HasPrefix(subnet, "172.17.") {
		t.Errorf("weft picked subnet %q; want a free one (docker0 has 172.17.0.0/16)", subnet)
	}
	run(t, auto+"-a", "--network", auto)
	run(t, auto+"-b", "--network", auto)
	reaches(t, auto+"-a", auto+"-b")
}

// TestBridgeOptions: MTU, custom bridge name.
func TestBridgeOptions(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.12.0.0/24",
		"-o", "com.docker.network.driver.mtu=1400",
		"-o", "com.docker.network.bridge.name=weftbr12")
	run(t, net+"-a", "--network", net)
	mtu, _ := sh(t, net+"-a", "cat /sys/class/net/eth0/mtu")
	if strings.TrimSpace(mtu) != "1400" {
		t.Errorf("container eth0 mtu = %q, want 1400", mtu)
	}
	if out, err := host.Run(ctx(t), "ip", "-d", "link", "show", "weftbr12"); err != nil || !strings.Contains(out, "bridge") {
		t.Errorf("bridge weftbr12 missing: %v %s", err, out)
	}
	reaches(t, net+"-a", "10.12.0.1")
}

// netDriver is a network driver a scenario runs on: weft, and Docker's own
// bridge on the same engine, which shows that what the scenario asserts is
// what Docker does.
type netDriver struct {
	name string
	args []string // what selects the driver in `docker network create`
	off  int      // added to the second octet of the scenario's subnets
}

var bridgeDrivers = []netDriver{
	{name: "weft", args: []string{"-d", Plugin, "--ipam-driver", Plugin}},
	{name: "docker-bridge", args: []string{"-d", "bridge"}, off: 100},
}

// network creates a network with the driver and removes it at cleanup.
func (d netDriver) network(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append(append([]string{"network", "create"}, d.args...), args...)
	docker(t, host, append(all, name)...)
	t.Cleanup(func() { host.Docker(context.Background(), "network", "rm", name) })
}

// subnet is the scenario's subnet 10.N.0.0/24 in the driver's range, gateway
// its gateway (.1).
func (d netDriver) subnet(n int) string  { return fmt.Sprintf("10.%d.0.0/24", n+d.off) }
func (d netDriver) gateway(n int) string { return fmt.Sprintf("10.%d.0.1", n+d.off) }

// TestICCOff: with enable_icc=false two containers of one network do not
// reach each other, while each reaches its gateway and answers the host.
func TestICCOff(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) {
			net := netName(t, "n")
			d.network(t, net, "--subnet", d.subnet(12), "-o", "com.docker.network.bridge.enable_icc=false")
			run(t, net+"-a", "--network", net)
			run(t, net+"-b", "--network", net)
			reaches(t, net+"-a", d.gateway(12))
			reaches(t, net+"-b", d.gateway(12))
			hostReaches(t, host.Host, containerIP(t, host, net+"-b"))
			cutOff(t, host, net+"-a", net+"-b") // by name: Docker's DNS answers it
		})
	}
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

	// With masquerade off the request leaves with the container's own
	// address, which the outside host has no route back to: it never
	// answers. Given a route back through the Docker host, it answers and
	// names the container's address.
	plain := netName(t, "nomasq")
	network(t, plain, "--subnet", "10.14.0.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=false")
	run(t, plain+"-a", "--network", plain)
	if out, err := sh(t, plain+"-a", whoami); err == nil || !strings.Contains(err.Error(), "nc: timed out") {
		t.Errorf("with masquerade off and no route back the outside host answered or the request failed otherwise: %q %v", out, err)
	}
	routeVia(t, ext, "10.14.0.0/24", host)
	ip := containerIP(t, host, plain+"-a")
	if out, err := sh(t, plain+"-a", whoami); err != nil || !strings.Contains(out, "::ffff:"+ip+"]") {
		t.Errorf("with masquerade off the outside host saw %q (err %v); want the container's own address %s", out, err, ip)
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
	// Refused, not silent: the Docker host itself answers that nothing
	// listens there, so the request did arrive.
	if out := get(host.Addr.String(), 8082); !strings.Contains(out, "Connection refused") {
		t.Errorf("port 8082 on %s, although host_binding_ipv4 is %s: %q, want the connection refused", host.Addr, second, out)
	}

	docker(t, host, "stop", "-t", "1", net+"-web")
	if out := get(host.Addr.String(), 8080); !strings.Contains(out, "Connection refused") {
		t.Errorf("port 8080 after the container stopped: %q, want the connection refused", out)
	}
}

// TestInternal: containers on an internal network reach each other and
// nothing outside, not even one that gives itself a default route through
// the gateway; nothing outside reaches them, although the outside host has
// a route to the network through the Docker host. Positive controls beside
// each: the outside host's route reaches the network's gateway, and the
// same kind of route carries the outside host's replies into a container of
// a non-internal network (masquerade off).
func TestInternal(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) { internalScenario(t, d) })
	}
}

func internalScenario(t *testing.T, d netDriver) {
	net, open := netName(t, "n"), netName(t, "open")
	d.network(t, net, "--internal", "--subnet", d.subnet(17))
	openArgs := []string{"--subnet", d.subnet(22), "-o", "com.docker.network.bridge.enable_ip_masquerade=false"}
	if d.name == "docker-bridge" && engineAtLeast(28, 0) {
		// Docker 28 and later drop what arrives for a container of a nat
		// network from outside its bridge, replies included ("direct
		// access filtering"), unless the network is nat-unprotected.
		openArgs = append(openArgs, "-o", "com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected")
	}
	d.network(t, open, openArgs...)
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	// A container whose owner routes it out through the gateway: only the
	// firewall stands in its way.
	rogue, gw := net+"-rogue", d.gateway(17)
	run(t, rogue, "--network", net, "--cap-add", "NET_ADMIN")
	if out, err := sh(t, rogue, "ip route replace default via "+gw); err != nil {
		t.Fatalf("default route in %s: %v %s", rogue, err, out)
	}
	run(t, open+"-a", "--network", open)
	routeVia(t, ext, d.subnet(17), host)
	routeVia(t, ext, d.subnet(22), host)
	extAddr := ext.Addr.String()

	reaches(t, net+"-a", net+"-b")
	reaches(t, rogue, gw)
	hostReaches(t, ext, gw)
	reaches(t, open+"-a", extAddr)
	// Out: weft gives an internal container no route out, Docker's bridge
	// gives it one and drops what it sends.
	cutOff(t, host, net+"-a", extAddr, probe.NoReply, probe.NoRoute)
	cutOff(t, host, rogue, extAddr)
	// In: rogue would answer through its route.
	hostCutOff(t, ext, containerIP(t, host, rogue))

	links, _ := sh(t, net+"-a", "ip -o link show")
	if strings.Count(links, "\n")+1 != 2 {
		t.Errorf("internal container must have only lo and eth0 (no docker_gwbridge), has:\n%s", links)
	}
}

// TestIsolationAndMultiTier: two networks are isolated; a container on both
// reaches both (the front-end/back-end pattern), and the back end,
// internal, reaches nothing outside. Each "must not reach" goes through the
// Docker host by address, where only the firewall can stop it (by name,
// Docker's DNS would not even resolve a container of another network), and
// beside it the same sender reaches something and the same target answers
// someone else.
func TestIsolationAndMultiTier(t *testing.T) {
	requireLab(t)
	for _, d := range bridgeDrivers {
		t.Run(d.name, func(t *testing.T) { multiTierScenario(t, d) })
	}
}

func multiTierScenario(t *testing.T, d netDriver) {
	front, back := netName(t, "front"), netName(t, "back")
	d.network(t, front, "--subnet", d.subnet(18))
	d.network(t, back, "--internal", "--subnet", d.subnet(19))
	run(t, "web", "--network", front)
	docker(t, host, "network", "connect", back, "web")
	run(t, "db", "--network", back)
	run(t, "client", "--network", front)
	dbIP := containerIP(t, host, "db")
	webIP := docker(t, host, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+front+"\").IPAddress}}", "web")
	extAddr := ext.Addr.String()

	reaches(t, "web", "db")     // app tier reaches data tier by name
	reaches(t, "client", "web") // public tier reaches app tier
	reaches(t, "web", extAddr)
	// ...but not the data tier. weft gives db no route out: whether db
	// could answer client hangs on the host's masquerading, so count the
	// echo requests arriving at db too.
	if n := echoesArriving(t, host, "db", func() { reaches(t, "web", dbIP) }); n != 1 {
		t.Errorf("db received %d echo requests from web's ping, want 1", n)
	}
	if n := echoesArriving(t, host, "db", func() { cutOff(t, host, "client", dbIP) }); n != 0 {
		t.Errorf("db received %d echo requests from client, on a network db is not on", n)
	}
	// The same client reaches db once on db's network, and not after.
	docker(t, host, "network", "connect", back, "client")
	reaches(t, "client", "db")
	reaches(t, "client", dbIP)
	docker(t, host, "network", "disconnect", back, "client")
	if n := echoesArriving(t, host, "db", func() { cutOff(t, host, "client", dbIP) }); n != 0 {
		t.Errorf("db received %d echo requests from client after it left db's network", n)
	}
	// The data tier reaches nothing outside, though the outside host could
	// answer it.
	routeVia(t, ext, d.subnet(19), host)
	cutOff(t, host, "db", extAddr, probe.NoReply, probe.NoRoute)

	// Isolation between two ordinary networks, and against Docker's
	// default bridge (docker0).
	other := netName(t, "other")
	d.network(t, other, "--subnet", d.subnet(20))
	run(t, "stranger", "--network", other)
	strangerIP := containerIP(t, host, "stranger")
	reaches(t, "stranger", extAddr) // its traffic crosses the host
	hostReaches(t, host.Host, strangerIP)
	reaches(t, "client", webIP)
	cutOff(t, host, "client", strangerIP)
	cutOff(t, host, "stranger", webIP)
	run(t, "on-docker-bridge")
	dockerBridgeIP := containerIP(t, host, "on-docker-bridge")
	reaches(t, "on-docker-bridge", extAddr)
	hostReaches(t, host.Host, dockerBridgeIP)
	cutOff(t, host, "on-docker-bridge", webIP)
	cutOff(t, host, "web", dockerBridgeIP)
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
