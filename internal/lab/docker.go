package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DockerHost is a Host running its own dockerd (with its own managed
// containerd) in the host's namespaces.
//
// dockerd runs with --data-root DataRoot (kept across reboots),
// --exec-root /run/docker and --pidfile /run/docker.pid (in the host's
// private /run, so wiped by a reboot), -H unix://Socket, and
// --cgroup-parent /weft-lab-NAME; everything else is Docker's default
// (iptables on, so inside the host the FORWARD policy is DROP and
// bridge-nf-call-iptables is 1, as on users' hosts).
type DockerHost struct {
	*Host
	Socket   string // dockerd API socket (machine path)
	DataRoot string // dockerd --data-root (machine path)
	LogPath  string // dockerd log (stdout and stderr of every start, appended)

	backend string // --firewall-backend for this host alone; "": the lab's

	dmu  sync.Mutex
	dcmd *exec.Cmd
	dend chan struct{}
}

// AddDockerHost creates a host (address .11, .12, ... in call order), starts
// its dockerd, waits until it answers and imports the test image.
func (l *Lab) AddDockerHost(name string) (*DockerHost, error) {
	addr, err := l.reserve(name, true)
	if err != nil {
		return nil, err
	}
	return l.addDockerHost(name, addr, "")
}

func (l *Lab) addDockerHost(name string, addr netip.Addr, backend string) (*DockerHost, error) {
	start := time.Now()
	if err := checkExecutable(l.dockerd); err != nil {
		l.unreserve(name)
		return nil, fmt.Errorf("lab: dockerd (Config.Dockerd or $WEFT_LAB_DOCKERD): %w", err)
	}
	h := l.newHost(name, addr, true)
	d := &DockerHost{
		Host:     h,
		Socket:   filepath.Join(h.dir, "docker.sock"),
		DataRoot: filepath.Join(h.dir, "data"),
		LogPath:  filepath.Join(h.dir, "dockerd.log"),
		backend:  backend,
	}
	h.moreDone = func() []<-chan struct{} {
		d.dmu.Lock()
		defer d.dmu.Unlock()
		if d.dend == nil {
			return nil
		}
		return []<-chan struct{}{d.dend}
	}
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	fail := func(err error) (*DockerHost, error) {
		_ = h.destroy()
		l.unreserve(name)
		return nil, err
	}
	if err := h.create(); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StartTimeout+time.Minute)
	defer cancel()
	if err := d.startDockerd(ctx); err != nil {
		return fail(err)
	}
	ready := time.Now()
	img, err := l.image()
	if err != nil {
		return fail(err)
	}
	if _, err := d.Docker(ctx, "import", "-c", `CMD ["sh"]`, img, Image); err != nil {
		return fail(fmt.Errorf("lab: %s: importing %s: %w", name, Image, err))
	}
	l.mu.Lock()
	l.dockerHosts[name] = d
	l.mu.Unlock()
	l.logf("lab: docker host %s (%s) ready in %s (dockerd %s)", name, addr,
		time.Since(start).Round(time.Millisecond), ready.Sub(start).Round(time.Millisecond))
	return d, nil
}

// StateDir is the machine path of this host's /var/lib/weft (kept across
// reboots).
func (d *DockerHost) StateDir() string { return d.stateDir() }

// PluginStateDir is the machine path of the managed plugin name's propagated
// mount (<data-root>/plugins/<id>/propagated-mount), where weft keeps its
// state database: it lives as long as the plugin is installed, through
// disable, enable, upgrade, dockerd restarts and reboots.
func (d *DockerHost) PluginStateDir(ctx context.Context, name string) (string, error) {
	id, _, err := d.pluginInfo(ctx, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.DataRoot, "plugins", id, "propagated-mount"), nil
}

// dockerdEnv is the environment of dockerd: the caller's, without Docker
// client settings and with a PATH that finds the engine's helpers
// (containerd, runc, docker-proxy, docker-init) next to dockerd first.
func (l *Lab) dockerdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	path := filepath.Dir(l.dockerd) + ":/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
	return append(env, "PATH="+path)
}

