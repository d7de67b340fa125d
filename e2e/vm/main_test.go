// Package vm proves weft end to end on Debian's full kernel, for what the CI
// kernel lacks: ipvlan, 802.1q trunks, IPsec ESP between swarm nodes, IPVS
// (swarm VIP services and the routing mesh), and br_netfilter as a module
// that Docker 27.3+ no longer loads.
//
// On the machine, TestDockerInVM boots the vmlab VM (internal/vmlab) once per
// Docker engine, with that engine, containerd, runc, the docker CLI and
// build/plugin inside, and runs every test of this package there. Inside the
// VM the tests build a lab of simulated hosts (internal/lab: namespaces on
// one switch, each Docker host with its own dockerd) and drive weft through
// the docker CLI, with real traffic. On the machine itself the scenario tests
// skip: they need the VM's kernel.
package vm

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
	"github.com/weftnet/weft/internal/vmlab"
)

// Plugin is the name users type after -d.
const Plugin = "weft:latest"

// Where TestDockerInVM puts things in the guest.
const (
	guestEngineDir = "/opt/engine" // the engine's dockerd, docker-proxy and runc
	guestDocker    = "/usr/local/bin/docker"
	guestPlugin    = "/opt/weft-plugin" // build/plugin: config.json and rootfs/
	// envEngine names the engine under test in the guest ("29.8.0").
	envEngine = "WEFT_VM_ENGINE"
)

