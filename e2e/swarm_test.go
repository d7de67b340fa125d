package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	mgr, wkr := swarmPair(t)
	net := "swarm-lan"
	docker(t, mgr, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--attachable",
		"-o", "mode=macvlan", "-o", "parent_subnet=198.18.0.0/24",
		"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.160/28", net)
	if scope := docker(t, mgr, "network", "inspect", "-f", "{{.Scope}}", net); scope != "swarm" {
		t.Fatalf("network scope %q, want swarm", scope)
	}
	t.Cleanup(func() { mgr.Docker(context.Background(), "network", "rm", net) })
	// Each node picks its own parent from the subnet: lab0 on both here.
	checkService(t, mgr, wkr, "web", net, "198.18.0.1")
}

// TestSwarmVXLAN: a weft vxlan network with no peers given finds them
// through the swarm (DiscoverNew); a global service's tasks on two nodes
// reach each other over VXLAN and through tasks.NAME, and a standalone
// container joins the attachable network.
func TestSwarmVXLAN(t *testing.T) {
	requireLab(t)
	mgr, wkr := swarmPair(t)
	net := "swarm-vx"
	docker(t, mgr, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--attachable",
		"-o", "mode=vxlan", "--subnet", "10.85.0.0/24", net)
	t.Cleanup(func() { mgr.Docker(context.Background(), "network", "rm", net) })
	checkService(t, mgr, wkr, "vxweb", net, "10.85.0.")
	if mtu, err := mgr.Docker(ctx(t), "run", "--rm", "--network", net, lab.Image, "cat", "/sys/class/net/eth0/mtu"); err != nil || mtu != "1450" {
		t.Errorf("container MTU %q (%v), want 1450 (underlay minus VXLAN's 50)", mtu, err)
	}
}

var (
	swarmOnce          sync.Once
	swarmMgr, swarmWkr *lab.DockerHost
	swarmErr           error
)

// swarmPair makes, once for the suite, a two-node swarm (manager s1, worker
// s2) with weft installed as users do on swarm nodes: SCOPE=global.
func swarmPair(t *testing.T) (mgr, wkr *lab.DockerHost) {
	t.Helper()
	swarmOnce.Do(func() {
		var hosts []*lab.DockerHost
		if hosts, swarmErr = theLab.AddDockerHosts("s1", "s2"); swarmErr != nil {
			return
		}
		swarmMgr, swarmWkr = hosts[0], hosts[1]
		c := context.Background()
		for _, h := range hosts {
			if swarmErr = h.InstallPlugin(c, pluginDir(), Plugin, "SCOPE=global"); swarmErr != nil {
				return
			}
		}
		if _, swarmErr = swarmMgr.Docker(c, "swarm", "init", "--advertise-addr", swarmMgr.Addr.String()); swarmErr != nil {
			return
		}
		var token string
		if token, swarmErr = swarmMgr.Docker(c, "swarm", "join-token", "-q", "worker"); swarmErr != nil {
			return
		}
		_, swarmErr = swarmWkr.Docker(c, "swarm", "join", "--token", token, swarmMgr.Addr.String()+":2377")
	})
	if swarmErr != nil {
		t.Fatalf("swarm: %v", swarmErr)
	}
	return swarmMgr, swarmWkr
}

// checkService runs a global service on net and checks its tasks on both
// nodes got distinct addresses starting with prefix and reach each other by
// address and through tasks.NAME; then a standalone container on the
// worker reaches the manager's task.
func checkService(t *testing.T, mgr, wkr *lab.DockerHost, name, net, prefix string) {
	t.Helper()
	docker(t, mgr, "service", "create", "--detach", "--name", name, "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", net, "--stop-grace-period", "1s", lab.Image, "sleep", "3600")
	t.Cleanup(func() { mgr.Docker(context.Background(), "service", "rm", name) })
	hosts := []*lab.DockerHost{mgr, wkr}
	task := map[*lab.DockerHost]string{}
	eventually(t, 90*time.Second, "a running task on each node", func() error {
		for _, h := range hosts {
			id, err := h.Docker(context.Background(), "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+name)
			if err != nil || id == "" {
				out, _ := mgr.Docker(context.Background(), "service", "ps", "--no-trunc", name)
				return fmt.Errorf("no task on %s yet: %v\n%s", h.Name, err, out)
			}
			task[h] = strings.Fields(id)[0]
		}
		return nil
	})
	ipMgr, ipWkr := containerIP(t, mgr, task[mgr]), containerIP(t, wkr, task[wkr])
	if ipMgr == ipWkr || !strings.HasPrefix(ipMgr, prefix) || !strings.HasPrefix(ipWkr, prefix) {
		t.Fatalf("task addresses %s and %s must be distinct and start with %s", ipMgr, ipWkr, prefix)
	}
	if _, err := mgr.Docker(ctx(t), "exec", task[mgr], "ping", "-c", "1", "-W", "2", ipWkr); err != nil {
		t.Errorf("task on the manager cannot reach the task on the worker (%s): %v", ipWkr, err)
	}
	eventually(t, 30*time.Second, "tasks."+name+" resolves to both tasks", func() error {
		out, _ := wkr.Docker(context.Background(), "exec", task[wkr], "nslookup", "tasks."+name)
		if !strings.Contains(out, ipMgr) || !strings.Contains(out, ipWkr) {
			return fmt.Errorf("nslookup tasks.%s: %q", name, out)
		}
		return nil
	})
	out, err := wkr.Docker(ctx(t), "run", "--rm", "--network", net, lab.Image, "ping", "-c", "1", "-W", "2", ipMgr)
	if err != nil {
		t.Errorf("a standalone container on the attachable network cannot reach the manager's task: %v %s", err, out)
	}
}
