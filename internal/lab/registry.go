package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RegistryBinary is the registry server the lab runs: Debian's
// docker-registry package (github.com/docker/distribution).
const RegistryBinary = "docker-registry"

// Registry is a container registry served over plain HTTP from a lab host.
// Docker hosts use it once their dockerd trusts it, e.g. with
// Config.DockerdArgs "--insecure-registry=" + the lab subnet.
type Registry struct {
	Addr string // host:port, e.g. "198.18.0.101:5000": the prefix of image and plugin references
	proc *Proc
}

// StartRegistry starts a registry in h listening on h.Addr:port, storing
// its blobs in the lab directory, and waits until it answers. It lives
// until Stop, a reboot of h or the lab's Close.
func (h *Host) StartRegistry(ctx context.Context, port int) (*Registry, error) {
	bin, err := exec.LookPath(RegistryBinary)
	if err != nil {
		return nil, fmt.Errorf("lab: %s not found (apt-get install docker-registry): %w", RegistryBinary, err)
	}
	addr := netip.AddrPortFrom(h.Addr, uint16(port)).String()
	dir := filepath.Join(h.dir, "registry-"+strconv.Itoa(port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		return nil, err
	}
	p, err := h.Start(bin, "serve", config)
	if err != nil {
		return nil, err
	}
	r := &Registry{Addr: addr, proc: p}
	start := time.Now()
	for {
		// The registry's API root answers 200 with "{}" once it serves.
		out, _ := h.Run(ctx, "/bin/sh", "-c",
			fmt.Sprintf(`printf 'GET /v2/ HTTP/1.0\r\n\r\n' | %s nc -w 2 %s %d`, h.lab.cfg.Busybox, h.Addr, port))
		if strings.HasPrefix(out, "HTTP/1.") && strings.Contains(strings.SplitN(out, "\n", 2)[0], " 200 ") {
			h.lab.logf("lab: %s: registry at %s ready in %s", h.Name, addr, time.Since(start).Round(time.Millisecond))
			return r, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("lab: %s: registry exited: %v\n%s", h.Name, p.Wait(ctx), p.Output())
		case <-ctx.Done():
			_ = p.Stop()
			return nil, fmt.Errorf("lab: %s: waiting for the registry at %s: %w\n%s", h.Name, addr, ctx.Err(), p.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the registry.
func (r *Registry) Stop() error { return r.proc.Stop() }

// Output returns the registry's log so far.
func (r *Registry) Output() string { return r.proc.Output() }
