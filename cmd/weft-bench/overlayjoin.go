package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// joinTimeout bounds the wait for a new node's container to answer.
const joinTimeout = 60 * time.Second

// joinSample is one new node joining the swarm and starting a container on
// one network, timed from the start of `docker swarm join` on it.
type joinSample struct {
	joined time.Duration // `docker swarm join` returned
	ran    time.Duration // `docker run -d` on the new node returned
	reach  time.Duration // that container answered the probe
}

// joinTimes times b.p.joins joins per side of overlaySides, interleaved
// (order): each a fresh Docker host that joins sw, starts one container on
// that side's network and leaves again before the next, so every one joins
// the same two-node swarm and finds the network as the others did. The
// probes are containers on the manager, one per network. It returns the
// samples per side (index as overlaySides).
//
// One node per side, not one for both: a just-joined worker asked for two
// network attachments at once sometimes never got one of them (dockerd gave
// up after its 20 s with "attaching to network failed"), on either driver.
func (b *bench) joinTimes(ctx context.Context, sw *lab.Swarm) ([2][]joinSample, error) {
	var out [2][]joinSample
	var probes [2]string
	for k, s := range overlaySides {
		probes[k] = "probe-" + s.short
		// ARP retransmits every 100 ms instead of the kernel's 1 s: the
		// probe's first pings go out before the new node is known, and
		// with 1 s between ARP requests the measurement could not tell
		// apart paths that open up to a second apart.
		if _, err := sw.Manager.Docker(ctx, "run", "-d", "--stop-timeout", "1", "--name", probes[k], "--network", s.network,
			"--sysctl", "net.ipv4.neigh.eth0.retrans_time_ms=100", lab.Image, "sleep", "3600"); err != nil {
			return out, err
		}
	}
	n := 0
	for i := range b.p.joins {
		for _, k := range order(i, 2) {
			n++
			d, err := b.newSwarmHost(ctx, fmt.Sprintf("ovjoin%d", n))
			if err != nil {
				return out, err
			}
			b.logf("overlay: %s joins the swarm for a %s container (%d of %d)", d.Name, overlaySides[k].label, n, 2*b.p.joins)
			js, err := timeJoin(ctx, sw, d, overlaySides[k], probes[k])
			if err != nil {
				return out, fmt.Errorf("%s joining: %w", d.Name, err)
			}
			out[k] = append(out[k], js)
			if err := leaveSwarm(ctx, sw, d); err != nil {
				return out, fmt.Errorf("%s leaving: %w", d.Name, err)
			}
		}
	}
	return out, nil
}

// timeJoin makes d join sw, starts a container on s's network on d as soon
// as the join returns, and pings it from probe on the manager until it
// answers.
func timeJoin(ctx context.Context, sw *lab.Swarm, d *lab.DockerHost, s side, probe string) (joinSample, error) {
	var js joinSample
	t0 := time.Now()
	if err := sw.Join(ctx, d); err != nil {
		return js, err
	}
	js.joined = time.Since(t0)
	name := "join-" + s.short
	if _, err := d.Docker(ctx, "run", "-d", "--stop-timeout", "1", "--name", name, "--network", s.network, lab.Image, "sleep", "3600"); err != nil {
		return js, err
	}
	js.ran = time.Since(t0)
	ip, err := containerIP(ctx, d, name, s.network)
	if err != nil {
		return js, err
	}
	if err := pingUntil(ctx, sw.Manager, probe, ip); err != nil {
		return js, err
	}
	js.reach = time.Since(t0)
	return js, nil
}

// pingUntil pings ip from container on d until it answers, at most
// joinTimeout. The loop runs inside the container: one docker exec, so
// the time of the first answer is not blurred by an exec per attempt.
func pingUntil(ctx context.Context, d *lab.DockerHost, container, ip string) error {
	loop := fmt.Sprintf("until ping -c 1 -W 1 %s >/dev/null 2>&1; do usleep 20000; done", ip)
	_, err := d.Docker(ctx, "exec", container, "timeout", fmt.Sprint(int(joinTimeout.Seconds())), "sh", "-c", loop)
	if err != nil {
		return fmt.Errorf("%s not reachable from %s within %s: %w", ip, container, joinTimeout, err)
	}
	return nil
}

// joinReach returns the milliseconds from the start of each join until
// the new container answered, per side.
func joinReach(js [2][]joinSample) [2][]float64 {
	var out [2][]float64
	for k, samples := range js {
		for _, s := range samples {
			out[k] = append(out[k], float64(s.reach.Nanoseconds())/1e6)
		}
	}
	return out
}

// joinNote describes the join samples.
func (b *bench) joinNote(js [2][]joinSample) string {
	var each [2]string
	for k, samples := range js {
		var l []string
		for _, s := range samples {
			l = append(l, fmt.Sprintf("%s/%s/%s", fmtDuration(s.joined), fmtDuration(s.ran), fmtDuration(s.reach)))
		}
		each[k] = strings.Join(l, ", ")
	}
	return fmt.Sprintf("overlay join: %s per network, interleaved, each a fresh Docker host (weft installed beforehand, SCOPE=global) joining the two-node swarm "+
		"as a worker and leaving before the next; times from the start of `docker swarm join`: right after it returns, `docker run -d` of one container on "+
		"the network on the new node, then a probe container on the manager pings it until it answers (20 ms between attempts; the probe's ARP "+
		"retransmit time is 100 ms, not the kernel's 1 s); the row gives the medians. Per join, join returned / `docker run` returned / answered: "+
		"weft %s; built-in %s.", plural(b.p.joins, "join"), each[0], each[1])
}
