package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/weftnet/weft/internal/lab"
)

// swarm is a Docker swarm of lab hosts, each with weft installed as on
// users' swarm nodes: SCOPE=global, so weft networks are swarm-scoped and
// a vxlan network without peers learns them from the swarm.
type swarm struct {
	manager *lab.DockerHost
	token   string // worker join token
}

// newSwarmHost starts a Docker host with weft installed for a swarm.
func (b *bench) newSwarmHost(ctx context.Context, name string) (*lab.DockerHost, error) {
	d, err := b.lab.AddDockerHost(name)
	if err != nil {
		return nil, err
	}
	if err := d.InstallPlugin(ctx, b.pluginDir, pluginName, "SCOPE=global"); err != nil {
		return nil, fmt.Errorf("%s: install plugin: %w", name, err)
	}
	return d, nil
}

// initSwarm makes manager the manager of a new swarm, advertising its lab
// address.
func initSwarm(ctx context.Context, manager *lab.DockerHost) (*swarm, error) {
	if _, err := manager.Docker(ctx, "swarm", "init", "--advertise-addr", manager.Addr.String()); err != nil {
		return nil, err
	}
	token, err := manager.Docker(ctx, "swarm", "join-token", "-q", "worker")
	if err != nil {
		return nil, err
	}
	return &swarm{manager: manager, token: token}, nil
}

// join makes d a worker; it returns once `docker swarm join` has.
func (s *swarm) join(ctx context.Context, d *lab.DockerHost) error {
	_, err := d.Docker(ctx, "swarm", "join", "--advertise-addr", d.Addr.String(),
		"--token", s.token, s.manager.Addr.String()+":2377")
	return err
}

// leave takes worker d out of the swarm (its containers on swarm networks
// first) and removes it from the manager's node list, so the next node
// joins a swarm like the one before.
func (s *swarm) leave(ctx context.Context, d *lab.DockerHost) error {
	out, err := d.Docker(ctx, "ps", "-aq")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := d.Docker(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
			return err
		}
	}
	if _, err := d.Docker(ctx, "swarm", "leave", "--force"); err != nil {
		return err
	}
	// --force: without it the manager refuses until it has marked the
	// node down, some 15 s later.
	_, err = s.manager.Docker(ctx, "node", "rm", "--force", d.Name)
	return err
}
