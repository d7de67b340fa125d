package vmlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/labkit"
)

const qemuBinary = "qemu-system-x86_64"

// Spec describes one VM run.
type Spec struct {
	// Kernel to boot; nil means Kernel("").
	Kernel *KernelImage
	// Binary is a static executable on the host (e.g. from go test -c with
	// CGO_ENABLED=0); it runs in the guest as /vmlab/BASENAME.
	Binary string
	// Args are the binary's arguments.
	Args []string
	// Env adds KEY=VALUE variables to the binary's environment, which already
	// has PATH, HOME, TMPDIR and WEFT_IN_VM=1.
	Env []string
	// Dir is the binary's working directory in the guest; "" means "/".
	Dir string
	// Modules are put into the initramfs (with dependencies, on top of
	// DefaultModules) and loaded before the binary starts. A name the kernel
	// has neither as a module nor built in is an error.
	Modules []string
	// Files maps guest paths to host files or directories to copy in.
	Files map[string]string
	// HostCommands are host programs (e.g. "ip", "iptables") to copy into
	// /usr/local/bin with their shared libraries, ahead of busybox in PATH.
	HostCommands []string
	// Programs maps guest paths to host executables that are copied there
	// with their shared libraries: for programs that must sit at a given
	// path, or two programs of one name (two dockerd versions, say).
	Programs map[string]string
	// RootTmpfs moves the guest's root from the initramfs to a tmpfs before
	// anything runs. pivot_root(2) cannot leave the initramfs, so runc (and
	// everything that starts containers) needs it; the copy costs about a
	// second per 100 MB under TCG.
	RootTmpfs bool
	// MemoryMB is the guest's RAM; 0 means 1024. The initramfs lives in it.
	MemoryMB int
	// CPUs is the guest's CPU count; 0 means 2.
	CPUs int
	// KernelArgs are appended to the kernel command line.
	KernelArgs []string
	// Output, if set, receives the binary's output line by line as it runs.
	Output io.Writer
}

// Result is the outcome of a run whose binary finished.
type Result struct {
	// ExitCode is the binary's exit status (125: a module failed to load, so
	// the binary did not run; 128+N: killed by signal N).
	ExitCode int
	// Output is the binary's stdout and stderr.
	Output string
	// Console is the serial console: kernel and /init messages.
	Console string
	// Kernel is the release that was booted.
	Kernel string
	// InitramfsBytes is the size of the initramfs.
	InitramfsBytes int64
	// Timing breaks down where the time went.
	Timing Timing
}

// Timing of one run, host clock unless noted.
type Timing struct {
	Kernel    time.Duration // finding (or fetching) the kernel
	Initramfs time.Duration // building the initramfs
	Boot      time.Duration // qemu start until the binary starts
	GuestBoot time.Duration // the guest's uptime when the binary starts
	Test      time.Duration // the binary's run
	Total     time.Duration // the whole Run call
}

func (t Timing) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("kernel %v, initramfs %v, boot %v (guest uptime %v), test %v, total %v",
		r(t.Kernel), r(t.Initramfs), r(t.Boot), r(t.GuestBoot), r(t.Test), r(t.Total))
}

// BootError is returned when the VM stopped (or was stopped) before the
// binary reported its exit code: a boot failure, a kernel panic, a timeout.
type BootError struct {
	Reason  string
	Console string // tail of the serial console
	Output  string // tail of the binary's output, if it started
}

func (e *BootError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmlab: %s", e.Reason)
	if e.Output != "" {
		fmt.Fprintf(&b, "\n--- test output (tail) ---\n%s", e.Output)
	}
	fmt.Fprintf(&b, "\n--- serial console (tail) ---\n%s", e.Console)
	return b.String()
}

