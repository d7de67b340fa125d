package e2e

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// Docker writes its firewall rules again at every start, in chains weft
// shares with it: the tests here check that a container on a Docker bridge
// network never reaches a weft container's unpublished port, before and after
// a dockerd restart, on both of Docker 29's firewall backends; and that weft
// puts its own rules back when anyone changes them.

// webScript serves webMarker on port 80 (to be left unpublished) and 81.
const (
	webMarker = "weft-isolation-web"
	webScript = "mkdir -p /www && echo " + webMarker + " > /www/index.html && httpd -p 80 -h /www && exec httpd -f -p 81 -h /www"
)

// httpFrom asks addr:port for / from container on h and reports whether the
// web server answered. A failure other than a timeout (a stopped container, a
// refused connection) proves nothing either way: it fails the test.
func httpFrom(t *testing.T, h *lab.DockerHost, container, addr string, port int) bool {
	t.Helper()
	out, err := h.Docker(ctx(t), "exec", container, "sh", "-c",
		fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s %d`, addr, port))
	switch {
	case strings.Contains(out, webMarker):
		return true
	case err != nil && strings.Contains(err.Error(), "nc: timed out"):
		return false
	}
	t.Fatalf("GET http://%s:%d/ from %s on %s neither got the page nor timed out, so it proves nothing: %v\n%s", addr, port, container, h.Name, err, out)
	return false
}

// engineMajor is the major version of h's dockerd.
func engineMajor(t *testing.T, h *lab.DockerHost) int {
	t.Helper()
	v := docker(t, h, "version", "-f", "{{.Server.Version}}")
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil {
		t.Fatalf("dockerd version %q: %v", v, err)
	}
	return major
}

var (
	extraHostsMu sync.Mutex
	extraHosts   = map[string]*lab.DockerHost{}
)

// labBackend is the firewall backend of the suite's hosts.
func labBackend() string { return cmp.Or(host.FirewallBackend(), "iptables") }

// backendHost is a Docker host with weft installed whose dockerd uses the
// firewall backend b ("iptables" or "nftables"), made the first time a test
// asks for name and kept for the rest of the suite. The nftables backend
// needs Docker 29 or later: the test is skipped on older engines.
func backendHost(t *testing.T, name, b string) *lab.DockerHost {
	t.Helper()
	if v := engineMajor(t, host); b == "nftables" && v < 29 {
		t.Skipf("Docker %d has no nftables firewall backend (Docker 29 has; WEFT_LAB_DOCKERD picks the engine)", v)
	}
	extraHostsMu.Lock()
	defer extraHostsMu.Unlock()
	if h := extraHosts[name]; h != nil {
		return h
	}
	var h *lab.DockerHost
	var err error
	if b == labBackend() {
		// Also where the flag does not exist (Docker 20.10).
		h, err = theLab.AddDockerHost(name)
	} else {
		h, err = theLab.AddDockerHostBackend(name, b)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := h.InstallPlugin(ctx(t), pluginDir(), Plugin); err != nil {
		t.Fatalf("install weft on %s: %v", name, err)
	}
	extraHosts[name] = h
	return h
}

// sharedHost is the suite's host if its dockerd uses the backend b, else a
// host of b's own (see backendHost).
func sharedHost(t *testing.T, b string) *lab.DockerHost {
	t.Helper()
	if b == labBackend() {
		return host
	}
	return backendHost(t, "h"+b[:3], b)
}

// onHost creates a network of driver d on h, removed at cleanup.
func onHost(t *testing.T, h *lab.DockerHost, d netDriver, name string, args ...string) {
	t.Helper()
	docker(t, h, append(append(append([]string{"network", "create"}, d.args...), args...), name)...)
	t.Cleanup(func() { h.Docker(context.Background(), "network", "rm", name) })
}

// runOn starts a detached container on h, with a restart policy (no,
// always...), removed at cleanup.
func runOn(t *testing.T, h *lab.DockerHost, restart, name string, args ...string) {
	t.Helper()
	all := append([]string{"run", "-d", "--restart", restart, "--stop-timeout", "1", "--name", name}, args...)
	if !containsImage(args) {
		all = append(all, lab.Image, "sleep", "3600")
	}
	docker(t, h, all...)
	t.Cleanup(func() { h.Docker(context.Background(), "rm", "-f", name) })
}

// restartDockerd restarts h's dockerd and waits for containers to run again.
func restartDockerd(t *testing.T, h *lab.DockerHost, containers ...string) {
	t.Helper()
	if err := h.RestartDockerd(ctx(t)); err != nil {
		t.Fatalf("restart dockerd on %s: %v\n%s", h.Name, err, probe.Tail(h.Logs(), 40))
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, c := range containers {
		for {
			out, err := h.Docker(context.Background(), "inspect", "-f", "{{.State.Running}}", c)
			if err == nil && out == "true" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s on %s not running after the dockerd restart: %q %v\n%s", c, h.Name, out, err, probe.Tail(h.Logs(), 40))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// TestIsolationFromDockerNetworks: a container on a Docker bridge network
// created after a weft network cannot reach a weft container's unpublished
// port, and still cannot after dockerd restarted (Docker 28 and later put
// their jump back on top of FORWARD at every start, after weft's plugin has
// started); it reaches a weft container's published port, and a weft
// container of the same network reaches the unpublished one. The same
// scenario with Docker's own bridge as the target network shows that this is
// what Docker does for its networks. On Docker 29 it runs on both firewall
// backends.
func TestIsolationFromDockerNetworks(t *testing.T) {
	requireLab(t)
	t.Run("iptables", func(t *testing.T) { isolationAcrossRestart(t, sharedHost(t, "iptables"), 0) })
	t.Run("nftables", func(t *testing.T) { isolationAcrossRestart(t, sharedHost(t, "nftables"), 1) })
}

// isolationAcrossRestart runs the scenario on h for weft and Docker's bridge
// at once, so that one dockerd restart serves both; n picks subnets and ports
// no other run of it uses.
//
// Only the containers that publish nothing restart with dockerd: a start
// that publishes a port makes weft apply its rules, which put its jump back
// in front and would hide what the restart did. The publishing one is
// started again after the checks.
func isolationAcrossRestart(t *testing.T, h *lab.DockerHost, n int) {
	type target struct {
		d              netDriver
		pubPort        int
		web, peer, pub string
	}
	var targets []target
	var restarting []string
	for i, d := range bridgeDrivers {
		tg := target{d: d, pubPort: 8660 + 10*n + i, web: netName(t, d.name+"-web"), peer: netName(t, d.name+"-peer"), pub: netName(t, d.name+"-pub")}
		net := netName(t, d.name)
		onHost(t, h, d, net, "--subnet", fmt.Sprintf("10.%d.0.0/24", 64+2*n+i+d.off))
		runOn(t, h, "always", tg.web, "--network", net, lab.Image, "sh", "-c", webScript)
		runOn(t, h, "always", tg.peer, "--network", net)
		runOn(t, h, "no", tg.pub, "--network", net, "-p", fmt.Sprintf("%d:81", tg.pubPort), lab.Image, "sh", "-c", webScript)
		targets = append(targets, tg)
		restarting = append(restarting, tg.web, tg.peer)
	}
	// Made after the target networks: Docker 20.10 then inserts its
	// accepts for it above everything in FORWARD.
	dockerNet, intruder := netName(t, "docker"), netName(t, "intruder")
	onHost(t, h, bridgeDrivers[1], dockerNet, "--subnet", fmt.Sprintf("10.%d.0.0/24", 168+n))
	runOn(t, h, "always", intruder, "--network", dockerNet)
	restarting = append(restarting, intruder)

	// unpublished checks that web answers on its own network but not to
	// the intruder; published that the intruder reaches pub's published
	// port.
	unpublished := func(when string) {
		t.Helper()
		for _, tg := range targets {
			ip := containerIP(t, h, tg.web)
			// Servers take a moment after `docker run` or a restart.
			for deadline := time.Now().Add(15 * time.Second); !httpFrom(t, h, tg.peer, ip, 80); {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s (%s) does not reach %s:80 on its own network, so nothing below proves anything", when, tg.peer, tg.d.name, ip)
				}
				time.Sleep(500 * time.Millisecond)
			}
			if httpFrom(t, h, intruder, ip, 80) {
				t.Errorf("%s: %s on a Docker bridge network reached the unpublished port %s:80 of %s, on a %s network", when, intruder, ip, tg.web, tg.d.name)
			}
		}
	}
	published := func(when string) {
		t.Helper()
		for _, tg := range targets {
			reached := false
			for deadline := time.Now().Add(15 * time.Second); !reached && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				reached = httpFrom(t, h, intruder, h.Addr.String(), tg.pubPort)
			}
			if !reached {
				t.Errorf("%s: %s on a Docker bridge network cannot reach the published port %s:%d of %s (%s)", when, intruder, h.Addr, tg.pubPort, tg.pub, tg.d.name)
			}
		}
	}
	unpublished("with the Docker network made after the target networks")
	published("with the Docker network made after the target networks")
	restartDockerd(t, h, restarting...)
	unpublished("after a dockerd restart")
	for _, tg := range targets {
		docker(t, h, "start", tg.pub)
	}
	published("after a dockerd restart")
}
