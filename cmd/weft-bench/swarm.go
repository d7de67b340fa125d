package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/weftnet/weft/internal/lab"
)

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

// leaveSwarm takes worker d out of s (its containers on swarm networks
// first) and removes it from the manager's node list, so the next node
// joins a swarm like the one before.
func leaveSwarm(ctx context.Context, s *lab.Swarm, d *lab.DockerHost) error {
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
	_, err = s.Manager.Docker(ctx, "node", "rm", "--force", d.Name)
	return err
}
