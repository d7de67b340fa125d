// Package lab builds a multi-host Docker test lab on one Linux machine.
//
// Every simulated host is a network namespace named weft-lab-NAME with a
// veth "lab0" plugged into the bridge "sw0" of the switch namespace
// weft-lab-sw, an address from Config.Subnet, and no default route: nothing
// a lab host sends can leave the lab. Every host also gets a long-lived
// anchor process ("sleep infinity") that owns the host's private mount and
// UTS namespaces, in which
//
//   - /sys is a fresh sysfs (so /sys/class/net shows that host's links),
//     with the machine's cgroup hierarchies bound back under /sys/fs/cgroup;
//   - /run is a private tmpfs (so /run/docker, /run/docker/plugins — the
//     fixed home of managed plugin sockets — and /run/containerd are per
//     host, and are wiped by a reboot like on a real host);
//   - for Docker hosts, /var/lib/weft is bound to a per-host directory
//     (DockerHost.StateDir) and /etc/docker to a per-host directory;
//   - the hostname is the host's name.
//
// Docker hosts run their own dockerd (with its own managed containerd)
// inside those namespaces; dockerd and everything it starts sit in the
// cgroup /weft-lab-NAME, which together with the namespaces lets the lab
// find and remove every process it caused.
//
// Only one lab runs per machine at a time: New takes an exclusive lock
// (/run/weft-lab.lock), waiting for another process's lab to close, and then
// clears whatever a crashed earlier lab left behind. All lab processes,
// namespaces, cgroups and the lab directory are removed by Close.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/labkit"
)

const (
	// Image is the test image imported on every Docker host: a busybox-static
	// rootfs with one symlink per applet, CMD ["sh"].
	Image = "busybox:latest"

	// Prefix starts the name of every namespace and cgroup the lab makes.
	Prefix = "weft-lab-"
	// SwitchNS is the name of the switch namespace; its bridge is SwitchBridge.
	SwitchNS     = Prefix + "sw"
	SwitchBridge = "sw0"
	// HostLink is the name of every host's underlay link.
	HostLink = "lab0"

	// DefaultDir is the default lab working directory.
	DefaultDir = "/tmp/weft-lab"

	lockPath    = "/run/weft-lab.lock"
	markerFile  = ".weft-lab"
	netnsDir    = labkit.NetnsDir
	weftHostDir = "/var/lib/weft"
	dockerEtc   = "/etc/docker"
)

// DefaultSubnet is the default underlay subnet.
var DefaultSubnet = netip.MustParsePrefix("198.18.0.0/24")

// Config configures a lab. The zero value is usable.
type Config struct {
	// Dir is the lab working directory (data-roots, sockets, logs, image
	// tarball). It is removed and created again by New and removed by Close.
	// Default DefaultDir. New refuses a non-empty directory that it did not
	// create itself.
	Dir string
	// Subnet is the underlay. Docker hosts get .11, .12, ...; plain hosts
	// .100, .101, ... Default DefaultSubnet.
	Subnet netip.Prefix
	// Logf receives progress messages (e.g. t.Logf). Default: discarded.
	Logf func(format string, args ...any)

	// DockerdArgs are extra dockerd flags for every Docker host
	// (e.g. "--insecure-registry=198.18.0.100:5000", "--experimental").
	DockerdArgs []string
	// Dockerd is the dockerd binary. Default: $WEFT_LAB_DOCKERD, else
	// /usr/sbin/dockerd, else dockerd from PATH. Its directory comes first
	// in dockerd's PATH, so an engine built into a directory of its own
	// (make engines: dockerd, docker-proxy, runc) runs with its own helpers.
	Dockerd string
	// FirewallBackend is dockerd's --firewall-backend (Docker 28 and
	// later): "iptables" or "nftables". Empty leaves the flag out: the
	// engine's default, iptables (Docker 20.10 has no such flag). Default
	// $WEFT_LAB_FIREWALL_BACKEND. With nftables every Docker host turns on
	// IPv4 and IPv6 forwarding before each dockerd start, as an admin must
	// (that backend refuses to start with forwarding off), and `nft` must
	// be installed.
	FirewallBackend string
	// Docker is the docker CLI. Default: $WEFT_LAB_DOCKER, else
	// /usr/bin/docker (which matches Debian's 20.10 engine), else docker
	// from PATH.
	Docker string
	// Busybox is the static busybox the test image is built from.
	// Default /bin/busybox.
	Busybox string

	// StartTimeout bounds how long a dockerd may take to answer /_ping.
	// Default 30s.
	StartTimeout time.Duration
	// StopTimeout bounds a graceful dockerd stop (RestartDockerd, Reboot)
	// before everything is killed. Default 30s (Docker stops each running
	// container with its stop timeout, 10s by default, in parallel).
	StopTimeout time.Duration
	// LockTimeout bounds the wait for another process's lab. Default 10m.
	LockTimeout time.Duration
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	cfg     Config
	dir     string
	logf    func(format string, args ...any)
	docker  string
	dockerd string

	lock *os.File

	mu          sync.Mutex
	closed      bool
	hosts       map[string]*Host
	order       []string
	nextDocker  int
	nextPlain   int
	dockerHosts map[string]*DockerHost

	imgOnce sync.Once
	imgPath string
	imgErr  error
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)