var (
	theLab *lab.Lab
	// engineVersion is the version of the engine in the VM, e.g. "29.8.0".
	engineVersion string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if !vmlab.InVM() {
		return m.Run() // TestDockerInVM boots the VM; the scenarios skip here
	}
	engineVersion = os.Getenv(envEngine)
	start := time.Now()
	// Managed plugins and containers get the host's resolv.conf mounted;
	// the VM has none (and no network at all: nothing can leave it).
	if err := os.WriteFile("/etc/resolv.conf", []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "resolv.conf:", err)
		return 1
	}
	// The VM's own namespace is where a real Docker host's dockerd runs,
	// so it forwards IPv4 as dockerd leaves it. That matters beyond it:
	// every namespace made later takes its IPv4 settings from this one
	// (net.core.devconf_inherit_init_net=0), and dockerd relies on it for
	// the routing mesh, whose ingress sandbox must forward the tasks'
	// replies back to the client and is never told to. With forwarding
	// off here, the sandbox's IPVS sent every connection to a task and
	// never saw an answer.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "ip_forward:", err)
		return 1
	}
	var err error
	theLab, err = lab.New(lab.Config{
		Dir:     "/tmp/weft-vm-lab",
		Dockerd: guestEngineDir + "/dockerd",
		Docker:  guestDocker,
		Logf:    func(f string, a ...any) { fmt.Printf("lab: "+f+"\n", a...) },
		// Everything is 10 to 20 times slower under TCG.
		StartTimeout: 5 * time.Minute,
		StopTimeout:  time.Minute,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer theLab.Close()
	fmt.Printf("vm: lab for Docker %s ready in %s\n", engineVersion, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// inVM skips a scenario on the machine: it needs the VM's kernel, and
// TestDockerInVM runs it there.
func inVM(t *testing.T) {
	t.Helper()
	if !vmlab.InVM() {
		t.Skip("runs inside the full-kernel VM, which TestDockerInVM boots")
	}
	t.Logf("Docker %s", engineVersion)
}

// engineAtLeast reports whether the engine under test is version major.minor
// or newer.
func engineAtLeast(major, minor int) bool {
	f := strings.SplitN(engineVersion, ".", 3)
	var v [2]int
	for i := 0; i < 2 && i < len(f); i++ {
		v[i], _ = strconv.Atoi(f[i])
	}
	return v[0] > major || v[0] == major && v[1] >= minor
}

// cmdTimeout bounds one docker or lab command; TCG makes a container start
// take seconds.
const cmdTimeout = 5 * time.Minute

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	return c
}

var (
	hostsMu sync.Mutex
	hosts   = map[string]*lab.DockerHost{}
)

// dockerHost returns the Docker host name with weft installed (settings
// given to docker plugin set before enable), making it on first use.
func dockerHost(t *testing.T, name string, settings ...string) *lab.DockerHost {
	t.Helper()
	start := time.Now()
	h, made, err := getDockerHost(name, settings...)
	if err != nil {
		t.Fatal(err)
	}
	if made {
		t.Logf("docker host %s with weft ready in %s", name, time.Since(start).Round(time.Millisecond))
	}
	return h
}

func getDockerHost(name string, settings ...string) (h *lab.DockerHost, made bool, err error) {
	hostsMu.Lock()
	defer hostsMu.Unlock()
	if h := hosts[name]; h != nil {
		return h, false, nil
	}
	h, err = theLab.AddDockerHost(name)
	if err != nil {
		return nil, false, err
	}
	c, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := h.InstallPlugin(c, guestPlugin, Plugin, settings...); err != nil {
		return nil, false, fmt.Errorf("install weft on %s: %w", name, err)
	}
	hosts[name] = h
	return h, true, nil
}

// docker runs the CLI on h and fails the test on error.
func docker(t *testing.T, h *lab.DockerHost, args ...string) string {
	t.Helper()
	out, err := h.Docker(ctx(t), args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n--- %s dockerd log tail ---\n%s", strings.Join(args, " "), err, h.Name, probe.Tail(h.Logs(), 40))
	}
	return out
}

// network creates a network on h (args are docker network create's, name
// last) and removes it at cleanup.
func network(t *testing.T, h *lab.DockerHost, args ...string) {
	t.Helper()
	docker(t, h, append([]string{"network", "create"}, args...)...)
	name := args[len(args)-1]
	t.Cleanup(func() {
		// The test may have removed it already.
		if _, err := h.Docker(context.Background(), "network", "rm", name); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("network rm %s: %v", name, err)
		}
	})
}

// run starts a detached container on h, sleeping unless args hold the
// image and a command, and removes it at cleanup.
func run(t *testing.T, h *lab.DockerHost, name string, args ...string) {
	t.Helper()
	// sleep and httpd as PID 1 ignore SIGTERM: a short stop timeout.
	all := append([]string{"run", "-d", "--stop-timeout", "1", "--name", name}, args...)
	if !slices.Contains(args, lab.Image) {
		all = append(all, lab.Image, "sleep", "3600")
	}
	docker(t, h, all...)
	t.Cleanup(func() { h.Docker(context.Background(), "rm", "-f", name) })
}

// containerIP is the IPv4 address of a container on network net.
func containerIP(t *testing.T, h *lab.DockerHost, container, net string) string {
	t.Helper()
	ip := docker(t, h, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+net+`").IPAddress}}`, container)
	if ip == "" {
		t.Fatalf("container %s on %s has no address on %s", container, h.Name, net)
	}
	return ip
}

// pingFrom pings target once from container on h. An end that is neither
// a reply nor a lost probe fails the test: it proves nothing.
func pingFrom(t *testing.T, h *lab.DockerHost, container, target string) probe.Result {
	t.Helper()
	r, ok, out := probe.Ping(ctx(t), h, container, target, pingWait)
	if !ok {
		t.Fatalf("ping %s from %s on %s ended neither in a reply nor in a lost probe, so it proves nothing: %s", target, container, h.Name, out)
	}
	return r
}

// pingFromHost pings target once from a lab host (not a container).
func pingFromHost(t *testing.T, h *lab.Host, target string) probe.Result {
	t.Helper()
	r, ok, out := probe.PingFromHost(ctx(t), h, target, pingWait)
	if !ok {
		t.Fatalf("ping %s from host %s ended neither in a reply nor in a lost probe: %s", target, h.Name, out)
	}
	return r
}

// pingWait is how long one probe waits for its reply: long enough for an
// ARP or neighbour resolution under TCG on a loaded machine (the probe
// waits in the neighbour queue meanwhile), so a probe is never retried,
// and a cut-off check waits as long as a reply could take.
const pingWait = 10 * time.Second

// reaches asserts container on h gets a reply from target.
func reaches(t *testing.T, h *lab.DockerHost, container, target string) {
	t.Helper()
	if r := pingFrom(t, h, container, target); r != probe.Replied {
		t.Errorf("%s on %s cannot reach %s: %s", container, h.Name, target, r)
	}
}

// cutOff asserts container on h gets no reply from target. Every call has a
// positive control beside it: something else reaches target, and the
// container reaches something the same way.
func cutOff(t *testing.T, h *lab.DockerHost, container, target string) {
	t.Helper()
	if r := pingFrom(t, h, container, target); r != probe.NoReply {
		t.Errorf("%s on %s pinged %s and got %s: it must not reach it", container, h.Name, target, r)
	}
}

// hostReaches asserts lab host h gets a reply from target.
func hostReaches(t *testing.T, h *lab.Host, target string) {
	t.Helper()
	if r := pingFromHost(t, h, target); r != probe.Replied {
		t.Errorf("host %s cannot reach %s: %s", h.Name, target, r)
	}
}

// mustRun runs a command in lab host h and fails the test on error.
func mustRun(t *testing.T, h *lab.Host, args ...string) string {
	t.Helper()
	out, err := h.Run(ctx(t), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually retries check until it succeeds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := probe.Within(timeout, time.Second, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// httpGet fetches / from target:port with busybox nc inside container on h
// and returns the body.
func httpGet(h *lab.DockerHost, container, target string, port int) (string, error) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return probe.HTTPGet(c, h, container, target, port, 5*time.Second)
}

// hostHTTPGet fetches / from target:port with busybox nc on lab host h.
func hostHTTPGet(h *lab.Host, target string, port int) (string, error) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return probe.HostHTTPGet(c, h, target, port, 5*time.Second)
}

// timed logs how long the rest of the calling test takes.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %s", t.Name(), time.Since(start).Round(time.Second)) })
}
