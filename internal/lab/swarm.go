package lab

import (
	"context"
	"time"
)

// Swarm is a Docker swarm of lab hosts.
type Swarm struct {
	Manager *DockerHost
	token   string // joins a worker
}

// InitSwarm makes manager the manager of a new swarm, advertising its lab
// address.
func InitSwarm(ctx context.Context, manager *DockerHost) (*Swarm, error) {
	if _, err := manager.Docker(ctx, "swarm", "init", "--advertise-addr", manager.Addr.String()); err != nil {
		return nil, err
	}
	token, err := manager.Docker(ctx, "swarm", "join-token", "-q", "worker")
	if err != nil {
		return nil, err
	}
	return &Swarm{Manager: manager, token: token}, nil
}

// Join makes d a worker, advertising its lab address; it returns once
// `docker swarm join` has.
func (s *Swarm) Join(ctx context.Context, d *DockerHost) error {
	_, err := d.Docker(ctx, "swarm", "join", "--advertise-addr", d.Addr.String(), "--token", s.token, s.Manager.Addr.String()+":2377")
	return err
}

// RemoveNetwork removes a swarm network on manager, trying again until ctx
// ends while it fails: the tasks of a removed service leave their networks
// a moment after `docker service rm` returns. It returns the last error.
func RemoveNetwork(ctx context.Context, manager *DockerHost, name string) error {
	for {
		_, err := manager.Docker(ctx, "network", "rm", name)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
