package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/probe"
)

// setPluginEnv disables the plugin, sets one variable and enables it again,
// as a user does with `docker plugin set`.
func setPluginEnv(t *testing.T, kv string) {
	t.Helper()
	docker(t, host, "plugin", "disable", Plugin)
	docker(t, host, "plugin", "set", Plugin, kv)
	docker(t, host, "plugin", "enable", Plugin)
}

// TestLogLevelSetting: `docker plugin set weft:latest LOG_LEVEL=debug` turns
// on weft's per-call log, whose lines name the network by its short id.
func TestLogLevelSetting(t *testing.T) {
	requireLab(t)
	setPluginEnv(t, "LOG_LEVEL=debug")
	t.Cleanup(func() {
		host.Docker(context.Background(), "plugin", "disable", Plugin)
		host.Docker(context.Background(), "plugin", "set", Plugin, "LOG_LEVEL=info")
		host.Docker(context.Background(), "plugin", "enable", Plugin)
	})
	if env := docker(t, host, "plugin", "inspect", "-f", "{{.Settings.Env}}", Plugin); !strings.Contains(env, "LOG_LEVEL=debug") {
		t.Fatalf("plugin env %q lacks LOG_LEVEL=debug", env)
	}
	net := netName(t, "n")
	network(t, net, "--subnet", "10.40.0.0/24")
	id := docker(t, host, "network", "inspect", "-f", "{{.Id}}", net)
	logs := host.Logs()
	found := false
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=debug") && strings.Contains(line, "CreateNetwork") && strings.Contains(line, "network="+id[:12]) {
			found = true
		}
	}
	if !found {
		t.Errorf("no debug line for CreateNetwork naming network %s in dockerd's log:\n%s", id[:12], probe.Tail(logs, 30))
	}
}