// Run boots the kernel with an initramfs holding spec's binary, runs it and
// returns its output and exit code. A non-zero exit code is not an error;
// an error means the binary's outcome is unknown (see BootError). ctx bounds
// the whole run; the VM is killed when it ends.
func Run(ctx context.Context, spec Spec) (Result, error) {
	start := time.Now()
	var res Result
	k := spec.Kernel
	if k == nil {
		var err error
		if k, err = Kernel(""); err != nil {
			return res, err
		}
	}
	res.Kernel = k.Release
	res.Timing.Kernel = time.Since(start)
	buildStart := time.Now()
	if err := checkBusybox(busyboxPath); err != nil {
		return res, fmt.Errorf("vmlab: %w", err)
	}
	if err := checkStatic(spec.Binary); err != nil {
		return res, fmt.Errorf("vmlab: %w", err)
	}

	mods, missing := k.mods.closure(append(append([]string(nil), DefaultModules...), spec.Modules...))
	for _, m := range missing {
		for _, want := range spec.Modules {
			if modName(want) == m {
				return res, fmt.Errorf("vmlab: kernel %s has no module %q", k.Release, want)
			}
		}
	}
	var load []string // modprobe would fail on built-in names
	for _, m := range spec.Modules {
		if !k.mods.isBuiltin(m) {
			load = append(load, m)
		}
	}
	files := newFileSet()
	for _, g := range slices.Sorted(maps.Keys(spec.Files)) { // sorted: reproducible archives
		if err := files.addTree(g, spec.Files[g]); err != nil {
			return res, fmt.Errorf("vmlab: Files[%s]: %w", g, err)
		}
	}
	if err := files.addHostCommands(spec.HostCommands); err != nil {
		return res, fmt.Errorf("vmlab: %w", err)
	}
	if err := files.addPrograms(spec.Programs); err != nil {
		return res, fmt.Errorf("vmlab: %w", err)
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	nonce := randomHex(8)
	im := &image{
		kernel:  k,
		modules: mods,
		binary:  spec.Binary,
		init:    initScript(nonce, load, guestBinary(spec.Binary), spec.Args, spec.Env, dir, spec.RootTmpfs),
		files:   files,
	}

	removeStaleTemp()
	tmp, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initrd")
	f, err := os.Create(initrd)
	if err != nil {
		return res, err
	}
	err = writeInitramfs(f, im)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("vmlab: build initramfs: %w", err)
	}
	if st, err := os.Stat(initrd); err == nil {
		res.InitramfsBytes = st.Size()
	}
	res.Timing.Initramfs = time.Since(buildStart)

	err = boot(ctx, k, initrd, &spec, nonce, &res)
	res.Timing.Total = time.Since(start)
	return res, err
}

// tempPrefix names each run's temporary directory (the initramfs).
const tempPrefix = "vmlab-"

// removeStaleTemp removes run directories that a killed test process left
// behind: no run lives for an hour.
func removeStaleTemp() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() && time.Since(st.ModTime()) > time.Hour {
			os.RemoveAll(d)
		}
	}
}

