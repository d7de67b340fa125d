package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// The engine a lab runs: which dockerd and CLI, which firewall backend, and
// what the running dockerd says it is.

// findBinary is the binary to run: explicit if given, else $env, else
// preferred if it exists, else name from PATH, else preferred (whose
// absence the caller reports).
func findBinary(explicit, env, preferred, name string) string {
	if explicit != "" {
		return explicit
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	if _, err := os.Stat(preferred); err == nil {
		return preferred
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return preferred
}

// checkExecutable says why p cannot be run, or nil.
func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// checkFirewallBackend says why dockerd cannot be given the firewall
// backend b, or nil.
func checkFirewallBackend(b string) error {
	switch b {
	case "", "iptables":
	case "nftables":
		if _, err := exec.LookPath("nft"); err != nil {
			return errors.New("lab: firewall backend nftables needs nft (apt-get install nftables)")
		}
	default:
		return fmt.Errorf("lab: firewall backend %q (Config.FirewallBackend or $WEFT_LAB_FIREWALL_BACKEND): use iptables or nftables, or leave it empty for the engine's default", b)
	}
	return nil
}

// Dockerd returns the absolute path of the dockerd binary the lab runs.
func (l *Lab) Dockerd() string { return l.dockerd }

// DockerCLI returns the docker CLI the lab runs.
func (l *Lab) DockerCLI() string { return l.docker }

// FirewallBackend returns the --firewall-backend given to dockerd, "" if
// none (the engine's default).
func (l *Lab) FirewallBackend() string { return l.cfg.FirewallBackend }

// enableForwarding turns on IPv4 and IPv6 forwarding in the host, as an
// admin does (in /etc/sysctl.d, so again at every boot) before starting
// dockerd with the nftables backend, which refuses to start without it.
// With iptables dockerd turns IPv4 forwarding on by itself.
func (d *DockerHost) enableForwarding(ctx context.Context) error {
	_, err := d.Run(ctx, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
	if err != nil {
		return fmt.Errorf("lab: %s: enabling forwarding for the nftables backend: %w", d.Name, err)
	}
	return nil
}

// Engine is what a running dockerd says about itself.
type Engine struct {
	Version    string // e.g. "29.8.0", "20.10.24+dfsg1"
	APIVersion string
	// FirewallBackend is "iptables" or "nftables"; engines before 28
	// report none and have only iptables.
	FirewallBackend string
}

// Engine asks the host's dockerd for its version and firewall backend.
func (d *DockerHost) Engine(ctx context.Context) (Engine, error) {
	var e Engine
	var version struct{ Version, APIVersion string }
	var info struct {
		FirewallBackend *struct{ Driver string }
	}
	if err := d.getJSON(ctx, "/version", &version); err != nil {
		return e, err
	}
	if err := d.getJSON(ctx, "/info", &info); err != nil {
		return e, err
	}
	e.Version, e.APIVersion, e.FirewallBackend = version.Version, version.APIVersion, "iptables"
	if info.FirewallBackend != nil && info.FirewallBackend.Driver != "" {
		e.FirewallBackend = info.FirewallBackend.Driver
	}
	return e, nil
}

// getJSON decodes the answer of a GET of the Engine API path.
func (d *DockerHost) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := d.httpClient(30 * time.Second).Do(req)
	if err != nil {
		return fmt.Errorf("lab: %s: GET %s: %w", d.Name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("lab: %s: GET %s: %s: %s", d.Name, path, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("lab: %s: GET %s: %w", d.Name, path, err)
	}
	return nil
}
