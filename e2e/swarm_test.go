package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// TestSwarmMacvlanParentPerNode: on the swarm (weft installed with
// SCOPE=global), one macvlan network names its parent by the subnet it sits
// on, so each node finds its own; a service's tasks on every node reach each
// other across the LAN, by address and through Docker's DNS (tasks.NAME),
// and a standalone container joins the attachable network.
func TestSwarmMacvlanParentPerNode(t *testing.T) {
	requireLab(t)
	s := theSwarm(t)
	net := "swarm-lan"
	s.network(t, net, "-o", "mode=macvlan", "-o", "parent_subnet=198.18.0.0/24",
		"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.1", "--ip-range", "198.18.0.160/28")
	if scope := docker(t, s.Manager, "network", "inspect", "-f", "{{.Scope}}", net); scope != "swarm" {
		t.Fatalf("network scope %q, want swarm", scope)
	}
	// Each node picks its own parent from the subnet: lab0 on all here.
	checkService(t, s, "lanweb", net, "198.18.0.1")
}

// TestSwarmVXLAN: a weft vxlan network with no peers given finds them
// through the swarm (DiscoverNew); a global service's tasks on the three
// nodes reach each other over VXLAN and through tasks.NAME, and a
// standalone container joins the attachable network.
func TestSwarmVXLAN(t *testing.T) {
	requireLab(t)
	s := theSwarm(t)
	net := "swarm-vx"
	s.network(t, net, "-o", "mode=vxlan", "--subnet", "10.85.0.0/24")
	checkService(t, s, "vxweb", net, "10.85.0.")
	if mtu, err := s.Manager.Docker(ctx(t), "run", "--rm", "--network", net, lab.Image, "cat", "/sys/class/net/eth0/mtu"); err != nil || mtu != "1450" {
		t.Errorf("container MTU %q (%v), want 1450 (underlay minus VXLAN's 50)", mtu, err)
	}
}

// TestSwarmReplicated: a replicated service (dnsrr, at most one task per
// node) on a weft vxlan network gets one task on each of the three nodes;
// the tasks reach each other across hosts by address (ping and HTTP), and
// Docker's DNS answers both tasks.NAME and the service name itself with
// every task.
func TestSwarmReplicated(t *testing.T) {
	requireLab(t)
	s := theSwarm(t)
	net := "swarm-rep"
	s.network(t, net, "-o", "mode=vxlan", "--subnet", "10.86.0.0/24")
	s.service(t, "rep", "--replicas", "3", "--replicas-max-per-node", "1", "--network", net,
		"--hostname", "{{.Node.Hostname}}", lab.Image, "sh", "-c", probe.Serving("$(hostname)"))
	tasks := s.tasks(t, "rep")
	ips := taskIPs(t, tasks)
	s.pingAround(t, tasks, ips)
	from := s.nodes[1]
	for _, name := range []string{"tasks.rep", "rep"} {
		resolvesTo(t, from, tasks[from], name, ips)
	}
	if _, err := from.Docker(ctx(t), "exec", tasks[from], "ping", "-c", "1", "-W", "2", "rep"); err != nil {
		t.Errorf("task on %s cannot ping the service by name: %v", from.Name, err)
	}
	// TCP across hosts: the task on s1 fetches each other task's page, its
	// node's name (--hostname {{.Node.Hostname}}).
	for _, h := range s.nodes[1:] {
		if body, err := httpGet(s.Manager, tasks[s.Manager], ips[h]); body != h.Name {
			t.Errorf("HTTP from s1's task to %s's task (%s): %q (%v)", h.Name, ips[h], body, err)
		}
	}
}

// pingAround has each node's task ping the next node's task (the last
// pings the first's), so every node sends to and receives from another.
func (s *swarm) pingAround(t *testing.T, tasks, ips map[*lab.DockerHost]string) {
	t.Helper()
	for i, h := range s.nodes {
		next := s.nodes[(i+1)%len(s.nodes)]
		if _, err := h.Docker(ctx(t), "exec", tasks[h], "ping", "-c", "1", "-W", "2", ips[next]); err != nil {
			t.Errorf("task on %s cannot reach the task on %s (%s): %v", h.Name, next.Name, ips[next], err)
		}
	}
}