// boot runs qemu and collects the result into res.
func boot(ctx context.Context, k *KernelImage, initrd string, spec *Spec, nonce string, res *Result) error {
	mem, cpus := spec.MemoryMB, spec.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	// panic=-1 with -no-reboot: a kernel panic ends qemu at once.
	// mitigations=off and cryptomgr.notests (no crypto self-tests at
	// boot) save about 0.4 s of emulated boot; neither matters in a
	// throwaway VM.
	cmdline := []string{"console=ttyS0", "panic=-1", "quiet", "mitigations=off", "cryptomgr.notests"}
	cmdline = append(cmdline, spec.KernelArgs...)
	// The guest's serial ports are pipes: fd 3 the console (ttyS0), fd 4
	// the binary's output (ttyS1). qemu opens /dev/fd/N, which reopens the
	// pipe.
	accel := os.Getenv(EnvAccel)
	if accel == "" {
		accel = "tcg" // KVM exists on the CI machine but does not work
	}
	args := []string{
		"-accel", accel,
		"-machine", "pc", // microvm boots 0.5 s faster but hung 2 boots in 12
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-kernel", k.bootFile(), "-initrd", initrd,
		"-append", strings.Join(cmdline, " "),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-nic", "none", // no network device at all: nothing can leave the VM
		"-serial", "file:/dev/fd/3", "-serial", "file:/dev/fd/4",
	}

	conR, conW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		conR.Close()
		conW.Close()
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuBinary, args...)
	cmd.ExtraFiles = []*os.File{conW, outW}
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	// If the test process dies, so does the VM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	var console labkit.Buffer
	conDone := make(chan struct{})
	go func() {
		defer close(conDone)
		_, _ = io.Copy(&console, conR) // ends when qemu closes the console
	}()
	col := &collector{start: startMarker(nonce), exit: exitMarker(nonce), sink: spec.Output}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		col.read(outR)
	}()

	// Pdeathsig fires when the thread that started the child exits, so the
	// start and the wait happen on one locked thread.
	launched := time.Now()
	waitErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			waitErr <- err
			return
		}
		waitErr <- cmd.Wait()
	}()
	runErr := <-waitErr
	conW.Close()
	outW.Close()
	<-conDone
	<-outDone
	conR.Close()
	outR.Close()

	res.Console = strings.ReplaceAll(console.String(), "\r\n", "\n")
	res.Output = col.output.String()
	if col.started {
		res.Timing.Boot = col.startedAt.Sub(launched)
		res.Timing.GuestBoot = col.guestUptime
	}
	if col.exited {
		res.ExitCode = col.exitCode
		res.Timing.Test = col.exitedAt.Sub(col.startedAt)
		return nil
	}
	be := &BootError{Console: tail(res.Console, 60), Output: tail(res.Output, 40)}
	switch {
	case ctx.Err() != nil:
		be.Reason = fmt.Sprintf("VM killed after %v (%v) before the binary finished", time.Since(launched).Round(time.Second), ctx.Err())
	case runErr != nil:
		be.Reason = fmt.Sprintf("%s: %v: %s", qemuBinary, runErr, strings.TrimSpace(stderr.String()))
	case !col.started:
		be.Reason = "VM stopped before the test binary started (boot failure or kernel panic)"
	default:
		be.Reason = "VM stopped before the test binary finished (kernel panic?)"
	}
	return be
}

// collector reads the guest's output tty, separating the binary's output
// from /init's markers.
type collector struct {
	start, exit string
	sink        io.Writer

	output      strings.Builder
	started     bool
	startedAt   time.Time
	guestUptime time.Duration
	exited      bool
	exitedAt    time.Time
	exitCode    int
}

func (c *collector) read(r io.Reader) {
	// bufio.Reader, not Scanner: a line of any length must not stop the
	// reading, or the guest would block on a full serial port.
	br := bufio.NewReader(r)
	blank := false // a held-back empty line: /init's printf puts one before the exit marker
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, c.start+" "):
			c.started, c.startedAt = true, time.Now()
			c.guestUptime = parseSeconds(strings.TrimPrefix(line, c.start+" "))
			continue
		case strings.Contains(line, c.exit+" "):
			before, after, _ := strings.Cut(line, c.exit+" ")
			if before != "" {
				c.emit(before)
			}
			f := strings.Fields(after)
			if len(f) > 0 {
				if code, err := strconv.Atoi(f[0]); err == nil {
					c.exited, c.exitedAt, c.exitCode = true, time.Now(), code
				}
			}
			blank = false
			continue
		}
		if blank {
			c.emit("")
			blank = false
		}
		if line == "" {
			blank = true
			continue
		}
		c.emit(line)
	}
}

func (c *collector) emit(line string) {
	c.output.WriteString(line + "\n")
	if c.sink != nil {
		_, _ = io.WriteString(c.sink, line+"\n") // the output is kept in c.output too
	}
}

func parseSeconds(s string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
