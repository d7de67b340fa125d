package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/labkit"
)

// requireLab skips the test unless it can build a lab here.
func requireLab(t *testing.T, docker bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root (network namespaces, mounts, dockerd)")
	}
	tools := []string{"ip", "nsenter", "unshare", "findmnt"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("lab tests need %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("lab tests need busybox-static at /bin/busybox")
	}
	if docker {
		if p := findBinary("", "WEFT_LAB_DOCKERD", "/usr/sbin/dockerd", "dockerd"); !isExecutable(p) {
			t.Skip("lab tests need dockerd (Debian docker.io)")
		}
		if p := findBinary("", "WEFT_LAB_DOCKER", "/usr/bin/docker", "docker"); !isExecutable(p) {
			t.Skip("lab tests need the docker CLI")
		}
	}
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// abandon simulates a crashed lab: it lets go of the lock without cleaning
// anything up.
func (l *Lab) abandon() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = syscall.Flock(int(l.lock.Fd()), syscall.LOCK_UN)
	_ = l.lock.Close()
	l.lock = nil
}

// assertClean checks that nothing of any lab is left on the machine.
func assertClean(t *testing.T, dir string) {
	t.Helper()
	if nss := labkit.ListNetns(Prefix); len(nss) > 0 {
		t.Errorf("namespaces left: %v", nss)
	}
	sel := newSelector()
	sel.cgroup = func(c string) bool { return strings.HasPrefix(c, Prefix) }
	for _, p := range sel.find() {
		t.Errorf("process left in a lab cgroup: %d %s", p.pid, p.comm)
	}
	live, _ := allProcs()
	for _, p := range live {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "cmdline"))
		if strings.Contains(string(cmdline), dir+"/") {
			t.Errorf("process left using %s: %d %s", dir, p.pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	for _, mp := range cgroupMounts() {
		ents, _ := os.ReadDir(mp)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), Prefix) {
				t.Errorf("cgroup left: %s", filepath.Join(mp, e.Name()))
			}
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("lab dir %s still exists (%v)", dir, err)
	}
}

// TestRefusesForeignDir checks that New does not wipe a directory it did
// not make.
func TestRefusesForeignDir(t *testing.T) {
	requireLab(t, false)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Dir: dir, Logf: t.Logf})
	if err == nil {
		l.Close()
		t.Fatal("New accepted a foreign non-empty Dir")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Fatalf("foreign file removed: %v", err)
	}
	if nss := labkit.ListNetns(Prefix); len(nss) > 0 {
		t.Errorf("namespaces left after failed New: %v", nss)
	}
}

