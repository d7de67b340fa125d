package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// swarm is the three-node swarm the swarm scenarios share: s1 manager, s2
// and s3 workers, weft created from build/plugin on each with SCOPE=global,
// plus a plain lab host "client" outside the swarm.
type swarm struct {
	nodes  []*lab.DockerHost // the manager first
	client *lab.Host
}

var (
	swarmOnce sync.Once
	theSwm    *swarm
	swarmErr  error
)

func theSwarm(t *testing.T) *swarm {
	t.Helper()
	swarmOnce.Do(func() {
		start := time.Now()
		theSwm, swarmErr = newSwarm()
		if swarmErr == nil {
			t.Logf("swarm of 3 nodes with weft ready in %s", time.Since(start).Round(time.Second))
		}
	})
	if swarmErr != nil {
		t.Fatalf("swarm: %v", swarmErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range theSwm.nodes {
				t.Logf("--- %s dockerd log tail ---\n%s", h.Name, probe.Tail(h.Logs(), 30))
			}
		}
	})
	return theSwm
}

func newSwarm() (*swarm, error) {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// One after the other: three dockerds starting at once under TCG
	// outlast dockerd's wait for its containerd ("timeout waiting for
	// containerd to start").
	var nodes []*lab.DockerHost
	for _, name := range []string{"s1", "s2", "s3"} {
		h, err := theLab.AddDockerHost(name)
		if err != nil {
			return nil, err
		}
		if err := h.InstallPlugin(c, guestPlugin, Plugin, "SCOPE=global"); err != nil {
			return nil, fmt.Errorf("install weft on %s: %w", name, err)
		}
		nodes = append(nodes, h)
	}
	sw, err := lab.InitSwarm(c, nodes[0])
	if err != nil {
		return nil, err
	}
	for _, h := range nodes[1:] {
		if err := sw.Join(c, h); err != nil {
			return nil, err
		}
	}
	client, err := theLab.AddHost("client")
	if err != nil {
		return nil, err
	}
	return &swarm{nodes: nodes, client: client}, nil
}

func (s *swarm) manager() *lab.DockerHost { return s.nodes[0] }

// network creates an attachable swarm network with weft as driver and IPAM
// and removes it at cleanup, once its tasks are gone.
func (s *swarm) network(t *testing.T, name string, args ...string) {
	t.Helper()
	s.anyNetwork(t, name, append([]string{"-d", Plugin, "--ipam-driver", Plugin}, args...)...)
}

// anyNetwork is network with the driver given in args.
func (s *swarm) anyNetwork(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append([]string{"network", "create", "--attachable"}, args...)
	docker(t, s.manager(), append(all, name)...)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.RemoveNetwork(c, s.manager(), name); err != nil {
			t.Errorf("removing network %s: %v", name, err)
		}
	})
}

// service creates a service (args: docker service create's flags, image
// and command) and removes it at cleanup.
func (s *swarm) service(t *testing.T, name string, args ...string) {
	t.Helper()
	all := append([]string{"service", "create", "--detach", "--name", name, "--stop-grace-period", "1s"}, args...)
	docker(t, s.manager(), all...)
	t.Cleanup(func() { s.manager().Docker(context.Background(), "service", "rm", name) })
}

