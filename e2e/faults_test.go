package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
	"github.com/weftnet/weft/vxlan"
)

// linkCut is how long s3's cable stays out: long enough for the swarm's
// gossip to declare the node failed (a few seconds), so weft's handling of
// a node that vanishes and comes back is exercised, not only a short gap.
const linkCut = 10 * time.Second

// aftermath is how long the probes between s1 and s2 go on after s3 is
// reachable again.
const aftermath = 2 * time.Second

// TestSwarmFaults: a vxlan network with a task on each node; while s3
// suffers one fault after another (cable cut, dockerd restart, plugin
// killed, a crash, leaving the swarm and joining again), traffic between
// s1 and s2 never stops, s3's task is reachable from s1 again within
// seconds of the fault ending, and s1 and s2 flood to s3 again. A node that
// leaves is dropped from the other nodes' VXLAN forwarding entries, flood
// list and learned MACs alike; a crashed node that is back stays listed
// when the swarm declares its old self dead. After the crash, dockerd may
// hold s3's new task until its networkdb gives up syncing with s3's dead
// gossip self (up to 30 s, whatever the driver); weft answers at once.
func TestSwarmFaults(t *testing.T) {
	requireLab(t)
	s := theSwarm(t)
	s1, s2, s3 := s.nodes[0], s.nodes[1], s.nodes[2]
	net := "faults"
	s.network(t, net, "-o", "mode=vxlan", "--subnet", "10.90.0.0/24")
	dev := vxlan.Name(docker(t, s1, "network", "inspect", "-f", "{{.Id}}", net))
	s.service(t, "probe", "--mode", "global", "--network", net, lab.Image, "sleep", "3600")
	tasks := s.tasks(t, "probe")
	ips := taskIPs(t, tasks)

	var departed map[*lab.DockerHost]int // gossip departures of s3 seen before a crash
	for _, fault := range []struct {
		name    string
		inflict func(t *testing.T)
		settle  func(t *testing.T) // waits for late consequences, if any
	}{
		{name: "link-cut", inflict: func(t *testing.T) {
			if err := s3.SetLink(false); err != nil {
				t.Fatal(err)
			}
			time.Sleep(linkCut)
			if err := s3.SetLink(true); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dockerd-restart", inflict: func(t *testing.T) {
			if err := s3.RestartDockerd(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "plugin-killed", inflict: func(t *testing.T) {
			if _, _, err := s3.KillPlugin(ctx(t), Plugin); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "crash", inflict: func(t *testing.T) {
			departed = map[*lab.DockerHost]int{s1: gossipDepartures(t, s1, s3), s2: gossipDepartures(t, s2, s3)}
			// s3's task is running: its dockerd forgets its copy of the
			// network and creates it anew, asking weft for the same pool.
			if err := s3.HardReboot(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}, settle: func(t *testing.T) {
			// s3 is back as a new gossip member before its old one is
			// declared dead; that death must not drop the live node.
			for _, n := range []*lab.DockerHost{s1, s2} {
				eventually(t, 60*time.Second, n.Name+" declares s3's old gossip member dead", func() error {
					if got := gossipDepartures(t, n, s3); got <= departed[n] {
						return fmt.Errorf("%d departures of %s logged, %d before the crash", got, s3.Addr, departed[n])
					}
					return nil
				})
			}
		}},
		{name: "leave-rejoin", inflict: func(t *testing.T) { s.leaveAndRejoin(t, s3, dev) }},
	} {
		t.Run(fault.name, func(t *testing.T) {
			p := startPinger(t, s1, net, ips[s2])
			fault.inflict(t)
			over := time.Now()
			// The fault may have replaced s3's task (a restarted dockerd
			// fails it; a node that left lost it).
			task3 := s.tasksOn(t, "probe", []*lab.DockerHost{s3})[s3]
			ip3 := containerIP(t, s3, task3)
			eventually(t, 30*time.Second, "s1's task reaches s3's task "+ip3, func() error {
				_, err := s1.Docker(context.Background(), "exec", tasks[s1], "ping", "-c", "1", "-W", "1", ip3)
				return err
			})
			t.Logf("s3's task reachable from s1 %s after the fault ended", time.Since(over).Round(100*time.Millisecond))
			if fault.settle != nil {
				fault.settle(t)
			}
			for _, n := range []*lab.DockerHost{s1, s2} {
				eventually(t, 30*time.Second, n.Name+" floods to "+s3.Name, func() error {
					if !slices.Contains(fdbTo(t, n, dev, s3.Addr.String()), floodEntry(s3.Addr.String())) {
						return fmt.Errorf("%s %s has no flood entry for %s", n.Name, dev, s3.Addr)
					}
					return nil
				})
			}
			// Late consequences (gossip announcing the node back, the
			// plugin's restore) happen under the probes too.
			time.Sleep(aftermath)
			p.stop(t)
		})
	}
}

// pinger pings from a container on one node, the whole time a fault lasts.
type pinger struct {
	h       *lab.DockerHost
	name    string
	target  string
	started time.Time
}

// pingInterval is the pinger's: any gap in forwarding longer than this
// loses a probe.
const pingInterval = 200 * time.Millisecond

// startPinger starts a container on h pinging target every 200 ms.
func startPinger(t *testing.T, h *lab.DockerHost, net, target string) *pinger {
	t.Helper()
	p := &pinger{h: h, name: "pinger-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), target: target}
	interval := strconv.FormatFloat(pingInterval.Seconds(), 'f', -1, 64)
	docker(t, h, "run", "-d", "--name", p.name, "--network", net, lab.Image, "ping", "-i", interval, target)
	p.started = time.Now()
	t.Cleanup(func() { h.Docker(context.Background(), "rm", "-f", p.name) })
	return p
}

// stop ends the pinger and checks that every probe came back but perhaps
// the last, which SIGINT can catch in flight: the path must not miss a
// beat. It also checks the pinger sent for the whole time (at least half
// the probes due: container start and a busy machine delay some).
func (p *pinger) stop(t *testing.T) {
	t.Helper()
	due := int(time.Since(p.started) / pingInterval)
	docker(t, p.h, "kill", "-s", "INT", p.name)
	docker(t, p.h, "wait", p.name)
	out := docker(t, p.h, "logs", p.name)
	sent, got, ok := probe.PingStats(out)
	if !ok {
		t.Fatalf("pinger output has no statistics:\n%s", probe.Tail(out, 10))
	}
	t.Logf("%s -> %s: %d probes, %d answered", p.h.Name, p.target, sent, got)
	if sent < due/2 || sent-got > 1 {
		t.Errorf("traffic from %s to %s suffered: %d probes sent (%d due), %d answered\n%s", p.h.Name, p.target, sent, due, got, probe.Tail(out, 20))
	}
}

// leaveAndRejoin makes h leave the swarm and join it again, checking that
// the other nodes forget h's VXLAN endpoint while it is away.
func (s *swarm) leaveAndRejoin(t *testing.T, h *lab.DockerHost, dev string) {
	t.Helper()
	addr := h.Addr.String()
	oldID := docker(t, h, "info", "-f", "{{.Swarm.NodeID}}")
	docker(t, h, "swarm", "leave", "--force")
	var others []*lab.DockerHost
	for _, n := range s.nodes {
		if n != h {
			others = append(others, n)
		}
	}
	for _, n := range others {
		eventually(t, 30*time.Second, n.Name+" forgets "+h.Name+"'s VXLAN endpoint", func() error {
			if entries := fdbTo(t, n, dev, addr); len(entries) > 0 {
				return fmt.Errorf("%s %s still sends to %s:\n%s", n.Name, dev, addr, strings.Join(entries, "\n"))
			}
			return nil
		})
	}
	if err := s.Join(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	// A node joining again is a new node: the manager lists the old one
	// as down until it is removed.
	if newID := docker(t, h, "info", "-f", "{{.Swarm.NodeID}}"); newID != oldID {
		t.Logf("%s rejoined as node %s (was %s)", h.Name, newID, oldID)
		docker(t, s.Manager, "node", "rm", "--force", oldID)
	}
}

// gossipDepartures counts the members at node's address that h's dockerd
// saw leave the swarm's gossip cluster (each announced to weft).
func gossipDepartures(t *testing.T, h, node *lab.DockerHost) int {
	t.Helper()
	log, err := os.ReadFile(h.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(log), "/"+node.Addr.String()+", left gossip cluster")
}

// floodEntry is the flood-list entry for a peer, as fdbTo shows it.
func floodEntry(peer string) string { return "00:00:00:00:00:00 dst " + peer + " self permanent" }

// fdbTo lists the forwarding entries of a VXLAN device on h that send to
// the underlay address dst: the flood-list entry (all-zero MAC) and the
// MACs learnt behind dst.
func fdbTo(t *testing.T, h *lab.DockerHost, dev, dst string) []string {
	t.Helper()
	out, err := h.Run(ctx(t), "bridge", "fdb", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dst" && f[i+1] == dst {
				entries = append(entries, strings.Join(f, " "))
			}
		}
	}
	return entries
}
