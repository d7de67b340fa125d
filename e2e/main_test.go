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
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// Plugin is the name users type after -d.
const Plugin = "weft:latest"

var (
	theLab  *lab.Lab
	host    *lab.DockerHost // the Docker host under test, "h1"
	ext     *lab.Host       // a machine outside the Docker host, on the lab LAN
	skipWhy string          // why the suite cannot run here, if it cannot
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
	if err := host.InstallPlugin(ctx, pluginDir(), Plugin); err != nil {
		fmt.Fprintln(os.Stderr, "install plugin:", err, "\n", host.Logs())
		return 1
	}
	return m.Run()
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
		t.Fatalf("docker %s: %v\n--- dockerd log tail ---\n%s", strings.Join(args, " "), err, tail(h.Logs(), 40))
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

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// reaches asserts a container can or cannot ping an address or name.
func reaches(t *testing.T, container, target string, want bool) {
	t.Helper()
	_, err := sh(t, container, "ping -c 1 -W 2 "+target)
	if want && err != nil {
		t.Errorf("%s cannot ping %s: %v", container, target, err)
	}
	if !want && err == nil {
		t.Errorf("%s can ping %s, but must not", container, target)
	}
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
