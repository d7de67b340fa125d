package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// eventually retries check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := probe.Within(timeout, 500*time.Millisecond, check); err != nil {
		t.Fatalf("%s: %v\n--- dockerd log tail ---\n%s", what, err, probe.Tail(host.Logs(), 40))
	}
}

// weftLinks counts the endpoint links weft has on the Docker host.
func weftLinks(t *testing.T) int {
	out, err := host.Run(ctx(t), "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && (strings.HasPrefix(f[1], "wh") || strings.HasPrefix(f[1], "wc")) {
			n++
		}
	}
	return n
}

func pluginEnabled() error {
	out, err := host.Docker(context.Background(), "plugin", "inspect", "-f", "{{.Enabled}}", Plugin)
	if err != nil || out != "true" {
		return fmt.Errorf("plugin not enabled: %q %v", out, err)
	}
	return nil
}

// TestPluginKilled: kill -9 of the plugin never cuts running containers, and
// once dockerd has restarted it, everything works and nothing leaks.
func TestPluginKilled(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.30.0.0/24")
	run(t, net+"-a", "--network", net)
	run(t, net+"-b", "--network", net)
	if _, _, err := host.KillPlugin(ctx(t), Plugin); err != nil {
		t.Fatal(err)
	}
	reaches(t, net+"-a", net+"-b") // the data path does not need the daemon
	eventually(t, 30*time.Second, "a new container joins after the plugin restarted", func() error {
		_, err := host.Docker(context.Background(), "run", "--rm", "--network", net, lab.Image, "ping", "-c", "1", "-W", "2", net+"-a")
		return err
	})
	// Control for the count below: weftLinks sees the two containers'.
	eventually(t, 10*time.Second, "one weft link per running container", func() error {
		if n := weftLinks(t); n != 2 {
			return fmt.Errorf("%d weft links on the host, want 2", n)
		}
		return nil
	})
	docker(t, host, "rm", "-f", net+"-a", net+"-b")
	docker(t, host, "network", "rm", net)
	if n := weftLinks(t); n != 0 {
		t.Errorf("%d weft links left after removing every container", n)
	}
}

// TestDockerdRestart: after a dockerd restart (which restarts the plugin
// with it), restart-policy containers come back on their network with their
// static address and published port, and removal still works.
func TestDockerdRestart(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.31.0.0/24")
	run(t, net+"-a", "--network", net, "--restart", "always", "--ip", "10.31.0.10")
	run(t, net+"-web", "--network", net, "--restart", "always", "-p", "8093:80", lab.Image,
		"sh", "-c", "mkdir -p /www && echo restarted-ok > /www/index.html && exec httpd -f -p 80 -h /www")
	if err := host.RestartDockerd(ctx(t)); err != nil {
		t.Fatalf("restart dockerd: %v\n%s", err, probe.Tail(host.Logs(), 40))
	}
	eventually(t, 60*time.Second, "containers running again", func() error {
		for _, c := range []string{net + "-a", net + "-web"} {
			out, err := host.Docker(context.Background(), "inspect", "-f", "{{.State.Running}}", c)
			if err != nil || out != "true" {
				return fmt.Errorf("%s running=%q %v", c, out, err)
			}
		}
		return nil
	})
	reaches(t, net+"-web", "10.31.0.10")
	reaches(t, net+"-web", net+"-a")
	eventually(t, 10*time.Second, "published port answers after restart", func() error {
		out, _ := ext.Run(context.Background(), "sh", "-c", fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s 8093`, host.Addr))
		if !strings.Contains(out, "restarted-ok") {
			return fmt.Errorf("got %q", out)
		}
		return nil
	})
	if n := weftLinks(t); n != 2 {
		t.Errorf("%d weft links on the host, want 2 (one per running container)", n)
	}
	docker(t, host, "rm", "-f", net+"-a", net+"-web")
	docker(t, host, "network", "rm", net)
	if n := weftLinks(t); n != 0 {
		t.Errorf("%d weft links left after removing every container", n)
	}
}

// TestReboot: a simulated host reboot (every link, rule and process gone,
// disks kept) brings the network back; restart-policy containers rejoin
// and reach each other and the outside; removal leaves nothing.
func TestReboot(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.32.0.0/24")
	run(t, net+"-a", "--network", net, "--restart", "always")
	run(t, net+"-b", "--network", net, "--restart", "always")
	// A /30 holds the gateway and one container: that container can only
	// come back after the reboot if its old address was released, not leaked.
	tight := netName(t, "tight")
	network(t, tight, "--subnet", "10.33.0.0/30")
	run(t, tight+"-only", "--network", tight, "--restart", "always")
	if err := host.Reboot(ctx(t)); err != nil {
		t.Fatalf("reboot: %v\n%s", err, probe.Tail(host.Logs(), 40))
	}
	eventually(t, 60*time.Second, "plugin enabled after reboot", pluginEnabled)
	eventually(t, 60*time.Second, "containers reach each other after reboot", func() error {
		_, err := host.Docker(context.Background(), "exec", net+"-a", "ping", "-c", "1", "-W", "2", net+"-b")
		return err
	})
	reaches(t, net+"-a", ext.Addr.String())
	eventually(t, 30*time.Second, "the container on the full /30 is back", func() error {
		out, err := host.Docker(context.Background(), "inspect", "-f", "{{.State.Running}}", tight+"-only")
		if err != nil || out != "true" {
			return fmt.Errorf("running=%q %v", out, err)
		}
		return nil
	})
	docker(t, host, "rm", "-f", net+"-a", net+"-b", tight+"-only")
	docker(t, host, "network", "rm", net, tight)
	// After a reboot, Docker's own rules were rebuilt too; compare weft's part.
	if after := hostState(t); after != before {
		t.Errorf("after reboot and removal the host differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestMacvlanSurvives: a macvlan network with a parent weft owns (no parent,
// internal) keeps working through a plugin kill, a dockerd restart and a
// reboot, after which weft rebuilds the parent from its store.
func TestMacvlanSurvives(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	net := netName(t, "n")
	network(t, net, "-o", "mode=macvlan", "--internal", "--subnet", "10.72.0.0/24")
	run(t, net+"-a", "--network", net, "--restart", "always")
	run(t, net+"-b", "--network", net, "--restart", "always")
	if _, _, err := host.KillPlugin(ctx(t), Plugin); err != nil {
		t.Fatal(err)
	}
	reaches(t, net+"-a", net+"-b")
	for _, step := range []struct {
		name string
		do   func(context.Context) error
	}{{"dockerd restart", host.RestartDockerd}, {"reboot", host.Reboot}} {
		if err := step.do(ctx(t)); err != nil {
			t.Fatalf("%s: %v\n%s", step.name, err, probe.Tail(host.Logs(), 40))
		}
		eventually(t, 60*time.Second, "containers reach each other after "+step.name, func() error {
			_, err := host.Docker(context.Background(), "exec", net+"-a", "ping", "-c", "1", "-W", "2", net+"-b")
			return err
		})
	}
	docker(t, host, "rm", "-f", net+"-a", net+"-b")
	docker(t, host, "network", "rm", net)
	if after := hostState(t); after != before {
		t.Errorf("after removal the host differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
