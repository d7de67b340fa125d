package vm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/probe"
	"github.com/weftnet/weft/internal/testlab"
)

// Since Docker 27.3 dockerd loads br_netfilter only for its own networks
// that need it (icc=false, or no userland proxy), so a host that runs only
// weft's networks may never have it. Without it, frames bridged between two
// ports of a bridge never meet iptables: weft's ICC rule cannot drop them,
// conntrack cannot un-DNAT a reply that goes from one container straight to
// another, and WEFT-NOTRACK sees none of them. The CI kernel has
// br_netfilter built in; the VM's kernel has it as a module.

// brNetfilterLoaded reports whether the br_netfilter module is loaded.
func brNetfilterLoaded() bool {
	_, err := os.Stat("/sys/module/br_netfilter")
	return err == nil
}

// unloadBrNetfilter removes br_netfilter if an earlier scenario's dockerd
// loaded it (Docker loads it for docker_gwbridge on swarm nodes).
func unloadBrNetfilter(t *testing.T) {
	t.Helper()
	if brNetfilterLoaded() {
		if out, err := exec.Command("rmmod", "br_netfilter").CombinedOutput(); err != nil {
			t.Fatalf("rmmod br_netfilter: %v: %s", err, out)
		}
	}
	if brNetfilterLoaded() {
		t.Fatal("br_netfilter is still loaded after rmmod")
	}
}