// httpGet fetches / from target port 80 inside container on h and returns
// the body.
func httpGet(h *lab.DockerHost, container, target string) (string, error) {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return probe.HTTPGet(c, h, container, target, 80, 3*time.Second)
}

var (
	swarmOnce sync.Once
	sharedSwm *swarm
	swarmErr  error
)

// swarm is the three-node swarm the Swarm tests share: s1 manager, s2 and
// s3 workers, with weft installed on each as users install plugins on a
// swarm: built and pushed once to a registry, then pulled on every node.
type swarm struct {
	*lab.Swarm                   // joins a node that leaves and comes back, too
	nodes      []*lab.DockerHost // the manager first
}

// theSwarm makes the swarm once for the suite. A missing docker-registry
// fails (not skips) the tests: the suite is meant to run it.
func theSwarm(t *testing.T) *swarm {
	t.Helper()
	swarmOnce.Do(func() { sharedSwm, swarmErr = newSwarm(context.Background()) })
	if swarmErr != nil {
		t.Fatalf("swarm: %v", swarmErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range sharedSwm.nodes {
				t.Logf("--- %s dockerd log tail ---\n%s", h.Name, probe.Tail(h.Logs(), 30))
			}
		}
	})
	return sharedSwm
}

func newSwarm(ctx context.Context) (*swarm, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var reg *lab.Registry
	regErr := make(chan error, 1)
	go func() {
		registryOnce.Do(func() { sharedReg, registryErr = startRegistry(ctx) })
		reg = sharedReg
		regErr <- registryErr
	}()
	nodes, err := theLab.AddDockerHosts("s1", "s2", "s3")
	if err := errors.Join(err, <-regErr); err != nil {
		return nil, err
	}
	mgr := nodes[0]
	pluginRef := reg.Addr + "/weft:latest" // on the lab's registry host
	// The publisher's side: build the plugin from the directory, push it,
	// and keep no local copy under the registry name.
	if err := publish(ctx, mgr, pluginRef, pluginDir()); err != nil {
		return nil, err
	}
	if err := eachNode(nodes, func(h *lab.DockerHost) error { return installPlugin(ctx, h, pluginRef) }); err != nil {
		return nil, err
	}
	sw, err := lab.InitSwarm(ctx, mgr)
	if err != nil {
		return nil, err
	}
	s := &swarm{Swarm: sw, nodes: nodes}
	if err := eachNode(nodes[1:], func(h *lab.DockerHost) error { return s.Join(ctx, h) }); err != nil {
		return nil, err
	}
	fmt.Printf("swarm: %d nodes with weft from %s ready in %s\n", len(nodes), pluginRef, time.Since(start).Round(time.Millisecond))
	return s, nil
}

// installPlugin pulls weft from ref as users do on each swarm node: --alias
// names it weft:latest, the name the network's driver has on every node
// whatever registry it came from.
func installPlugin(ctx context.Context, h *lab.DockerHost, ref string) error {
	_, err := h.Docker(ctx, "plugin", "install", "--grant-all-permissions", "--alias", Plugin, ref, "SCOPE=global")
	return err
}

// eachNode runs do on the nodes in parallel.
func eachNode(nodes []*lab.DockerHost, do func(*lab.DockerHost) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, h := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(h) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// network creates a swarm-scoped weft network (driver and IPAM, attachable)
// on the manager and removes it at cleanup, once the services using it are
// gone from every node.
func (s *swarm) network(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append([]string{"network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--attachable"}, args...)
	docker(t, s.Manager, append(all, name)...)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lab.RemoveNetwork(c, s.Manager, name); err != nil {
			t.Errorf("removing network %s: %v", name, err)
		}
	})
}

