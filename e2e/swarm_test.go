package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// TestSwarmMacvlanParentPerNode: on a two-node swarm (weft installed with
// SCOPE=global), one macvlan network names its parent by the subnet it sits
// on, so each node finds its own; a service's tasks on both nodes reach each
// other across the LAN, by address and through Docker's DNS (tasks.NAME),
// and a standalone container joins the attachable network.
func TestSwarmMacvlanParentPerNode(t *testing.T) {
	requireLab(t)
	hosts, err := theLab.AddDockerHosts("s1", "s2")
	if err != nil {
		t.Fatal(err)
	}
	mgr, wkr := hosts[0], hosts[1]
	for _, h := range hosts {
		if err := h.InstallPlugin(ctx(t), pluginDir(), Plugin, "SCOPE=global"); err != nil {
			t.Fatal(err)
		}
	}
	docker(t, mgr, "swarm", "init", "--advertise-addr", mgr.Addr.String())
	t.Cleanup(func() {
		for _, h := range []*lab.DockerHost{wkr, mgr} {
			h.Docker(context.Background(), "swarm", "leave", "--force")
		}
	})
	token := docker(t, mgr, "swarm", "join-token", "-q", "worker")
	docker(t, wkr, "swarm", "join", "--token", token, mgr.Addr.String()+":2377")

	net := "swarm-lan"
	docker(t, mgr, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--attachable",
		"-o", "mode=macvlan", "-o", "parent_subnet=198.18.0.0/24",
		"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.160/28", net)
	if scope := docker(t, mgr, "network", "inspect", "-f", "{{.Scope}}", net); scope != "swarm" {
		t.Fatalf("network scope %q, want swarm", scope)
	}
	docker(t, mgr, "service", "create", "--detach", "--name", "web", "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", net, "--stop-grace-period", "1s", lab.Image, "sleep", "3600")
	t.Cleanup(func() { mgr.Docker(context.Background(), "service", "rm", "web") })

	task := map[*lab.DockerHost]string{}
	eventually(t, 90*time.Second, "a running task on each node", func() error {
		for _, h := range hosts {
			id, err := h.Docker(context.Background(), "ps", "-q", "--filter", "label=com.docker.swarm.service.name=web")
			if err != nil || id == "" {
				out, _ := mgr.Docker(context.Background(), "service", "ps", "--no-trunc", "web")
				return fmt.Errorf("no task on %s yet: %v\n%s", h.Name, err, out)
			}
			task[h] = strings.Fields(id)[0]
		}
		return nil
	})
	ip := func(h *lab.DockerHost) string {
		return docker(t, h, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", task[h])
	}
	ipMgr, ipWkr := ip(mgr), ip(wkr)
	if ipMgr == ipWkr || !strings.HasPrefix(ipMgr, "198.18.0.1") || !strings.HasPrefix(ipWkr, "198.18.0.1") {
		t.Fatalf("task addresses %s and %s must be distinct and from --ip-range 198.18.0.160/28", ipMgr, ipWkr)
	}
	if _, err := mgr.Docker(ctx(t), "exec", task[mgr], "ping", "-c", "1", "-W", "2", ipWkr); err != nil {
		t.Errorf("task on the manager cannot reach the task on the worker (%s): %v", ipWkr, err)
	}
	eventually(t, 30*time.Second, "tasks.web resolves to both tasks", func() error {
		out, _ := wkr.Docker(context.Background(), "exec", task[wkr], "nslookup", "tasks.web")
		if !strings.Contains(out, ipMgr) || !strings.Contains(out, ipWkr) {
			return fmt.Errorf("nslookup tasks.web: %q", out)
		}
		return nil
	})
	// Each node picked its own parent from the subnet: lab0 on both here.
	out, err := wkr.Docker(ctx(t), "run", "--rm", "--network", net, lab.Image, "ping", "-c", "1", "-W", "2", ipMgr)
	if err != nil {
		t.Errorf("a standalone container on the attachable network cannot reach the manager's task: %v %s", err, out)
	}
}
