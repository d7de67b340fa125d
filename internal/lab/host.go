package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/labkit"
)

// Host is a simulated machine: a network namespace plus a private mount and
// UTS namespace held by an anchor process.
type Host struct {
	Name   string
	NetNS  string       // /run/netns/weft-lab-NAME
	Addr   netip.Addr   // address of lab0
	Prefix netip.Prefix // Addr with the underlay prefix length

	lab    *Lab
	dir    string // DIR/NAME
	docker bool

	mu        sync.Mutex
	anchor    *exec.Cmd
	anchorEnd chan struct{}
	mnt       uint64
	// mntHold keeps the anchor's mount namespace open, so that its inode
	// number (mnt) cannot pass to a new namespace of some other process
	// after the anchor dies: the kernel reuses the numbers of freed
	// namespaces, and a selector holding a stale one would kill whatever
	// got it (an `ip netns exec` of an unrelated test did).
	mntHold *os.File
	procs   map[*Proc]bool
	// moreDone lists further channels closed when processes the lab
	// started for this host (dockerd) have been reaped. Called without
	// h.mu held.
	moreDone func() []<-chan struct{}
}

func (l *Lab) newHost(name string, addr netip.Addr, docker bool) *Host {
	return &Host{
		Name:   name,
		NetNS:  filepath.Join(netnsDir, Prefix+name),
		Addr:   addr,
		Prefix: netip.PrefixFrom(addr, l.cfg.Subnet.Bits()),
		lab:    l,
		dir:    filepath.Join(l.dir, name),
		docker: docker,
		procs:  map[*Proc]bool{},
	}
}

func (h *Host) nsName() string     { return Prefix + h.Name }
func (h *Host) swPort() string     { return "v-" + h.Name }
func (h *Host) cgroupName() string { return Prefix + h.Name }
func (h *Host) stateDir() string   { return filepath.Join(h.dir, "weft") }

// create makes the namespace, the link to the switch and the anchor.
func (h *Host) create() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	if err := addNetNS(h.nsName()); err != nil {
		return err
	}
	ns := h.nsName()
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", SwitchNS, "link", "add", h.swPort(), "type", "veth", "peer", "name", HostLink, "netns", ns},
		{"-n", SwitchNS, "link", "set", h.swPort(), "master", SwitchBridge, "up"},
		{"-n", ns, "addr", "add", h.Prefix.String(), "dev", HostLink},
		{"-n", ns, "link", "set", HostLink, "up"},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return fmt.Errorf("lab: host %s: %w", h.Name, err)
		}
	}
	return h.startAnchor()
}

// anchorScript runs in the host's new mount and UTS namespaces; it prepares
// the mounts, prints "ready" and becomes the anchor (sleep infinity).
// $1 hostname, $2 a scratch dir, $3 weft state dir or "", $4 /etc/docker dir or "".
const anchorScript = `set -e
echo "$1" > /proc/sys/kernel/hostname
# Copies of the machine's /run/netns/* mounts would keep other hosts'
# namespaces alive after they are deleted: drop them in this mount ns.
findmnt -rn -t nsfs -o TARGET | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
# A sysfs of this network namespace, with the cgroup hierarchies kept.
mkdir -p "$2"
mount --rbind /sys/fs/cgroup "$2"
mount -t sysfs sysfs /sys
mount --rbind "$2" /sys/fs/cgroup
umount -l "$2"
# Private /run: /run/docker (exec-root, plugin sockets), /run/containerd.
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/docker/plugins /run/containerd /run/netns /run/lock
if [ -n "$3" ]; then mount --bind "$3" /var/lib/weft; fi
if [ -n "$4" ]; then mount --bind "$4" /etc/docker; fi
echo ready
exec sleep infinity </dev/null >/dev/null 2>&1
`

func (h *Host) startAnchor() error {
	var weftDir, etcDir string
	if h.docker {
		weftDir = h.stateDir()
		etcDir = filepath.Join(h.dir, "etc-docker")
		for _, d := range []string{weftDir, etcDir, weftHostDir, dockerEtc} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("nsenter", "--net="+h.NetNS, "--",
		"unshare", "--mount", "--uts", "--propagation", "private", "--",
		"/bin/sh", "-c", anchorScript, "anchor",
		h.Name, filepath.Join(h.dir, ".cgroup-aside"), weftDir, etcDir)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	end := make(chan struct{})
	go func() { _ = cmd.Wait(); close(end) }()
	outc := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); outc <- b }()
	var out []byte
	select {
	case out = <-outc:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("lab: host %s: anchor setup timed out", h.Name)
	}
	if strings.TrimSpace(string(out)) != "ready" {
		_ = cmd.Process.Kill()
		<-end
		return fmt.Errorf("lab: host %s: anchor setup failed: %s", h.Name, strings.TrimSpace(string(out)))
	}
	hold, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/mnt")
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("lab: host %s: anchor's mount namespace: %w", h.Name, err)
	}
	mnt, err := fdInode(hold)
	if err != nil || mnt == nsLinkInode("/proc/self/ns/mnt") {
		hold.Close()
		_ = cmd.Process.Kill()
		return fmt.Errorf("lab: host %s: anchor has no private mount namespace", h.Name)
	}
	h.mu.Lock()
	h.anchor, h.anchorEnd, h.mnt, h.mntHold = cmd, end, mnt, hold
	h.mu.Unlock()
	return nil
}

