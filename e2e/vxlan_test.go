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

var (
	host2     *lab.DockerHost
	host2Once sync.Once
	host2Err  error
)

// secondHost starts a second Docker host with weft, once for the suite.
func secondHost(t *testing.T) *lab.DockerHost {
	t.Helper()
	host2Once.Do(func() {
		if host2, host2Err = theLab.AddDockerHost("h2"); host2Err == nil {
			host2Err = host2.InstallPlugin(context.Background(), pluginDir(), Plugin)
		}
	})
	if host2Err != nil {
		t.Fatalf("second Docker host: %v", host2Err)
	}
	return host2
}

// TestVXLANStandalone: without Swarm, each host creates the network with the
// same VNI and peer list and its own --ip-range (the rule that keeps
// addresses apart); containers on different hosts reach each other, and
// each reaches the outside through its own host.
func TestVXLANStandalone(t *testing.T) {
	requireLab(t)
	h2 := secondHost(t)
	net := netName(t, "n")
	peers := host.Addr.String() + "," + h2.Addr.String()
	for h, ipRange := range map[*lab.DockerHost]string{host: "10.80.0.64/26", h2: "10.80.0.128/26"} {
		docker(t, h, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "-o", "mode=vxlan", "-o", "vni=5001",
			"-o", "peers="+peers, "--subnet", "10.80.0.0/24", "--gateway", "10.80.0.1", "--ip-range", ipRange, net)
		h := h
		t.Cleanup(func() { h.Docker(context.Background(), "network", "rm", net) })
	}
	run(t, net+"-a", "--network", net)
	docker(t, h2, "run", "-d", "--stop-timeout", "1", "--name", net+"-b", "--network", net, lab.Image, "sleep", "3600")
	t.Cleanup(func() { h2.Docker(context.Background(), "rm", "-f", net+"-b") })

	ipB := containerIP(t, h2, net+"-b")
	ipA := containerIP(t, host, net+"-a")
	if !strings.HasPrefix(ipB, "10.80.0.1") || ipA == ipB {
		t.Fatalf("addresses %s (h1) and %s (h2) must come from each host's own --ip-range", ipA, ipB)
	}
	reaches(t, net+"-a", ipB)
	if _, err := h2.Docker(ctx(t), "exec", net+"-b", "ping", "-c", "1", "-W", "2", ipA); err != nil {
		t.Errorf("container on h2 cannot reach the one on h1: %v", err)
	}
	reaches(t, net+"-a", ext.Addr.String())
	if mtu, _ := sh(t, net+"-a", "cat /sys/class/net/eth0/mtu"); strings.TrimSpace(mtu) != "1450" {
		t.Errorf("container MTU %q, want 1450 (underlay 1500 minus VXLAN's 50)", mtu)
	}
	// TCP across hosts, not only ping.
	docker(t, h2, "exec", "-d", net+"-b", "sh", "-c", "mkdir -p /www && echo across-hosts > /www/index.html && httpd -p 80 -h /www")
	eventually(t, 10*time.Second, "HTTP across hosts", func() error {
		out, err := sh(t, net+"-a", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 `+ipB+` 80`)
		if !strings.Contains(out, "across-hosts") {
			return fmt.Errorf("got %q (%v)", out, err)
		}
		return nil
	})
}