// service creates a dnsrr service (this kernel has no IPVS for VIPs) of
// name, with a short stop grace (sleep and httpd as PID 1 ignore SIGTERM),
// and removes it at cleanup. args are docker service create's flags, image
// and command.
func (s *swarm) service(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append([]string{"service", "create", "--detach", "--name", name, "--endpoint-mode", "dnsrr", "--stop-grace-period", "1s"}, args...)
	docker(t, s.Manager, all...)
	t.Cleanup(func() { s.Manager.Docker(context.Background(), "service", "rm", name) })
}

// tasks waits until every node runs exactly one task of the service and
// returns the task containers by node.
func (s *swarm) tasks(t *testing.T, service string) map[*lab.DockerHost]string {
	t.Helper()
	return s.tasksOn(t, service, s.nodes)
}

// tasksOn is tasks for some of the nodes.
func (s *swarm) tasksOn(t *testing.T, service string, nodes []*lab.DockerHost) map[*lab.DockerHost]string {
	t.Helper()
	task := map[*lab.DockerHost]string{}
	eventually(t, 90*time.Second, "one running task of "+service+" on each node", func() error {
		for _, h := range nodes {
			ids, err := h.Docker(context.Background(), "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service)
			if f := strings.Fields(ids); err != nil || len(f) != 1 {
				out, _ := s.Manager.Docker(context.Background(), "service", "ps", "--no-trunc", service)
				return fmt.Errorf("%s runs tasks %q (%v)\n%s", h.Name, ids, err, out)
			}
			task[h] = strings.TrimSpace(ids)
		}
		return nil
	})
	return task
}

// taskIPs returns each task's address (tasks on one network), and fails
// unless they are distinct.
func taskIPs(t *testing.T, tasks map[*lab.DockerHost]string) map[*lab.DockerHost]string {
	t.Helper()
	ips := map[*lab.DockerHost]string{}
	seen := map[string]bool{}
	for h, id := range tasks {
		ip := containerIP(t, h, id)
		if ip == "" || seen[ip] {
			t.Fatalf("task %s on %s has address %q: want one distinct address per task", id, h.Name, ip)
		}
		seen[ip] = true
		ips[h] = ip
	}
	return ips
}

// resolvesTo waits until name, looked up in container on h, answers with
// exactly the given addresses.
func resolvesTo(t *testing.T, h *lab.DockerHost, container, name string, ips map[*lab.DockerHost]string) {
	t.Helper()
	var want []string
	for _, ip := range ips {
		want = append(want, ip)
	}
	sort.Strings(want)
	eventually(t, 30*time.Second, name+" resolves to "+strings.Join(want, " "), func() error {
		out, _ := h.Docker(context.Background(), "exec", container, "nslookup", name)
		if got := probe.Answers(out); strings.Join(got, " ") != strings.Join(want, " ") {
			return fmt.Errorf("nslookup %s: %v\n%s", name, got, out)
		}
		return nil
	})
}

// checkService runs a global service on net and checks its tasks on every
// node got distinct addresses starting with prefix and reach each other by
// address and through tasks.NAME; then a standalone container on a worker
// reaches the manager's task.
func checkService(t *testing.T, s *swarm, name, net, prefix string) {
	t.Helper()
	s.service(t, name, "--mode", "global", "--network", net, lab.Image, "sleep", "3600")
	tasks := s.tasks(t, name)
	ips := taskIPs(t, tasks)
	for _, h := range s.nodes {
		if !strings.HasPrefix(ips[h], prefix) {
			t.Errorf("task on %s has address %s, want one starting with %s", h.Name, ips[h], prefix)
		}
	}
	s.pingAround(t, tasks, ips)
	wkr := s.nodes[1]
	resolvesTo(t, wkr, tasks[wkr], "tasks."+name, ips)
	out, err := wkr.Docker(ctx(t), "run", "--rm", "--network", net, lab.Image, "ping", "-c", "1", "-W", "2", ips[s.Manager])
	if err != nil {
		t.Errorf("a standalone container on the attachable network cannot reach the manager's task: %v %s", err, out)
	}
}