func (h *Host) mntNS() uint64 {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mnt
}

// childDone returns channels closed when the processes the lab started
// directly for this host have been reaped.
func (h *Host) childDone() []<-chan struct{} {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	var out []<-chan struct{}
	if h.anchorEnd != nil {
		out = append(out, h.anchorEnd)
	}
	for p := range h.procs {
		out = append(out, p.done)
	}
	more := h.moreDone
	h.mu.Unlock()
	if more != nil {
		out = append(out, more()...)
	}
	return out
}

// anchorPID returns the anchor's pid, or an error if the host is down.
func (h *Host) anchorPID() (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.anchor == nil {
		return 0, fmt.Errorf("lab: host %s is down", h.Name)
	}
	select {
	case <-h.anchorEnd:
		return 0, fmt.Errorf("lab: host %s: anchor process is gone", h.Name)
	default:
	}
	return h.anchor.Process.Pid, nil
}

// selector selects every process of this host.
func (h *Host) selector() *procSelector {
	s := newSelector()
	if ino, err := fileInode(h.NetNS); err == nil {
		s.addNetNS(ino)
	}
	s.addMntNS(h.mntNS())
	cg := h.cgroupName()
	s.cgroup = func(c string) bool { return c == cg }
	return s
}

// destroy kills every process of the host and removes its namespace,
// switch port and cgroups (not its directory).
func (h *Host) destroy() error {
	var errs []error
	if err := h.selector().kill(0); err != nil {
		errs = append(errs, err)
	}
	for _, c := range h.childDone() {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
		}
	}
	h.mu.Lock()
	if h.mntHold != nil {
		h.mntHold.Close()
	}
	h.anchor, h.anchorEnd, h.mnt, h.mntHold = nil, nil, 0, nil
	h.procs = map[*Proc]bool{}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := os.Stat(filepath.Join(netnsDir, SwitchNS)); err == nil {
		// Deleting the switch end destroys the pair at once, even if
		// something still holds the host namespace.
		_, _ = run(ctx, "ip", "-n", SwitchNS, "link", "del", h.swPort())
	}
	if err := delNetNS(h.nsName()); err != nil {
		errs = append(errs, err)
	}
	cg := h.cgroupName()
	if err := removeCgroups(func(n string) bool { return n == cg }); err != nil {
		errs = append(errs, err)
	}
	if h.docker {
		removePluginCgroups(filepath.Join(h.dir, "data"))
	}
	return errors.Join(errs...)
}

// nsenterArgs returns the nsenter prefix entering the host's network, mount
// and UTS namespaces.
func (h *Host) nsenterArgs() ([]string, error) {
	pid, err := h.anchorPID()
	if err != nil {
		return nil, err
	}
	return []string{"-t", strconv.Itoa(pid), "--net", "--mount", "--uts", "--"}, nil
}

// Command returns an unstarted command that runs in the host's network,
// mount and UTS namespaces (its working directory is the host's "/").
func (h *Host) Command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	if len(args) == 0 {
		return nil, errors.New("lab: no command")
	}
	pre, err := h.nsenterArgs()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nsenter", append(pre, args...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}

// Run runs a command in the host and returns its combined output. On
// failure the error includes the output.
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	cmd, err := h.Command(ctx, args...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", h.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Path returns the machine path under which the host's own view of p (in
// its mount namespace: /run, /sys, /var/lib/weft, ...) can be read.
func (h *Host) Path(p string) (string, error) {
	pid, err := h.anchorPID()
	if err != nil {
		return "", err
	}
	return filepath.Join("/proc", strconv.Itoa(pid), "root", p), nil
}

// SetLink sets the switch end of the host's lab0 cable up or down (lab0
// itself loses carrier while it is down). A reboot plugs the cable back in.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := run(ctx, "ip", "-n", SwitchNS, "link", "set", h.swPort(), state)
	return err
}

// Proc is a background process running in a host.
type Proc struct {
	host *Host
	cmd  *exec.Cmd
	out  labkit.Buffer
	done chan struct{}
	err  error
	stop sync.Once
}

// Start starts a background process in the host, in its own process group.
// Its combined output is collected (Output).
func (h *Host) Start(args ...string) (*Proc, error) {
	cmd, err := h.Command(context.Background(), args...)
	if err != nil {
		return nil, err
	}
	p := &Proc{host: h, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.procs[p] = true
	h.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		h.mu.Lock()
		delete(h.procs, p)
		h.mu.Unlock()
	}()
	return p, nil
}

// Pid returns the process id (nsenter execs the command, so this is the
// command's own pid).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns the combined output so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after 2s, and waits
// for the process to exit. It returns an error only if it had already
// exited with one.
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.stop.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
	<-p.done
	return nil
}

// SwitchPort is the name of the host's cable end in the switch namespace
// (SwitchNS), e.g. for tc or ip commands run with Lab.RunSwitch.
func (h *Host) SwitchPort() string { return h.swPort() }

// RunSwitch runs a command in the switch namespace (network namespace only)
// and returns its combined output; on failure the error includes it.
func (l *Lab) RunSwitch(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("lab: no command")
	}
	return run(ctx, "nsenter", append([]string{"--net=" + filepath.Join(netnsDir, SwitchNS), "--"}, args...)...)
}
