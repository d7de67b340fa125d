package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
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
		s.service(t, name, append(args, lab.Image, "sh", "-c", httpdServing(name))...)
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
	// Docker's DNS answers per network, whatever the host: one lookup.
	if _, err := s3.Docker(ctx(t), "exec", web[s3], "nslookup", "db"); err == nil {
		t.Errorf("web resolves db, which is on a network web is not on")
	}
	for _, h := range []*lab.DockerHost{s1, s3} {
		if _, err := h.Docker(ctx(t), "exec", web[h], "ping", "-c", "1", "-W", "1", dbIP); err == nil {
			t.Errorf("web on %s can ping db at %s", h.Name, dbIP)
		}
	}
	if body, err := httpGet(s3, web[s3], dbIP); err == nil || body != "" {
		t.Errorf("web on s3 fetched db's page at %s: %q", dbIP, body)
	}
	extAddr := ext.Addr.String()
	for _, h := range s.nodes {
		if _, err := h.Docker(ctx(t), "exec", web[h], "ping", "-c", "1", "-W", "2", extAddr); err != nil {
			t.Errorf("web on %s (public network) cannot reach %s on the LAN: %v", h.Name, extAddr, err)
		}
	}
	for _, c := range []struct {
		h    *lab.DockerHost
		task string
	}{{s2, api}, {s3, db}} {
		if _, err := c.h.Docker(ctx(t), "exec", c.task, "ping", "-c", "1", "-W", "1", extAddr); err == nil {
			t.Errorf("%s's task on internal networks reaches %s outside", c.h.Name, extAddr)
		}
	}
}

// wantBody fetches target's page from container on h and wants body.
func wantBody(h *lab.DockerHost, container, target, body string) error {
	got, err := httpGet(h, container, target)
	if got != body {
		return fmt.Errorf("HTTP GET %s from %s: %q (%v)", target, h.Name, got, err)
	}
	return nil
}
