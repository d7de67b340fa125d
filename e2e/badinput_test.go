package e2e

import (
	"strings"
	"testing"

	"github.com/weftnet/weft/esp"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testlab"
)

// TestBadInput: every invalid option gives an error that names the option
// and what is accepted, as `docker network create` prints it, and leaves no
// link, rule or address allocation behind.
func TestBadInput(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"icc typo", []string{"-o", "com.docker.network.bridge.enable_icc=flase"},
			[]string{`invalid value "flase" for option com.docker.network.bridge.enable_icc`, "true or false"}},
		{"unknown option", []string{"-o", "colour=blue"},
			[]string{`unknown option "colour"`, "accepted options are", "com.docker.network.bridge.name"}},
		{"bridge name too long", []string{"-o", "com.docker.network.bridge.name=this-name-is-too-long"},
			[]string{"com.docker.network.bridge.name", "at most 15"}},
		{"bridge name taken by another link", []string{"-o", "com.docker.network.bridge.name=lab0"},
			[]string{`"lab0"`, "com.docker.network.bridge.name", "already exists"}},
		{"mtu out of range", []string{"-o", "com.docker.network.driver.mtu=99999"},
			[]string{"com.docker.network.driver.mtu", "from 68 to 65535"}},
		{"gateway outside subnet", []string{"--gateway", "10.99.1.1"},
			[]string{"10.99.1.1", "outside", "10.99.0.0/24"}},
		{"host binding not an address", []string{"-o", "com.docker.network.bridge.host_binding_ipv4=localhost"},
			[]string{"com.docker.network.bridge.host_binding_ipv4", "IPv4 address"}},
		{"unknown mode", []string{"-o", "mode=overlay"},
			[]string{`option mode`, "accepted modes"}},
		{"ip range outside subnet", []string{"--ip-range", "10.98.0.0/24"},
			[]string{"--ip-range", "10.98.0.0/24", "10.99.0.0/24"}},
		{"subnet with host bits", []string{"--subnet", "10.98.0.5/24"},
			[]string{"--subnet", "10.98.0.5/24", "10.98.0.0/24"}},
		{"vxlan hosts sharing one range", []string{"-o", "mode=vxlan", "-o", "peers=" + labPeer},
			[]string{"mode=vxlan without a swarm", "own --ip-range inside --subnet 10.99.0.0/24", "10.99.0.0/26"}},
		{"encrypted without a key", append(vxlanArgs, "-o", "encrypted"),
			[]string{"option encrypted without a swarm needs -o encryption_key=KEY", "64 hex digits"}},
		{"encryption key too short", append(vxlanArgs, "-o", "encrypted", "-o", "encryption_key=0123"),
			[]string{"option encryption_key", "64 hex digits"}},
		{"encryption key without encrypted", append(vxlanArgs, "-o", "encryption_key="+strings.Repeat("ab", 32)),
			[]string{"option encryption_key is only used with -o encrypted"}},
	}
	if !kernelHasESP(t) {
		// Never clear text where the user asked for encryption.
		tests = append(tests, struct {
			name string
			args []string
			want []string
		}{"encrypted on a kernel without ESP", append(vxlanArgs, "-o", "encrypted", "-o", "encryption_key="+strings.Repeat("ab", 32)),
			[]string{"option encrypted", "kernel cannot do IPsec ESP", "weft will not send this network's traffic in clear text"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"network", "create", "-d", Plugin, "--ipam-driver", Plugin}
			if !hasFlag(tt.args, "--subnet") {
				args = append(args, "--subnet", "10.99.0.0/24")
			}
			args = append(append(args, tt.args...), "bad-"+strings.ReplaceAll(tt.name, " ", "-"))
			msg := dockerFails(t, host, args...)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if after := hostState(t); after != before {
		t.Errorf("failed creates left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// No leaked pool: the subnet every failed attempt asked for is still free.
	network(t, netName(t, "ok"), "--subnet", "10.99.0.0/24")
}

// labPeer is a lab address no host holds: a VXLAN peer the route to which
// exists, for options checks.
const labPeer = "198.18.0.250"

// vxlanArgs is a valid standalone vxlan network on h1, for adding one bad
// option to.
var vxlanArgs = []string{"-o", "mode=vxlan", "-o", "peers=" + labPeer, "--ip-range", "10.99.0.64/26"}

// kernelHasESP tells whether this machine's kernel can encrypt, probed in a
// throwaway namespace.
func kernelHasESP(t *testing.T) bool {
	return esp.Probe(testlab.NewNS(t).NL) == nil
}

// TestExhaustedPool: a full subnet gives a clear error at `docker run`,
// and freeing an address makes it usable again.
func TestExhaustedPool(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.97.0.0/30") // .1 gateway, .2 the only container address
	run(t, net+"-a", "--network", net)
	msg := dockerFails(t, host, "run", "--rm", "--network", net, lab.Image, "true")
	if !strings.Contains(msg, "no free address") || !strings.Contains(msg, "10.97.0.0/30") {
		t.Errorf("exhaustion error %q does not say the pool 10.97.0.0/30 is full", msg)
	}
	docker(t, host, "rm", "-f", net+"-a")
	docker(t, host, "run", "--rm", "--network", net, lab.Image, "true")
}

// TestBadRunInput: wrong --ip values fail clearly at `docker run`.
func TestBadRunInput(t *testing.T) {
	requireLab(t)
	net := netName(t, "n")
	network(t, net, "--subnet", "10.96.0.0/24")
	run(t, net+"-a", "--network", net, "--ip", "10.96.0.10")
	msg := dockerFails(t, host, "run", "--rm", "--network", net, "--ip", "10.96.0.10", lab.Image, "true")
	if !strings.Contains(msg, "10.96.0.10") || !strings.Contains(msg, "in use") {
		t.Errorf("duplicate --ip: error %q does not say the address is in use", msg)
	}
	msg = dockerFails(t, host, "run", "--rm", "--network", net, "--ip", "10.95.0.10", lab.Image, "true")
	if !strings.Contains(msg, "10.95.0.10") {
		t.Errorf("--ip outside the subnet: error %q does not name the address", msg)
	}
}

// TestNothingLeaks: a network with a container and a published port, once
// removed, leaves the host exactly as it was.
func TestNothingLeaks(t *testing.T) {
	requireLab(t)
	before := hostState(t)
	net := netName(t, "n")
	docker(t, host, "network", "create", "-d", Plugin, "--ipam-driver", Plugin, "--subnet", "10.94.0.0/24", net)
	docker(t, host, "run", "-d", "--name", net+"-a", "--network", net, "-p", "8090:80", lab.Image, "sleep", "3600")
	if during := hostState(t); during == before {
		t.Fatal("a network with a container changed nothing on the host: hostState sees nothing")
	}
	docker(t, host, "rm", "-f", net+"-a")
	docker(t, host, "network", "rm", net)
	if after := hostState(t); after != before {
		t.Errorf("removal left something behind:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag {
			return true
		}
	}
	return false
}
