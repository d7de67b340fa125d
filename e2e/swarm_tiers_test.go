package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
)

// TestSwarmMultiTier: the README's public, application and data tiers as
// swarm services on three weft vxlan networks, public, app (internal) and
// data (internal): web (global, on public and app), api (on s2, on app and
// data) and db (on s3, on data). web reaches api by name and api reaches db
// by name, across hosts; web reaches db neither by name nor by address,
// also on s3 where db's network is on the same host; api and db reach
// nothing outside while web reaches a machine on the LAN.
func TestSwarmMultiTier(t *testing.T) {
	requireLab(t)
	s := theSwarm(t)
	s.network(t, "public", "-o", "mode=vxlan", "--subnet", "10.87.0.0/24")
	s.network(t, "app", "-o", "mode=vxlan", "--internal", "--subnet", "10.88.0.0/24")
	s.network(t, "data", "-o", "mode=vxlan", "--internal", "--subnet", "10.89.0.0/24")
	s1, s2, s3 := s.nodes[0], s.nodes[1], s.nodes[2]
	tier := func(name string, placement []string, nets ...string) {
		args := placement
		for _, n := range nets {
			args = append(args, "--network", n)
		}
		s.service(t, name, append(args, lab.Image, "sh", "-c", probe.Serving(name))...)
	}
	tier("web", []string{"--mode", "global"}, "public", "app")
	tier("api", []string{"--constraint", "node.hostname==" + s2.Name}, "app", "data")
	tier("db", []string{"--constraint", "node.hostname==" + s3.Name}, "data")
	web := s.tasks(t, "web")
	api := s.tasksOn(t, "api", []*lab.DockerHost{s2})[s2]
	db := s.tasksOn(t, "db", []*lab.DockerHost{s3})[s3]
	dbIP := containerIP(t, s3, db)

	// Each tier reaches the next by name, from another host.
	eventually(t, 30*time.Second, "web on s1 fetches api's page by name", func() error {
		return wantBody(s1, web[s1], "api", "api")
	})
	eventually(t, 30*time.Second, "api on s2 fetches db's page by name", func() error {
		return wantBody(s2, api, "db", "db")
	})
	// Docker's DNS answers per network, whatever the host: web resolves
	// api, on its app network, and not db (in the lab, an unknown name
	// times out rather than failing at once, hence the control).
	if _, err := s3.Docker(ctx(t), "exec", web[s3], "nslookup", "api"); err != nil {
		t.Errorf("web on s3 does not resolve api, on its own app network: %v", err)
	}
	if out, err := s3.Docker(ctx(t), "exec", web[s3], "nslookup", "db"); err == nil ||
		!strings.Contains(out, "can't find db") && !strings.Contains(out, "no servers could be reached") {
		t.Errorf("web looking up db, which is on a network web is not on: %q (%v), want no answer", out, err)
	}
	// By address, db answers api and web's pings cross hosts, yet web
	// gets no answer from db, on s3 either, where db's network is local.
	// db has no route out: whether it could answer web hangs on the
	// host's masquerading, so count the echo requests arriving at db too.
	apiIP := docker(t, s2, "inspect", "-f", `{{(index .NetworkSettings.Networks "app").IPAddress}}`, api)
	if n := echoesArriving(t, s3, db, func() { reachesOn(t, s2, api, dbIP) }); n != 1 {
		t.Errorf("db received %d echo requests from api's ping, want 1", n)
	}
	for _, h := range []*lab.DockerHost{s1, s3} {
		reachesOn(t, h, web[h], apiIP)
		if n := echoesArriving(t, s3, db, func() { cutOff(t, h, web[h], dbIP) }); n != 0 {
			t.Errorf("db received %d echo requests from web on %s", n, h.Name)
		}
	}
	// The same over TCP, counting the segments arriving at db.
	if n := arriving(t, s3, db, "Tcp", "InSegs", func() {
		if err := wantBody(s2, api, dbIP, "db"); err != nil {
			t.Errorf("api cannot fetch db's page by address: %v", err)
		}
	}); n == 0 {
		t.Errorf("db counted no TCP segment of api's request")
	}
	if n := arriving(t, s3, db, "Tcp", "InSegs", func() {
		if body, err := httpGet(s3, web[s3], dbIP); err == nil || !strings.Contains(err.Error(), "nc: timed out") {
			t.Errorf("web on s3 fetching db's page at %s: %q (%v), want no answer (timed out)", dbIP, body, err)
		}
	}); n != 0 {
		t.Errorf("db received %d TCP segments of web's request", n)
	}
	// web reaches a machine on the LAN; api and db, on internal networks
	// only, get no route out from weft.
	extAddr := ext.Addr.String()
	for _, h := range s.nodes {
		reachesOn(t, h, web[h], extAddr)
	}
	cutOff(t, s2, api, extAddr, probe.NoRoute)
	cutOff(t, s3, db, extAddr, probe.NoRoute)
}

// wantBody fetches target's page from container on h and wants body.
func wantBody(h *lab.DockerHost, container, target, body string) error {
	got, err := httpGet(h, container, target)
	if got != body {
		return fmt.Errorf("HTTP GET %s from %s: %q (%v)", target, h.Name, got, err)
	}
	return nil
}