// TestLab builds one Docker host and one plain host and exercises Docker's
// built-in bridge driver through the lab: DNS, masquerade, published
// ports, link cuts, a managed plugin, daemon restart and host reboots.
func TestLab(t *testing.T) {
	requireLab(t, true)
	testStart := time.Now()
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := New(Config{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			if t.Failed() {
				t.Log(l.Diagnostics())
			}
			l.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var ext *Host
	var extErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ext, extErr = l.AddHost("ext") }()
	hs, err := l.AddDockerHosts("h1", "h2")
	wg.Wait()
	if err != nil || extErr != nil {
		t.Fatal(errors.Join(err, extErr))
	}
	h1, h2 := hs[0], hs[1]
	t.Logf("hosts up at %s", time.Since(testStart).Round(time.Millisecond))
	if h1.Addr.String() != "198.18.0.11" || h2.Addr.String() != "198.18.0.12" || ext.Addr.String() != "198.18.0.100" {
		t.Fatalf("addresses: h1 %s h2 %s ext %s", h1.Addr, h2.Addr, ext.Addr)
	}
	docker := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := h1.Docker(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("isolation", func(t *testing.T) {
		for _, h := range []*Host{h1.Host, ext} {
			out, err := h.Run(ctx, "ip", "route", "show")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "default") {
				t.Errorf("%s has a default route:\n%s", h.Name, out)
			}
			name, err := h.Run(ctx, "hostname")
			if err != nil || strings.TrimSpace(name) != h.Name {
				t.Errorf("%s: hostname %q, %v", h.Name, name, err)
			}
			links, err := h.Run(ctx, "ls", "/sys/class/net")
			if err != nil || !strings.Contains(links, HostLink) || strings.Contains(links, "eth0") {
				t.Errorf("%s: /sys/class/net shows %q, %v", h.Name, links, err)
			}
		}
		if out, err := l.RunSwitch(ctx, "ip", "-o", "link", "show", "master", SwitchBridge); err != nil ||
			!strings.Contains(out, h1.SwitchPort()+"@") || !strings.Contains(out, ext.SwitchPort()+"@") {
			t.Errorf("switch ports: %q, %v", out, err)
		}
		if out, err := h1.Run(ctx, "iptables", "-S", "FORWARD"); err != nil || !strings.Contains(out, "-P FORWARD DROP") {
			t.Errorf("h1 FORWARD policy: %q, %v", out, err)
		}
		if out, err := h1.Run(ctx, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil || strings.TrimSpace(out) != "1" {
			t.Errorf("h1 bridge-nf-call-iptables: %q, %v", out, err)
		}
		if _, err := h1.Docker(ctx, "network", "inspect", "no-such-net"); err == nil ||
			!strings.Contains(err.Error(), "Error: No such network: no-such-net") {
			t.Errorf("docker error text not passed through: %v", err)
		}
	})

	t.Run("two-hosts", func(t *testing.T) {
		// Each daemon is its own engine: own name (UTS), own engine ID
		// (/etc/docker/key.json per host), own data.
		info1 := docker(t, "info", "--format", "{{.Name}} {{.ID}}")
		info2, err := h2.Docker(ctx, "info", "--format", "{{.Name}} {{.ID}}")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(info1, "h1 ") || !strings.HasPrefix(info2, "h2 ") || info1[3:] == info2[3:] {
			t.Errorf("docker info: h1 %q, h2 %q", info1, info2)
		}
		if _, err := h2.Docker(ctx, "network", "create", "only-on-h2"); err != nil {
			t.Fatal(err)
		}
		if _, err := h1.Docker(ctx, "network", "inspect", "only-on-h2"); err == nil {
			t.Error("h1 sees h2's network")
		}
		if _, err := h1.Run(ctx, "busybox", "ping", "-c", "1", "-W", "2", h2.Addr.String()); err != nil {
			t.Error(err)
		}
	})

	t.Run("dns", func(t *testing.T) {
		docker(t, "network", "create", "n1")
		docker(t, "run", "-d", "--name", "c1", "--network", "n1", Image, "sleep", "600")
		docker(t, "run", "-d", "--name", "c2", "--network", "n1", Image, "sleep", "600")
		out := docker(t, "exec", "c2", "ping", "-c", "1", "-W", "2", "c1")
		if !strings.Contains(out, "1 packets received") {
			t.Errorf("c2 -> c1 by name:\n%s", out)
		}
		out = docker(t, "run", "--rm", "--network", "n1", Image, "ping", "-c", "1", "-W", "2", "c2")
		if !strings.Contains(out, "1 packets received") {
			t.Errorf("container -> c2 by name:\n%s", out)
		}
	})

	t.Run("masquerade", func(t *testing.T) {
		www := t.TempDir()
		cgi := filepath.Join(www, "cgi-bin")
		if err := os.Mkdir(cgi, 0o755); err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"remote=$REMOTE_ADDR\"\n"
		if err := os.WriteFile(filepath.Join(cgi, "ip"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		srv, err := ext.Start("busybox", "httpd", "-f", "-p", "9000", "-h", www)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
		waitListen(t, ctx, ext, 9000)
		out := docker(t, "run", "--rm", "--network", "n1", Image, "sh", "-c",
			`printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | nc -w 3 `+ext.Addr.String()+` 9000`)
		// busybox httpd listens on IPv6 and reports "[::ffff:A.B.C.D]".
		_, remote, _ := strings.Cut(out, "remote=")
		remote = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(remote), "[::ffff:"), "]")
		if remote != h1.Addr.String() {
			t.Errorf("ext saw the container as %q, want h1's address %s (httpd output %q)", out, h1.Addr, srv.Output())
		}
	})

	t.Run("published-port", func(t *testing.T) {
		docker(t, "run", "-d", "--name", "web", "-p", "8080:80", Image, "sh", "-c",
			"echo hello-from-h1 > /var/www/index.html && exec httpd -f -p 80 -h /var/www")
		get := "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 " + h1.Addr.String() + " 8080"
		var out string
		var err error
		for i := 0; i < 50; i++ {
			out, err = ext.Run(ctx, "sh", "-c", get)
			if err == nil && strings.Contains(out, "hello-from-h1") {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("ext -> %s:8080: %q, %v", h1.Addr, out, err)
	})

	t.Run("link", func(t *testing.T) {
		ping := func() error {
			_, err := h1.Run(ctx, "busybox", "ping", "-c", "1", "-W", "1", ext.Addr.String())
			return err
		}
		if err := ping(); err != nil {
			t.Fatal(err)
		}
		if err := h1.SetLink(false); err != nil {
			t.Fatal(err)
		}
		if err := ping(); err == nil {
			t.Error("ping went through a cut link")
		}
		if err := h1.SetLink(true); err != nil {
			t.Fatal(err)
		}
		if err := retry(ctx, 5*time.Second, ping); err != nil {
			t.Errorf("after restoring the link: %v", err)
		}
	})

	pluginInstalled := false
	pluginID := ""
	t.Run("plugin", func(t *testing.T) {
		plugDir := buildDummyPlugin(t)
		if err := h1.InstallPlugin(ctx, plugDir, "dummy:latest"); err != nil {
			t.Fatal(err)
		}
		pluginInstalled = true
		// The plugin's /state is the per-host /var/lib/weft.
		b, err := waitFile(filepath.Join(h1.StateDir(), "dummy-started"), 5*time.Second)
		if err != nil || strings.TrimSpace(string(b)) != "h1" {
			t.Errorf("plugin state marker: %q, %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(weftHostDir, "dummy-started")); err == nil {
			t.Errorf("plugin wrote into the machine's %s", weftHostDir)
		}
		docker(t, "network", "create", "-d", "dummy:latest", "dn")
		docker(t, "network", "rm", "dn")
	})

	t.Run("restart-dockerd", func(t *testing.T) {
		docker(t, "rm", "-f", "c1", "c2", "web")
		old := h1.DockerdPID()
		start := time.Now()
		if err := h1.RestartDockerd(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("dockerd restarted in %s", time.Since(start).Round(time.Millisecond))
		if h1.DockerdPID() == old {
			t.Error("dockerd pid unchanged")
		}
		if out := docker(t, "network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "n1") {
			t.Errorf("network n1 lost: %q", out)
		}
		if pluginInstalled {
			if _, err := h1.PluginPID(ctx, "dummy:latest"); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("reboot", func(t *testing.T) {
		docker(t, "run", "-d", "--name", "survivor", "--restart", "always", "--stop-timeout", "1", "--network", "n1", Image, "sleep", "600")
		marker := filepath.Join(h1.StateDir(), "kept")
		if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := h1.Run(ctx, "touch", "/run/docker/gone-after-reboot"); err != nil {
			t.Fatal(err)
		}
		if _, err := h1.Run(ctx, "sysctl", "-w", "net.ipv4.conf.lab0.forwarding=0"); err != nil {
			t.Fatal(err)
		}
		anchor, _ := h1.anchorPID()
		for _, hard := range []bool{false, true} {
			start := time.Now()
			reboot := h1.Reboot
			if hard {
				reboot = h1.HardReboot
			}
			if err := reboot(ctx); err != nil {
				t.Fatalf("reboot (hard=%v): %v", hard, err)
			}
			t.Logf("reboot (hard=%v) took %s", hard, time.Since(start).Round(time.Millisecond))
			if a, _ := h1.anchorPID(); a == anchor {
				t.Error("anchor survived the reboot")
			} else {
				anchor = a
			}
			docker(t, "info", "--format", "{{.Name}}")
			docker(t, "image", "inspect", Image)
			if out := docker(t, "network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "n1") {
				t.Errorf("network n1 lost: %q", out)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Errorf("state dir not kept: %v", err)
			}
			if _, err := h1.Run(ctx, "test", "-e", "/run/docker/gone-after-reboot"); err == nil {
				t.Error("/run survived the reboot")
			}
			if out, _ := h1.Run(ctx, "cat", "/proc/sys/net/ipv4/conf/lab0/forwarding"); strings.TrimSpace(out) != "1" {
				// Docker turns forwarding on for all interfaces at start;
				// 0 would mean the old namespace's sysctl survived.
				t.Errorf("lab0 forwarding sysctl %q after reboot", out)
			}
			if out, err := h1.Run(ctx, "ip", "-4", "addr", "show", "dev", HostLink); err != nil || !strings.Contains(out, h1.Prefix.String()) {
				t.Errorf("lab0 after reboot: %q, %v", out, err)
			}
			if err := retry(ctx, 5*time.Second, func() error {
				_, err := h1.Run(ctx, "busybox", "ping", "-c", "1", "-W", "1", ext.Addr.String())
				return err
			}); err != nil {
				t.Errorf("h1 -> ext after reboot: %v", err)
			}
			if err := retry(ctx, 20*time.Second, func() error {
				out, err := h1.Docker(ctx, "inspect", "-f", "{{.State.Running}}", "survivor")
				if err == nil && out != "true" {
					err = errors.New("survivor not running: " + out)
				}
				return err
			}); err != nil {
				t.Errorf("restart=always container after reboot: %v", err)
			}
			if pluginInstalled {
				if err := retry(ctx, 10*time.Second, func() error {
					_, err := h1.PluginPID(ctx, "dummy:latest")
					return err
				}); err != nil {
					t.Errorf("plugin after reboot: %v", err)
				}
			}
		}
	})

	// Last: after a plugin was killed and restarted, dockerd 20.10 no
	// longer notices that plugin's exit, so every later graceful dockerd
	// stop waits out its 10s+2s plugin shutdown timeouts.
	t.Run("kill-plugin", func(t *testing.T) {
		if !pluginInstalled {
			t.Skip("plugin not installed")
		}
		oldPID, newPID, err := h1.KillPlugin(ctx, "dummy:latest")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plugin restarted by dockerd: pid %d -> %d", oldPID, newPID)
		docker(t, "network", "create", "-d", "dummy:latest", "dn2")
		pluginID = docker(t, "plugin", "inspect", "-f", "{{.Id}}", "dummy:latest")
	})

	if t.Failed() {
		t.Log(l.Diagnostics())
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	t.Logf("Close took %s; whole test %s", time.Since(start).Round(time.Millisecond), time.Since(testStart).Round(time.Millisecond))
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertClean(t, dir)
	if pluginID != "" {
		for _, mp := range cgroupMounts() {
			if _, err := os.Stat(filepath.Join(mp, pluginID)); err == nil {
				t.Errorf("plugin cgroup left: %s", filepath.Join(mp, pluginID))
			}
		}
	}
}

func retry(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitListen(t *testing.T, ctx context.Context, h *Host, port int) {
	t.Helper()
	err := retry(ctx, 5*time.Second, func() error {
		out, err := h.Run(ctx, "busybox", "netstat", "-ltn")
		if err == nil && !strings.Contains(out, ":"+strconv.Itoa(port)+" ") {
			err = errors.New("not listening yet")
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: port %d: %v", h.Name, port, err)
	}
}

func waitFile(path string, d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(path)
		if err == nil || time.Now().After(deadline) {
			return b, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildDummyPlugin compiles testdata/dummyplugin into a plugin directory.
func buildDummyPlugin(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the toolchain that built this test, on this machine
		if !isExecutable(goBin) {
			t.Skip("go toolchain not found: cannot build the dummy plugin")
		}
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "build", "-o", filepath.Join(rootfs, "dummyplugin"), "./testdata/dummyplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building dummy plugin: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile("testdata/dummyplugin/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
