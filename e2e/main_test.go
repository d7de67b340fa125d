// Package e2e proves weft end to end: a private dockerd in a lab namespace,
// the plugin created from build/plugin exactly as a user would, and the
// docker CLI, with assertions on real traffic and on what Docker prints.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// Plugin is the name users type after -d.
const Plugin = "weft:latest"

var (
	theLab  *lab.Lab
	host    *lab.DockerHost // the Docker host under test, "h1"
	ext     *lab.Host       // a machine outside the Docker host, on the lab LAN
	skipWhy string          // why the suite cannot run here, if it cannot
	engine  lab.Engine      // what h1's dockerd says it is
	udpEcho string          // path of the testdata/udpecho binary
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if reason := prerequisites(); reason != "" {
		skipWhy = reason
		return m.Run()
	}
	var err error
	if udpEcho, err = buildUDPEcho(); err != nil {
		fmt.Fprintln(os.Stderr, "build udpecho:", err)
		return 1
	}
	defer os.RemoveAll(filepath.Dir(udpEcho))
	theLab, err = lab.New(lab.Config{
		Dir:  "/tmp/weft-e2e",
		Logf: func(f string, a ...any) { fmt.Printf("lab: "+f+"\n", a...) },
		// The swarm nodes pull weft from a plain-HTTP registry on a lab host.
		DockerdArgs: []string{"--insecure-registry=" + lab.DefaultSubnet.String()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer theLab.Close()
	if ext, err = theLab.AddHost("ext"); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	if host, err = theLab.AddDockerHost("h1"); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if engine, err = checkEngine(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := host.InstallPlugin(ctx, pluginDir(), Plugin); err != nil {
		fmt.Fprintln(os.Stderr, "install plugin:", err, "\n", host.Logs())
		return 1
	}
	return m.Run()
}

// checkEngine prints which engine and firewall backend the suite runs on,
// and fails unless they are the ones asked for: WEFT_E2E_ENGINE (a version
// such as 29.8 or 20.10, which the engine's must start with) and
// WEFT_LAB_FIREWALL_BACKEND, if set. make test runs the suite once per
// engine and backend; this keeps a run from passing on another engine than
// the one its results are reported for.
func checkEngine(ctx context.Context) (lab.Engine, error) {
	e, err := host.Engine(ctx)
	if err != nil {
		return e, err
	}
	client, _ := host.Docker(ctx, "version", "-f", "{{.Client.Version}}")
	fmt.Printf("e2e: on Docker %s (API %s, %s) with the %s firewall backend; docker CLI %s (%s)\n",
		e.Version, e.APIVersion, theLab.Dockerd(), e.FirewallBackend, client, theLab.DockerCLI())
	if want := os.Getenv("WEFT_E2E_ENGINE"); want != "" && !strings.HasPrefix(e.Version, want+".") {
		return e, fmt.Errorf("WEFT_E2E_ENGINE=%s but %s is Docker %s", want, theLab.Dockerd(), e.Version)
	}
	if want := theLab.FirewallBackend(); want != "" && e.FirewallBackend != want {
		return e, fmt.Errorf("dockerd was asked for the %s firewall backend but uses %s", want, e.FirewallBackend)
	}
	return e, nil
}

// engineAtLeast reports whether the engine under test is Docker major.minor
// or later.
func engineAtLeast(major, minor int) bool {
	var maj, min int
	if _, err := fmt.Sscanf(engine.Version, "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// buildUDPEcho builds the static UDP peer busybox lacks.
func buildUDPEcho() (string, error) {
	dir, err := os.MkdirTemp("", "weft-udpecho-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "udpecho")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/udpecho")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return bin, nil
}

// prerequisites says why the suite cannot run, or "".
func prerequisites() string {
	if os.Geteuid() != 0 {
		return "needs root: the lab runs its own dockerd in network namespaces"
	}
	for _, cmd := range []string{"dockerd", "containerd", "busybox", "nsenter", "unshare", "iptables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Sprintf("needs %s (apt-get install docker.io busybox-static iptables util-linux)", cmd)
		}
	}
	if _, err := os.Stat(filepath.Join(pluginDir(), "rootfs", "weft")); err != nil {
		return "needs the plugin built: run `make plugin` first (make test does)"
	}
	return ""
}

func pluginDir() string {
	if d := os.Getenv("WEFT_PLUGIN_DIR"); d != "" {
		return d
	}
	abs, _ := filepath.Abs("../build/plugin")
	return abs
}

func requireLab(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// docker runs the CLI on h and fails the test on error.
func docker(t *testing.T, h *lab.DockerHost, args ...string) string {
	t.Helper()
	out, err := h.Docker(ctx(t), args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n--- dockerd log tail ---\n%s", strings.Join(args, " "), err, probe.Tail(h.Logs(), 40))
	}
	return out
}

// dockerFails runs the CLI expecting failure and returns the error text.
func dockerFails(t *testing.T, h *lab.DockerHost, args ...string) string {
	t.Helper()
	out, err := h.Docker(ctx(t), args...)
	if err == nil {
		t.Fatalf("docker %s succeeded, want an error; output: %s", strings.Join(args, " "), out)
	}
	return err.Error()
}

// netName makes a network name unique to the test.
func netName(t *testing.T, suffix string) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + suffix
}

// network creates a network with weft as driver and IPAM and removes it at cleanup.
func network(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append([]string{"network", "create", "-d", Plugin, "--ipam-driver", Plugin}, args...)
	docker(t, host, append(all, name)...)
	t.Cleanup(func() { host.Docker(context.Background(), "network", "rm", name) })
}

// run starts a detached container sleeping (or running cmd) and removes it at cleanup.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	// sleep and sh as PID 1 ignore SIGTERM: without a short stop timeout
	// every stop or dockerd restart waits 10 s.
	all := append([]string{"run", "-d", "--stop-timeout", "1", "--name", name}, args...)
	if !containsImage(args) {
		all = append(all, lab.Image, "sleep", "3600")
	}
	docker(t, host, all...)
	t.Cleanup(func() { host.Docker(context.Background(), "rm", "-f", name) })
}

func containsImage(args []string) bool {
	for _, a := range args {
		if a == lab.Image {
			return true
		}
	}
	return false
}

// containerIP is the IPv4 address of a container with one network, on h.
func containerIP(t *testing.T, h *lab.DockerHost, name string) string {
	t.Helper()
	return docker(t, h, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
}

// sh runs a shell command inside a container.
func sh(t *testing.T, container, script string) (string, error) {
	t.Helper()
	return host.Docker(ctx(t), "exec", container, "sh", "-c", script)
}

// pingWait is how long one probe waits for its reply.
const pingWait = 2 * time.Second

// pingFrom pings target once from container on h. An end that is neither a
// reply nor a lost probe (nor, where wanted, no route) fails the test: it
// proves nothing.
func pingFrom(t *testing.T, h *lab.DockerHost, container, target string) probe.Result {
	t.Helper()
	r, ok, out := probe.Ping(ctx(t), h, container, target, pingWait)
	if !ok {
		t.Fatalf("ping %s from container %s on %s ended neither in a reply nor in a lost probe, so it proves nothing: %s", target, container, h.Name, out)
	}
	return r
}

// pingFromHost pings target once from a lab host (not a container).
func pingFromHost(t *testing.T, h *lab.Host, target string) probe.Result {
	t.Helper()
	r, ok, out := probe.PingFromHost(ctx(t), h, target, pingWait)
	if !ok {
		t.Fatalf("ping %s from host %s ended neither in a reply nor in a lost probe, so it proves nothing: %s", target, h.Name, out)
	}
	return r
}

// reaches asserts a container on h1 gets a reply from target (an address or
// a name).
func reaches(t *testing.T, container, target string) {
	t.Helper()
	reachesOn(t, host, container, target)
}

// reachesOn asserts a container on h gets a reply from target.
func reachesOn(t *testing.T, h *lab.DockerHost, container, target string) {
	t.Helper()
	if r := pingFrom(t, h, container, target); r != probe.Replied {
		t.Errorf("%s on %s cannot reach %s: %s", container, h.Name, target, r)
	}
}

// cutOff asserts a container on h gets no reply from target (probe.NoReply, or
// one of the results given). Every call has a positive control beside it:
// the same container reaches something through the same kind of path, and
// the target answers someone else's ping.
func cutOff(t *testing.T, h *lab.DockerHost, container, target string, want ...probe.Result) {
	t.Helper()
	if len(want) == 0 {
		want = []probe.Result{probe.NoReply}
	}
	if r := pingFrom(t, h, container, target); !slices.Contains(want, r) {
		t.Errorf("%s on %s pinged %s and got %s, want %v: it must not reach it", container, h.Name, target, r, want)
	}
}

// routeVia gives lab host h a route to subnet through the Docker host via,
// removed at cleanup. Without it the checks that follow would prove nothing,
// so a failure ends the test.
func routeVia(t *testing.T, h *lab.Host, subnet string, via *lab.DockerHost) {
	t.Helper()
	if _, err := h.Run(ctx(t), "ip", "route", "add", subnet, "via", via.Addr.String()); err != nil {
		t.Fatalf("route to %s on %s: %v", subnet, h.Name, err)
	}
	t.Cleanup(func() { h.Run(context.Background(), "ip", "route", "del", subnet, "via", via.Addr.String()) })
}

// hostReaches asserts lab host h gets a reply from target.
func hostReaches(t *testing.T, h *lab.Host, target string) {
	t.Helper()
	if r := pingFromHost(t, h, target); r != probe.Replied {
		t.Errorf("host %s cannot reach %s: %s", h.Name, target, r)
	}
}

// hostCutOff asserts lab host h gets no reply from target; as for cutOff,
// a positive control goes beside it.
func hostCutOff(t *testing.T, h *lab.Host, target string) {
	t.Helper()
	if r := pingFromHost(t, h, target); r != probe.NoReply {
		t.Errorf("host %s pinged %s and got %s, want no reply: it must not reach it", h.Name, target, r)
	}
}

// echoesArriving runs probe and returns how many ICMP echo requests
// container on h received meanwhile. A container with no route back to a
// sender answers it only if something on the way rewrites the source
// (masquerading): counting what arrives shows the sender is cut off
// whatever the way back.
func echoesArriving(t *testing.T, h *lab.DockerHost, container string, probe func()) int {
	t.Helper()
	return arriving(t, h, container, "Icmp", "InEchos", probe)
}

// arriving runs probe and returns by how much a counter of container's
// /proc/net/snmp (its network namespace's) grew meanwhile.
func arriving(t *testing.T, h *lab.DockerHost, container, proto, counter string, probe func()) int {
	t.Helper()
	before := snmpCounter(t, h, container, proto, counter)
	probe()
	return snmpCounter(t, h, container, proto, counter) - before
}

func snmpCounter(t *testing.T, h *lab.DockerHost, container, proto, counter string) int {
	t.Helper()
	out := docker(t, h, "exec", container, "cat", "/proc/net/snmp")
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != proto+":" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		if i := slices.Index(names, counter); i >= 0 && i+1 < len(f) {
			if n, err := strconv.Atoi(f[i+1]); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no %s %s counter in %s's /proc/net/snmp:\n%s", proto, counter, container, out)
	return 0
}

// hostState captures the Docker host's links and weft firewall rules, to
// prove an operation left nothing behind.
func hostState(t *testing.T) string {
	t.Helper()
	links, err := host.Run(ctx(t), "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(links, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	// Sorted: after a reboot the same links come back with other indexes.
	sort.Strings(names)
	var rules []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := host.Run(ctx(t), cmd)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(strings.ToUpper(l), "WEFT") || strings.Contains(l, "wf-") {
				rules = append(rules, l)
			}
		}
	}
	return "links: " + strings.Join(names, " ") + "\nrules:\n" + strings.Join(rules, "\n")
}