// TestNoBrNetfilter checks weft's icc=false, published ports with hairpin,
// and WEFT-NOTRACK on a Docker host where br_netfilter is not loaded, then
// once Docker has loaded it for an icc=false network of its own bridge
// driver, as happens on users' hosts.
//
// Without the module weft needs none of it: icc=false is done by isolated
// bridge ports, and a container reaching a published port of its own
// network through the host's address is masqueraded, so the reply is
// routed back through the host; both with CAP_NET_ADMIN alone. With the
// module, everything works the same.
func TestNoBrNetfilter(t *testing.T) {
	inVM(t)
	timed(t)
	unloadBrNetfilter(t)
	h := dockerHost(t, "nb")
	if !engineAtLeast(27, 3) {
		// Docker 20.10 loads it when it makes docker0: a host running
		// this engine always has it.
		if !brNetfilterLoaded() {
			t.Fatalf("Docker %s started without loading br_netfilter; it loads it for docker0", engineVersion)
		}
		t.Logf("Docker %s loaded br_netfilter when it started: hosts running it always have it", engineVersion)
		t.Run("loaded", func(t *testing.T) { checkWithBrNetfilter(t, h) })
		return
	}
	if brNetfilterLoaded() {
		t.Fatalf("Docker %s loaded br_netfilter when it started; since 27.3 it should not", engineVersion)
	}
	ext, err := theLab.AddHost("nbext")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unloaded", func(t *testing.T) { checkWithoutBrNetfilter(t, h, ext) })
	if brNetfilterLoaded() {
		t.Fatalf("br_netfilter got loaded while only weft's networks were used on a Docker %s host", engineVersion)
	}

	// Docker's own bridge loads it for its icc=false networks (dockerd is
	// root and runs modprobe).
	docker(t, h, "network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "docker-noicc")
	docker(t, h, "network", "rm", "docker-noicc")
	if !brNetfilterLoaded() {
		t.Fatalf("Docker %s made an icc=false bridge network without loading br_netfilter", engineVersion)
	}
	t.Run("loaded", func(t *testing.T) { checkWithBrNetfilter(t, h) })
}

// checkWithoutBrNetfilter is TestNoBrNetfilter's part with the module
// unloaded.
func checkWithoutBrNetfilter(t *testing.T, h *lab.DockerHost, ext *lab.Host) {
	// icc=false: the bridge's isolated ports keep the containers apart;
	// the gateway and the LAN stay reachable.
	noicc := "nb-noicc"
	network(t, h, "-d", Plugin, "--ipam-driver", Plugin, "-o", "com.docker.network.bridge.enable_icc=false",
		"--subnet", "10.30.0.0/24", "--gateway", "10.30.0.1", noicc)
	run(t, h, noicc+"-a", "--network", noicc)
	run(t, h, noicc+"-b", "--network", noicc)
	reaches(t, h, noicc+"-a", "10.30.0.1")
	reaches(t, h, noicc+"-a", ext.Addr.String())
	cutOff(t, h, noicc+"-a", containerIP(t, h, noicc+"-b", noicc))

	// Published ports.
	net := "nb-ports"
	web, peer := net+"-web", net+"-peer"
	network(t, h, "-d", Plugin, "--ipam-driver", Plugin, "--subnet", "10.31.0.0/24", net)
	run(t, h, web, "--network", net, "-p", "8080:80", lab.Image, "sh", "-c", probe.Serving("hello-weft"))
	run(t, h, peer, "--network", net)
	hostAddr := h.Addr.String()
	eventually(t, cmdTimeout, "the published port answers the LAN", func() error {
		if got, err := hostHTTPGet(ext, hostAddr, 8080); got != "hello-weft" {
			return fmt.Errorf("%q (%v)", got, err)
		}
		return nil
	})
	if got, err := hostHTTPGet(h.Host, "127.0.0.1", 8080); got != "hello-weft" {
		t.Errorf("the Docker host on 127.0.0.1:8080: %q (%v)", got, err)
	}
	if got, err := httpGet(h, web, hostAddr, 8080); got != "hello-weft" {
		t.Errorf("the publishing container through the host's address (hairpin): %q (%v)", got, err)
	}
	// Another container of the network through the host's address: the
	// connection is masqueraded to the gateway, so web's reply is routed
	// back through the host and un-NATed (bridged straight back, it would
	// be dropped).
	if got, err := httpGet(h, peer, hostAddr, 8080); got != "hello-weft" {
		t.Errorf("another container of the network through the host's address (hairpin): %q (%v)", got, err)
	}

	// Between the network's containers: bridged, never seen by iptables,
	// so neither tracked nor counted by WEFT-NOTRACK.
	webIP, peerIP := containerIP(t, h, web, net), containerIP(t, h, peer, net)
	counted := untracked(t, h, "10.31.0.0/24")
	if got, err := httpGet(h, peer, web, 80); got != "hello-weft" {
		t.Errorf("%s to %s by name: %q (%v)", peer, web, got, err)
	}
	if c := conntrack(t, h, peerIP, webIP, false); c != "" {
		t.Errorf("the host tracks traffic between two containers of one network:\n%s", c)
	}
	if n := untracked(t, h, "10.31.0.0/24") - counted; n != 0 {
		t.Errorf("WEFT-NOTRACK counted %d packets between two containers without br_netfilter", n)
	}
}

// checkWithBrNetfilter is TestNoBrNetfilter's part with the module loaded:
// as on the CI kernel, everything works.
func checkWithBrNetfilter(t *testing.T, h *lab.DockerHost) {
	noicc := "nb-noicc-loaded"
	network(t, h, "-d", Plugin, "--ipam-driver", Plugin, "-o", "com.docker.network.bridge.enable_icc=false",
		"--subnet", "10.33.0.0/24", "--gateway", "10.33.0.1", noicc)
	run(t, h, noicc+"-a", "--network", noicc)
	run(t, h, noicc+"-b", "--network", noicc)
	cutOff(t, h, noicc+"-a", containerIP(t, h, noicc+"-b", noicc))
	reaches(t, h, noicc+"-a", "10.33.0.1")

	net := "nb-ports-loaded"
	web, peer := net+"-web", net+"-peer"
	network(t, h, "-d", Plugin, "--ipam-driver", Plugin, "--subnet", "10.34.0.0/24", net)
	run(t, h, web, "--network", net, "-p", "8082:80", lab.Image, "sh", "-c", probe.Serving("hello-weft"))
	run(t, h, peer, "--network", net)
	hostAddr := h.Addr.String()
	for _, c := range []string{web, peer} {
		var got string
		var err error
		eventually(t, cmdTimeout, c+" reaches the published port through the host's address", func() error {
			if got, err = httpGet(h, c, hostAddr, 8082); got != "hello-weft" {
				return fmt.Errorf("%q (%v)", got, err)
			}
			return nil
		})
	}
	// WEFT-NOTRACK: a container's connection to another of its network is
	// not tracked (the published container's replies are, by design: they
	// may belong to a hairpin connection), the hairpin connection through
	// the host is.
	webIP, peerIP := containerIP(t, h, web, net), containerIP(t, h, peer, net)
	before := untracked(t, h, "10.34.0.0/24")
	if got, err := httpGet(h, peer, web, 80); got != "hello-weft" {
		t.Errorf("%s to %s by name: %q (%v)", peer, web, got, err)
	}
	if c := conntrack(t, h, peerIP, webIP, true); c != "" {
		t.Errorf("the host tracks a connection between two containers of one network:\n%s", c)
	}
	if n := untracked(t, h, "10.34.0.0/24") - before; n < 2 {
		t.Errorf("WEFT-NOTRACK counted %d packets of a connection between two containers, want its packets", n)
	}
	if c := conntrack(t, h, peerIP, hostAddr, true); c == "" {
		t.Errorf("no conntrack entry for the hairpin connection from %s to %s:8082: the checks above prove nothing", peerIP, hostAddr)
	}
}

// conntrack returns the Docker host's conntrack entries (its network
// namespace's /proc/net/nf_conntrack) of connections from src to dst, or,
// unless original, from dst to src.
func conntrack(t *testing.T, h *lab.DockerHost, src, dst string, original bool) string {
	t.Helper()
	var match []string
	for _, l := range strings.Split(mustRun(t, h.Host, "cat", "/proc/net/nf_conntrack"), "\n") {
		first, _, _ := strings.Cut(l, " dport=") // the original tuple ends with its dport
		if strings.Contains(first, "src="+src+" dst="+dst+" ") || !original && strings.Contains(first, "src="+dst+" dst="+src+" ") {
			match = append(match, l)
		}
	}
	return strings.Join(match, "\n")
}

// untracked sums the packet counters of the Docker host's WEFT-NOTRACK
// rules that exempt subnet's own traffic from conntrack.
func untracked(t *testing.T, h *lab.DockerHost, subnet string) int {
	t.Helper()
	out := mustRun(t, h.Host, "iptables", "-w", "-t", "raw", "-S", "WEFT-NOTRACK", "-v")
	n, err := testlab.CountedPackets(out, func(rule string) bool {
		return strings.Contains(rule, "-s "+subnet+" -d "+subnet+" ") && strings.HasSuffix(rule, "--notrack")
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