// tasks waits until every node runs exactly one task of service and
// returns the task containers by node.
func (s *swarm) tasks(t *testing.T, service string) map[*lab.DockerHost]string {
	t.Helper()
	task := map[*lab.DockerHost]string{}
	eventually(t, 5*time.Minute, "one running task of "+service+" on each node", func() error {
		for _, h := range s.nodes {
			ids, err := h.Docker(context.Background(), "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service)
			if f := strings.Fields(ids); err != nil || len(f) != 1 {
				out, _ := s.manager().Docker(context.Background(), "service", "ps", "--no-trunc", service)
				return fmt.Errorf("%s runs tasks %q (%v)\n%s", h.Name, ids, err, out)
			}
			task[h] = strings.TrimSpace(ids)
		}
		return nil
	})
	return task
}

// serveNodeName is a service's flags, image and command for an HTTP
// server on port 80 answering with its node's name.
func serveNodeName() []string {
	return []string{"--hostname", "{{.Node.Hostname}}", lab.Image, "sh", "-c", probe.Serving("$(hostname)")}
}

// names returns the sorted distinct strings of a list.
func names(list []string) []string {
	out := slices.Clone(list)
	sort.Strings(out)
	return slices.Compact(out)
}

// nodeNames are the swarm's node names, sorted.
func (s *swarm) nodeNames() []string {
	var out []string
	for _, h := range s.nodes {
		out = append(out, h.Name)
	}
	return names(out)
}

// lookup returns the addresses name resolves to in container on h, sorted.
func lookup(t *testing.T, h *lab.DockerHost, container, name string) []string {
	t.Helper()
	out, _ := h.Docker(ctx(t), "exec", container, "nslookup", name)
	return probe.Answers(out)
}

// TestEncrypted: an encrypted weft vxlan network on the swarm carries a
// container's HTTP exchange with containers on the other nodes, and the
// underlay shows only ESP: no VXLAN packet of the network's subnet and not
// the page's bytes. The key came from the manager's weft with the network's
// options. The same exchange over a network without encryption, captured the
// same way, shows both: the control that the capture sees what it must not
// see on the encrypted one. Docker's own encrypted overlay network runs the
// same exchange last.
func TestEncrypted(t *testing.T) {
	inVM(t)
	timed(t)
	s := theSwarm(t)
	for _, tc := range []struct {
		name      string
		subnet    string
		encrypted bool
		docker    bool // Docker's own overlay driver instead of weft
	}{
		{"clear", "10.91.0.0/24", false, false},
		{"encrypted", "10.90.0.0/24", true, false},
		{"docker-overlay-encrypted", "10.95.0.0/24", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := "vx-" + tc.name
			switch {
			case tc.docker:
				s.anyNetwork(t, net, "-d", "overlay", "-o", "encrypted", "--subnet", tc.subnet)
			case tc.encrypted:
				s.network(t, net, "-o", "mode=vxlan", "-o", "encrypted", "--subnet", tc.subnet)
			default:
				s.network(t, net, "-o", "mode=vxlan", "--subnet", tc.subnet)
			}
			marker := "weft-page-" + randomHex(8)
			web, client := s.nodes[0], s.nodes[1:]
			run(t, web, net+"-web", "--network", net, lab.Image, "sh", "-c", probe.Serving(marker))
			webIP := containerIP(t, web, net+"-web", net)
			for _, h := range client {
				run(t, h, net+"-client", "--network", net)
			}

			c := startCapture(t)
			for _, h := range client {
				got, err := httpGet(h, net+"-client", webIP, 80)
				if got != marker {
					t.Errorf("HTTP from %s's container to %s on %s: %q (%v), want %q", h.Name, webIP, web.Name, got, err, marker)
				}
				reaches(t, h, net+"-client", webIP)
			}
			u := survey(c.Stop(), netip.MustParsePrefix(tc.subnet), []byte(marker))
			t.Logf("underlay: %d frames, %d ESP, %d VXLAN of %s in clear, %d holding the page", u.frames, u.esp, u.vxlanIn, tc.subnet, u.marker)
			if tc.encrypted {
				if u.esp == 0 || u.vxlanIn != 0 || u.marker != 0 {
					t.Errorf("encrypted network on the underlay: %d ESP packets, %d clear VXLAN packets of %s, %d frames with the page: want ESP only", u.esp, u.vxlanIn, tc.subnet, u.marker)
				}
				return
			}
			if u.vxlanIn == 0 || u.marker == 0 {
				t.Errorf("the capture saw %d VXLAN packets of %s and %d frames with the page on a network without encryption: it cannot show what encryption hides", u.vxlanIn, tc.subnet, u.marker)
			}
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestVIP: a replicated service in swarm's default endpoint mode (VIP) on a
// weft vxlan network. Docker resolves the name to a virtual IP and
// tasks.NAME to the three tasks, and each task answers at its own address.
// The VIP itself carries nothing: dockerd makes a network's load-balancing
// endpoint, behind which it programs IPVS, only for its own overlay driver
// (createNetwork in moby's daemon/network.go: `agent && driver ==
// "overlay"`), so for any network plugin it logs "Unable to find load
// balancing endpoint" and connections to the VIP find no one. weft cannot
// change that; services on weft networks use --endpoint-mode dnsrr. The test
// shows the message is dockerd's, so a dockerd that lifts the limit fails it.
func TestVIP(t *testing.T) {
	inVM(t)
	timed(t)
	s := theSwarm(t)
	net := "vip-net"
	s.network(t, net, "-o", "mode=vxlan", "--subnet", "10.92.0.0/24")
	s.service(t, "api", append([]string{"--replicas", "3", "--replicas-max-per-node", "1", "--network", net}, serveNodeName()...)...)
	tasks := s.tasks(t, "api")
	var taskIPs []string
	for h, id := range tasks {
		taskIPs = append(taskIPs, containerIP(t, h, id, net))
	}
	vip := strings.Fields(docker(t, s.manager(), "service", "inspect", "-f", "{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}", "api"))
	var vipAddr string
	if len(vip) == 1 {
		vipAddr, _, _ = strings.Cut(vip[0], "/")
	}
	if vipAddr == "" || slices.Contains(taskIPs, vipAddr) {
		t.Fatalf("service api's virtual IPs %q (tasks %v): want one address on %s, none of the tasks'", vip, taskIPs, net)
	}

	from := s.nodes[1]
	run(t, from, "vip-client", "--network", net)
	eventually(t, time.Minute, "api resolves to its VIP", func() error {
		if got := lookup(t, from, "vip-client", "api"); !slices.Equal(got, []string{vipAddr}) {
			return fmt.Errorf("nslookup api: %v, want [%s]", got, vipAddr)
		}
		return nil
	})
	eventually(t, time.Minute, "tasks.api resolves to the tasks", func() error {
		if got := lookup(t, from, "vip-client", "tasks.api"); !slices.Equal(got, names(taskIPs)) {
			return fmt.Errorf("nslookup tasks.api: %v, want %v", got, names(taskIPs))
		}
		return nil
	})
	// The positive control: every task answers at its own address, from
	// another node, across weft's vxlan.
	var answers []string
	for _, ip := range taskIPs {
		got, err := httpGet(from, "vip-client", ip, 80)
		if err != nil || got == "" {
			t.Errorf("HTTP to task %s from %s: %q (%v)", ip, from.Name, got, err)
		}
		answers = append(answers, got)
	}
	if got := names(answers); !slices.Equal(got, s.nodeNames()) {
		t.Errorf("the tasks answered as %v, want every node's %v", got, s.nodeNames())
	}

	got, err := httpGet(from, "vip-client", vipAddr, 80)
	if got != "" {
		t.Errorf("the VIP %s answered %q: dockerd now balances a network plugin's VIP; make this test positive and update the README", vipAddr, got)
		return
	}
	t.Logf("known dockerd limit: HTTP to the VIP %s: %v", vipAddr, err)
	const dockerdSays = "Unable to find load balancing endpoint for network"
	var said []string
	for _, h := range s.nodes {
		if b, err := os.ReadFile(h.LogPath); err == nil && strings.Contains(string(b), dockerdSays) {
			said = append(said, h.Name)
		}
	}
	if len(said) == 0 {
		t.Errorf("the VIP %s does not answer, but no dockerd logged %q: the cause is not the known dockerd limit", vipAddr, dockerdSays)
	}
}

// TestRoutingMesh: a service on a weft network publishes a port through
// swarm's routing mesh; a machine outside the swarm gets an answer on every
// node's address, and connections to one node reach the tasks on all three.
// The same service on Docker's own overlay network comes first, as the
// control: if the mesh fails there too, the lab is at fault, not weft.
func TestRoutingMesh(t *testing.T) {
	inVM(t)
	timed(t)
	s := theSwarm(t)
	control := t.Run("docker-overlay", func(t *testing.T) {
		s.anyNetwork(t, "mesh-ctl", "-d", "overlay", "--subnet", "10.94.0.0/24")
		meshAnswers(t, s, "mesh-ctl", 8090)
	})
	t.Run("weft", func(t *testing.T) {
		s.network(t, "mesh-net", "-o", "mode=vxlan", "--subnet", "10.93.0.0/24")
		meshAnswers(t, s, "mesh-net", 8080)
		if !control {
			t.Errorf("the routing mesh fails on Docker's own overlay network in this lab too: the lab is at fault as well")
		}
	})
}

// meshAnswers runs a 3-task service on network net publishing port through
// the routing mesh, and checks that every node's address answers, each
// from the tasks on all three nodes.
func meshAnswers(t *testing.T, s *swarm, net string, port int) {
	svc := net + "-web"
	s.service(t, svc, append([]string{"--replicas", "3", "--replicas-max-per-node", "1", "--network", net,
		"-p", fmt.Sprintf("%d:80", port)}, serveNodeName()...)...)
	s.tasks(t, svc)
	for _, h := range s.nodes {
		var answers []string
		if err := probe.Within(2*time.Minute, time.Second, func() error {
			got, err := hostHTTPGet(s.client, h.Addr.String(), port)
			if got == "" {
				return fmt.Errorf("HTTP to %s:%d from %s: %q (%v)", h.Addr, port, s.client.Name, got, err)
			}
			return nil
		}); err != nil {
			t.Logf("the mesh's state on %s:\n%s", h.Name, meshState(h))
			t.Fatalf("the routing mesh answers on %s: %v", h.Name, err)
		}
		for range 6 {
			got, err := hostHTTPGet(s.client, h.Addr.String(), port)
			if err != nil || got == "" {
				t.Errorf("HTTP to %s:%d (%s) from %s: %q (%v)", h.Addr, port, h.Name, s.client.Name, got, err)
				continue
			}
			answers = append(answers, got)
		}
		if got := names(answers); !slices.Equal(got, s.nodeNames()) {
			t.Errorf("6 connections to %s:%d (%s) were answered by %v (%v), want every node's task %v", h.Addr, port, h.Name, got, answers, s.nodeNames())
		}
	}
}

// meshState is what a routing mesh is made of on node h, with packet
// counters: the node's NAT and filter rules, and in the ingress sandbox its
// addresses, routes, rules and IPVS table.
func meshState(h *lab.DockerHost) string {
	const sbox = "nsenter --net=/run/docker/netns/ingress_sbox"
	script := strings.Join([]string{
		"ip addr", "ip route", "iptables-save -c",
		"ls /run/docker/netns",
		sbox + " ip addr", sbox + " ip route", sbox + " iptables-save -c",
		sbox + " cat /proc/net/ip_vs", sbox + " cat /proc/net/ip_vs_stats",
		sbox + " sysctl -a 2>/dev/null | grep -E 'vs\\.conntrack|ip_forward|rp_filter'",
		"cat /proc/net/nf_conntrack 2>/dev/null | grep -E 'dport=80[89]0' | head -20",
	}, "; echo ---; ")
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.Run(c, "sh", "-c", script)
	if err != nil {
		out += "\n" + err.Error()
	}
	return out
}
