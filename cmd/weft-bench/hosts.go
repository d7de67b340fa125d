package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/weftnet/weft/internal/lab"
)

// pluginName is the managed plugin's name on the benchmark Docker host.
const pluginName = "weft:latest"

// side is one half of a weft versus built-in comparison: a network on the
// benchmark Docker host.
type side struct {
	label   string // "weft" or "built-in"
	short   string // for container names
	network string
	create  []string // docker network create arguments (before the name)
}

// bridgeSides are the networks compared by the start and tcp benchmarks:
// the same host, image and kind of subnet; only the driver (and IPAM)
// differs. The macvlan benchmark compares macvlanSides.
var bridgeSides = [2]side{
	{label: "weft", short: "weft", network: "bench-weft",
		create: []string{"-d", pluginName, "--ipam-driver", pluginName, "--subnet", "10.92.0.0/24"}},
	{label: "built-in", short: "builtin", network: "bench-builtin",
		create: []string{"--subnet", "10.91.0.0/24"}},
}

// order returns the order in which run i visits n paths: rotated by one
// each run, so no path always goes first (for two: 0 1, 1 0, 0 1, ...).
func order(i, n int) []int {
	out := make([]int, n)
	for k := range out {
		out[k] = (i + k) % n
	}
	return out
}

// lazyHosts are the lab hosts, each created on first use.
type lazyHosts struct {
	dockerOnce sync.Once
	docker     *lab.DockerHost
	dockerErr  error

	protoOnce sync.Once
	proto     *lab.Host
	protoErr  error
}

// protoHost returns the plain lab host (no Docker) in which weft runs
// directly for the protocol benchmarks, creating it on first use.
func (b *bench) protoHost() (*lab.Host, error) {
	b.hosts.protoOnce.Do(func() { b.hosts.proto, b.hosts.protoErr = b.lab.AddHost("proto") })
	return b.hosts.proto, b.hosts.protoErr
}

// dockerHost returns the benchmark Docker host, creating it on first use:
// a private dockerd in a lab namespace with the test image, weft installed
// as a managed plugin from the plugin directory, and both bridgeSides
// networks.
func (b *bench) dockerHost(ctx context.Context) (*lab.DockerHost, error) {
	b.hosts.dockerOnce.Do(func() {
		b.logf("docker host: starting dockerd and installing %s", pluginName)
		d, err := b.lab.AddDockerHost("bench")
		if err != nil {
			b.hosts.dockerErr = err
			return
		}
		if err := d.InstallPlugin(ctx, b.pluginDir, pluginName); err != nil {
			b.hosts.dockerErr = fmt.Errorf("install plugin: %w", err)
			return
		}
		if err := createNetworks(ctx, d, bridgeSides); err != nil {
			b.hosts.dockerErr = err
			return
		}
		b.hosts.docker = d
	})
	return b.hosts.docker, b.hosts.dockerErr
}

// createNetworks creates the two networks of sides.
func createNetworks(ctx context.Context, d *lab.DockerHost, sides [2]side) error {
	for _, s := range sides {
		args := append(append([]string{"network", "create"}, s.create...), s.network)
		if _, err := d.Docker(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// containerIP returns a container's address on network.
func containerIP(ctx context.Context, d *lab.DockerHost, container, network string) (string, error) {
	out, err := d.Docker(ctx, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), container)
	if err != nil {
		return "", err
	}
	if out == "" || strings.Contains(out, "no value") {
		return "", fmt.Errorf("container %s has no address on %s", container, network)
	}
	return out, nil
}