// New clears what an earlier lab left behind (processes in weft-lab-*
// namespaces and cgroups, the namespaces, the cgroups, the directory), then
// creates Dir and the switch namespace.
func New(cfg Config) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: must run as root")
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if dir == "/" || len(dir) < 5 {
		return nil, fmt.Errorf("lab: refusing Dir %q", dir)
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = DefaultSubnet
	}
	cfg.Subnet = cfg.Subnet.Masked()
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 24 {
		return nil, fmt.Errorf("lab: Subnet %s must be IPv4 and at least a /24", cfg.Subnet)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 10 * time.Minute
	}
	if cfg.Busybox == "" {
		cfg.Busybox = "/bin/busybox"
	}
	if cfg.FirewallBackend == "" {
		cfg.FirewallBackend = os.Getenv("WEFT_LAB_FIREWALL_BACKEND")
	}
	if err := checkFirewallBackend(cfg.FirewallBackend); err != nil {
		return nil, err
	}
	// dockerd starts in the host's "/", where a relative path means
	// something else.
	dockerd, err := filepath.Abs(findBinary(cfg.Dockerd, "WEFT_LAB_DOCKERD", "/usr/sbin/dockerd", "dockerd"))
	if err != nil {
		return nil, err
	}
	l := &Lab{
		cfg:         cfg,
		dir:         dir,
		logf:        cfg.Logf,
		docker:      findBinary(cfg.Docker, "WEFT_LAB_DOCKER", "/usr/bin/docker", "docker"),
		dockerd:     dockerd,
		hosts:       map[string]*Host{},
		dockerHosts: map[string]*DockerHost{},
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "findmnt", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("lab: %s not found: %w", tool, err)
		}
	}
	prev, err := l.acquireLock()
	if err != nil {
		return nil, err
	}
	if err := l.setup(prev); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, cerr)
		}
		return nil, err
	}
	return l, nil
}

// acquireLock takes the machine-wide lab lock and returns the lab directory
// the previous holder recorded.
func (l *Lab) acquireLock() (prevDir string, err error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("lab: lock: %w", err)
	}
	deadline := time.Now().Add(l.cfg.LockTimeout)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return "", fmt.Errorf("lab: lock %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return "", fmt.Errorf("lab: another lab still holds %s after %s", lockPath, l.cfg.LockTimeout)
		}
		if !logged {
			l.logf("lab: waiting for another lab to finish (lock %s)", lockPath)
			logged = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	b, _ := os.ReadFile(lockPath)
	l.lock = f
	return strings.TrimSpace(string(b)), nil
}

func (l *Lab) releaseLock() {
	if l.lock == nil {
		return
	}
	_ = l.lock.Truncate(0)
	_ = syscall.Flock(int(l.lock.Fd()), syscall.LOCK_UN)
	_ = l.lock.Close()
	l.lock = nil
}

