package lab

import "fmt"

// AddDockerHostBackend is AddDockerHost for a host whose dockerd runs with
// its own --firewall-backend ("iptables" or "nftables"), whatever the
// lab's Config.FirewallBackend: one suite can then show a scenario on both
// of Docker 29's backends.
func (l *Lab) AddDockerHostBackend(name, backend string) (*DockerHost, error) {
	if backend == "" {
		return nil, fmt.Errorf("lab: %s: no firewall backend: use iptables or nftables, or AddDockerHost for the lab's", name)
	}
	if err := checkFirewallBackend(backend); err != nil {
		return nil, err
	}
	addr, err := l.reserve(name, true)
	if err != nil {
		return nil, err
	}
	return l.addDockerHost(name, addr, backend)
}

// FirewallBackend is the --firewall-backend this host's dockerd gets, ""
// if none (the engine's default, iptables).
func (d *DockerHost) FirewallBackend() string {
	if d.backend != "" {
		return d.backend
	}
	return d.lab.cfg.FirewallBackend
}