// cliEnv is the environment of the docker CLI for this host.
func (d *DockerHost) cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"DOCKER_HOST=unix://"+d.Socket,
		"DOCKER_CONFIG="+filepath.Join(d.lab.dir, "docker-config"))
}

// Env returns DOCKER_HOST and DOCKER_CONFIG settings for a docker CLI (or
// any Docker client) talking to this host's daemon.
func (d *DockerHost) Env() []string {
	return []string{
		"DOCKER_HOST=unix://" + d.Socket,
		"DOCKER_CONFIG=" + filepath.Join(d.lab.dir, "docker-config"),
	}
}

const dockerdWrapper = `for f in $WEFT_LAB_CGROUPS; do echo $$ > "$f"; done
exec "$@"`

func (d *DockerHost) startDockerd(ctx context.Context) error {
	l := d.lab
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.dcmd != nil {
		select {
		case <-d.dend:
		default:
			return fmt.Errorf("lab: %s: dockerd already running", d.Name)
		}
	}
	cgroups, err := ensureCgroup(d.cgroupName() + "/daemon")
	if err != nil {
		return fmt.Errorf("lab: %s: cgroup: %w", d.Name, err)
	}
	pre, err := d.nsenterArgs()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(d.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	args := []string{
		"--data-root", d.DataRoot,
		"--exec-root", "/run/docker",
		"--pidfile", "/run/docker.pid",
		"-H", "unix://" + d.Socket,
		"--cgroup-parent", "/" + d.cgroupName(),
	}
	if b := d.FirewallBackend(); b != "" {
		args = append(args, "--firewall-backend="+b)
	}
	if d.FirewallBackend() == "nftables" {
		if err := d.enableForwarding(ctx); err != nil {
			return err
		}
	}
	args = append(args, l.cfg.DockerdArgs...)
	fmt.Fprintf(logf, "===== lab: %s starting %s %s\n", time.Now().Format(time.RFC3339Nano), l.dockerd, strings.Join(args, " "))
	cmdArgs := slices.Concat(pre, []string{"/bin/sh", "-c", dockerdWrapper, "dockerd-wrapper", l.dockerd}, args)
	cmd := exec.Command("nsenter", cmdArgs...)
	cmd.Env = append(l.dockerdEnv(), "WEFT_LAB_CGROUPS="+strings.Join(cgroups, " "))
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return err
	}
	end := make(chan struct{})
	go func() { _ = cmd.Wait(); close(end) }()
	d.dcmd, d.dend = cmd, end

	start := time.Now()
	deadline := time.Now().Add(l.cfg.StartTimeout)
	client := d.httpClient(2 * time.Second)
	for {
		if d.ping(ctx, client) == nil {
			l.logf("lab: %s: dockerd (pid %d) up in %s", d.Name, cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-end:
			return fmt.Errorf("lab: %s: dockerd exited during startup (%v); log tail:\n%s", d.Name, cmd.ProcessState, d.Logs())
		case <-ctx.Done():
			return fmt.Errorf("lab: %s: waiting for dockerd: %w; log tail:\n%s", d.Name, ctx.Err(), d.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s: dockerd did not answer within %s; log tail:\n%s", d.Name, l.cfg.StartTimeout, d.Logs())
		}
	}
}

// httpClient returns an HTTP client talking to this host's Docker API
// socket (use any host name in URLs, e.g. http://docker/_ping).
func (d *DockerHost) httpClient(timeout time.Duration) *http.Client {
	sock := d.Socket
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				return dl.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

// HTTPClient returns an HTTP client for this host's Docker Engine API
// (requests go to the API socket whatever the URL's host, e.g.
// "http://docker/v1.41/info").
func (d *DockerHost) HTTPClient() *http.Client { return d.httpClient(0) }

func (d *DockerHost) ping(ctx context.Context, c *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// DockerdPID returns the pid of the running dockerd, 0 if none.
func (d *DockerHost) DockerdPID() int {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.dcmd == nil {
		return 0
	}
	select {
	case <-d.dend:
		return 0
	default:
		return d.dcmd.Process.Pid
	}
}

// stopDockerd stops dockerd: SIGTERM (unless hard), up to timeout for it
// to exit, then SIGKILL.
func (d *DockerHost) stopDockerd(timeout time.Duration, hard bool) error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.dcmd == nil {
		return nil
	}
	cmd, end := d.dcmd, d.dend
	d.dcmd, d.dend = nil, nil
	select {
	case <-end:
		return nil
	default:
	}
	start := time.Now()
	if !hard {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-end:
			d.lab.logf("lab: %s: dockerd stopped in %s", d.Name, time.Since(start).Round(time.Millisecond))
			return nil
		case <-time.After(timeout):
			d.lab.logf("lab: %s: dockerd did not stop within %s, killing it", d.Name, timeout)
		}
	}
	_ = cmd.Process.Kill()
	select {
	case <-end:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("lab: %s: dockerd (pid %d) does not die", d.Name, cmd.Process.Pid)
	}
}

// RestartDockerd stops dockerd (SIGTERM; Docker then stops the running
// containers, each with its stop timeout, and its plugins) and starts it
// again with the same configuration, waiting until it answers.
func (d *DockerHost) RestartDockerd(ctx context.Context) error {
	if err := d.stopDockerd(d.lab.cfg.StopTimeout, false); err != nil {
		return err
	}
	return d.startDockerd(ctx)
}

// Reboot simulates a host reboot: dockerd is stopped gracefully (as a
// shutdown would), every remaining process of the host is killed, the
// network namespace is thrown away (links, addresses, routes, iptables,
// sysctls) and made again with the same lab0 address, the private /run
// (exec-root, plugin sockets, containerd state) starts empty, and dockerd is
// started again. DataRoot and StateDir are kept. Background processes
// started with Start are gone.
func (d *DockerHost) Reboot(ctx context.Context) error { return d.reboot(ctx, false) }

// HardReboot is Reboot without the graceful dockerd stop: everything is
// killed at once, like a power loss.
func (d *DockerHost) HardReboot(ctx context.Context) error { return d.reboot(ctx, true) }

func (d *DockerHost) reboot(ctx context.Context, hard bool) error {
	start := time.Now()
	if err := d.stopDockerd(d.lab.cfg.StopTimeout, hard); err != nil {
		return err
	}
	if err := d.destroy(); err != nil {
		return fmt.Errorf("lab: %s: reboot: %w", d.Name, err)
	}
	if err := d.create(); err != nil {
		return fmt.Errorf("lab: %s: reboot: %w", d.Name, err)
	}
	if err := d.startDockerd(ctx); err != nil {
		return err
	}
	d.lab.logf("lab: %s rebooted in %s", d.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// DockerError is the error of a failed docker CLI command. Stderr is the
// CLI's standard error, verbatim.
type DockerError struct {
	Host     string
	Args     []string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *DockerError) Error() string {
	return fmt.Sprintf("%s: docker %s: %v: %s", e.Host, strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

func (e *DockerError) Unwrap() error { return e.Err }

// DockerCommand returns an unstarted docker CLI command for this host.
func (d *DockerHost) DockerCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.lab.docker, args...)
	cmd.Env = d.cliEnv()
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Docker runs the docker CLI against this host's daemon and returns its
// standard output, trimmed. On failure the error is a *DockerError whose
// message carries the CLI's standard error verbatim.
func (d *DockerHost) Docker(ctx context.Context, args ...string) (string, error) {
	cmd := d.DockerCommand(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		de := &DockerError{Host: d.Name, Args: args, ExitCode: -1, Stderr: stderr.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			de.ExitCode = ee.ExitCode()
		}
		return strings.TrimSpace(stdout.String()), de
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Logs returns the last 200 lines of the dockerd log.
func (d *DockerHost) Logs() string { return tailFile(d.LogPath, 200) }

func tailFile(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	const max = 256 << 10
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = b[:n]
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// InstallPlugin creates the managed plugin name (e.g. "weft:latest") from
// dir (holding config.json and rootfs/), applies settings
// ("KEY=VALUE", "mount.source=..." ...) if any, and enables it.
func (d *DockerHost) InstallPlugin(ctx context.Context, dir, name string, settings ...string) error {
	if _, err := d.Docker(ctx, "plugin", "create", name, dir); err != nil {
		return err
	}
	if len(settings) > 0 {
		if _, err := d.Docker(ctx, append([]string{"plugin", "set", name}, settings...)...); err != nil {
			return err
		}
	}
	if _, err := d.Docker(ctx, "plugin", "enable", name); err != nil {
		return fmt.Errorf("%w\ndockerd log tail:\n%s", err, d.Logs())
	}
	return nil
}

// pluginInfo returns a plugin's full id and socket file name.
func (d *DockerHost) pluginInfo(ctx context.Context, name string) (id, socket string, err error) {
	out, err := d.Docker(ctx, "plugin", "inspect", "-f", "{{.Id}} {{.Config.Interface.Socket}}", name)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", "", fmt.Errorf("lab: %s: unexpected plugin inspect output %q", d.Name, out)
	}
	return f[0], f[1], nil
}

// PluginPID returns the pid (as seen from the machine) of the running
// process of the managed plugin name.
func (d *DockerHost) PluginPID(ctx context.Context, name string) (int, error) {
	id, _, err := d.pluginInfo(ctx, name)
	if err != nil {
		return 0, err
	}
	return d.pluginPIDByID(id)
}

func (d *DockerHost) pluginPIDByID(id string) (int, error) {
	// The shim of the plugin's containerd task records the pid.
	if p, err := d.Path("/run/docker/containerd/daemon/io.containerd.runtime.v2.task/plugins.moby/" + id + "/init.pid"); err == nil {
		if b, err := os.ReadFile(p); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && procAlive(pid) && inCgroup(pid, id) {
				return pid, nil
			}
		}
	}
	// Otherwise: the process in the plugin's cgroup whose parent is a shim.
	live, _ := allProcs()
	comm := map[int]string{}
	for _, p := range live {
		comm[p.pid] = p.comm
	}
	for _, p := range live {
		if strings.HasPrefix(comm[p.ppid], "containerd-shim") && inCgroup(p.pid, id) {
			return p.pid, nil
		}
	}
	return 0, fmt.Errorf("lab: %s: no running process for plugin %s", d.Name, id)
}

// inCgroup reports whether pid's cgroup path (any hierarchy) has a
// component equal to name.
func inCgroup(pid int, name string) bool {
	p, ok := readProc(pid)
	if !ok {
		return false
	}
	for _, path := range p.cgroups {
		for _, c := range strings.Split(path, "/") {
			if c == name {
				return true
			}
		}
	}
	return false
}

// KillPlugin kills the plugin's process with SIGKILL, then waits (bounded
// by ctx, at most 60s) until dockerd has restarted it: a new process runs
// and the plugin socket exists again. It returns the old and new pid.
func (d *DockerHost) KillPlugin(ctx context.Context, name string) (oldPID, newPID int, err error) {
	id, sock, err := d.pluginInfo(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	oldPID, err = d.pluginPIDByID(id)
	if err != nil {
		return 0, 0, err
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		return oldPID, 0, fmt.Errorf("lab: %s: kill plugin pid %d: %w", d.Name, oldPID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for procAlive(oldPID) {
		select {
		case <-ctx.Done():
			return oldPID, 0, fmt.Errorf("lab: %s: plugin pid %d survives SIGKILL", d.Name, oldPID)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for {
		pid, err := d.pluginPIDByID(id)
		if err == nil && pid != oldPID {
			if p, perr := d.Path("/run/docker/plugins/" + id + "/" + sock); perr == nil {
				if _, serr := os.Stat(p); serr == nil {
					return oldPID, pid, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return oldPID, 0, fmt.Errorf("lab: %s: plugin %s not restarted after kill: %w; dockerd log tail:\n%s", d.Name, name, ctx.Err(), d.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