func (l *Lab) setup(prevDir string) error {
	start := time.Now()
	if err := l.cleanupAll(prevDir); err != nil {
		return fmt.Errorf("lab: clearing leftovers: %w", err)
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.dir, markerFile), []byte("weft test lab\n"), 0o644); err != nil {
		return err
	}
	if err := l.lock.Truncate(0); err == nil {
		_, _ = l.lock.WriteAt([]byte(l.dir+"\n"), 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := addNetNS(SwitchNS); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", SwitchNS, "link", "set", "lo", "up"},
		{"-n", SwitchNS, "link", "add", SwitchBridge, "type", "bridge", "mcast_snooping", "0"},
		{"-n", SwitchNS, "link", "set", SwitchBridge, "up"},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	l.logf("lab: switch ready in %s (dir %s)", time.Since(start).Round(time.Millisecond), l.dir)
	return nil
}

// cleanupAll removes every trace of any lab: processes, namespaces,
// cgroups, mounts and the lab directories (this lab's and prevDir, the one
// the previous lock holder recorded).
func (l *Lab) cleanupAll(prevDir string) error {
	var errs []error
	sel := newSelector()
	nss := labkit.ListNetns(Prefix)
	for _, ns := range nss {
		if ino, err := fileInode(filepath.Join(netnsDir, ns)); err == nil {
			sel.addNetNS(ino)
		}
	}
	l.mu.Lock()
	for _, h := range l.hosts {
		sel.addMntNS(h.mntNS())
	}
	l.mu.Unlock()
	sel.cgroup = func(c string) bool { return strings.HasPrefix(c, Prefix) }
	if len(nss) > 0 {
		l.logf("lab: removing namespaces %s", strings.Join(nss, " "))
	}
	if err := sel.kill(0); err != nil {
		errs = append(errs, err)
	}
	l.waitChildren()
	for _, ns := range nss {
		if err := delNetNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeCgroups(func(n string) bool { return strings.HasPrefix(n, Prefix) }); err != nil {
		errs = append(errs, err)
	}
	dirs := []string{l.dir}
	if prevDir != "" && prevDir != l.dir {
		dirs = append(dirs, prevDir)
	}
	for i, d := range dirs {
		if err := removeLabDir(d, i == 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeLabDir removes a lab directory. Only directories carrying the lab's
// marker file (or empty ones) are removed; for a foreign non-empty
// directory strict makes that an error, otherwise it is left alone.
func removeLabDir(dir string, strict bool) error {
	if dir == "" || dir == "/" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil && len(ents) > 0 {
		if strict {
			return fmt.Errorf("refusing to remove %s: not empty and not a lab directory", dir)
		}
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return err
	}
	hostDirs, _ := os.ReadDir(dir)
	for _, h := range hostDirs {
		if h.IsDir() {
			removePluginCgroups(filepath.Join(dir, h.Name(), "data"))
		}
	}
	return os.RemoveAll(dir)
}

// Close removes everything the lab made: processes (dockerd, containerd,
// shims, plugins, containers, commands), namespaces, cgroups, mounts and
// Dir. It is safe to call more than once and after failures.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	start := time.Now()
	err := l.cleanupAll("")
	l.releaseLock()
	if err != nil {
		l.logf("lab: close: %v", err)
	} else {
		l.logf("lab: closed in %s", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// waitChildren waits (briefly) until the processes this Lab started
// directly have been reaped, so that no zombie of ours outlives Close.
func (l *Lab) waitChildren() {
	l.mu.Lock()
	var waits []<-chan struct{}
	for _, h := range l.hosts {
		waits = append(waits, h.childDone()...)
	}
	l.mu.Unlock()
	timeout := time.After(5 * time.Second)
	for _, w := range waits {
		select {
		case <-w:
		case <-timeout:
			return
		}
	}
}

// Dir returns the lab working directory.
func (l *Lab) Dir() string { return l.dir }

// Subnet returns the underlay subnet.
func (l *Lab) Subnet() netip.Prefix { return l.cfg.Subnet }

// Host returns the host (plain or Docker) with the given name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// DockerHost returns the Docker host with the given name, or nil.
func (l *Lab) DockerHost(name string) *DockerHost {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dockerHosts[name]
}

// Hosts returns all hosts in creation order.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Host, 0, len(l.order))
	for _, n := range l.order {
		if h := l.hosts[n]; h != nil {
			out = append(out, h)
		}
	}
	return out
}

// DockerHosts returns all Docker hosts in creation order.
func (l *Lab) DockerHosts() []*DockerHost {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*DockerHost
	for _, n := range l.order {
		if d := l.dockerHosts[n]; d != nil {
			out = append(out, d)
		}
	}
	return out
}

// Diagnostics returns, for every Docker host, the tail of its dockerd log:
// meant for test failure output.
func (l *Lab) Diagnostics() string {
	var b strings.Builder
	for _, d := range l.DockerHosts() {
		fmt.Fprintf(&b, "===== %s: tail of %s =====\n%s\n", d.Name, d.LogPath, d.Logs())
	}
	return b.String()
}

// reserve registers a new host name and picks its address.
func (l *Lab) reserve(name string, docker bool) (netip.Addr, error) {
	if !nameRE.MatchString(name) || Prefix+name == SwitchNS {
		return netip.Addr{}, fmt.Errorf("lab: bad host name %q (want [a-z][a-z0-9-]{0,11}, not \"sw\")", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return netip.Addr{}, errors.New("lab: closed")
	}
	if _, ok := l.hosts[name]; ok {
		return netip.Addr{}, fmt.Errorf("lab: host %q exists", name)
	}
	var n int
	if docker {
		n = 11 + l.nextDocker
		if n >= 100 {
			return netip.Addr{}, errors.New("lab: too many docker hosts")
		}
		l.nextDocker++
	} else {
		n = 100 + l.nextPlain
		if n >= 255 {
			return netip.Addr{}, errors.New("lab: too many plain hosts")
		}
		l.nextPlain++
	}
	a := l.cfg.Subnet.Addr().As4()
	a[3] += byte(n)
	addr := netip.AddrFrom4(a)
	l.hosts[name] = nil // placeholder until created
	l.order = append(l.order, name)
	return addr, nil
}

func (l *Lab) unreserve(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hosts, name)
	for i, n := range l.order {
		if n == name {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
}

// AddHost creates a plain host (no Docker): namespace weft-lab-NAME, lab0
// with the next plain address (.100, .101, ...), lo up, private /sys, /run
// and hostname.
func (l *Lab) AddHost(name string) (*Host, error) {
	addr, err := l.reserve(name, false)
	if err != nil {
		return nil, err
	}
	h := l.newHost(name, addr, false)
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	if err := h.create(); err != nil {
		_ = h.destroy()
		l.unreserve(name)
		return nil, err
	}
	l.logf("lab: host %s (%s) ready", name, addr)
	return h, nil
}

// AddDockerHosts creates several Docker hosts in parallel; their addresses
// follow the order of names.
func (l *Lab) AddDockerHosts(names ...string) ([]*DockerHost, error) {
	out := make([]*DockerHost, len(names))
	errs := make([]error, len(names))
	addrs := make([]netip.Addr, len(names))
	for i, n := range names {
		a, err := l.reserve(n, true)
		if err != nil {
			for _, m := range names[:i] {
				l.unreserve(m)
			}
			return nil, err
		}
		addrs[i] = a
	}
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = l.addDockerHost(n, addrs[i], "")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// run runs a command on the machine (not in a lab host) and returns its
// combined output; the error carries the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// addNetNS makes the named namespace through labkit, which keeps /run/netns
// as iproute2 does for every test package.
func addNetNS(name string) error {
	h, err := labkit.AddNetns(name)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return h.Close()
}

func delNetNS(name string) error { return labkit.DeleteNetns(name) }
