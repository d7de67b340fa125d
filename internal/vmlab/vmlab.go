// Package vmlab runs weft's kernel-level tests inside a virtual machine that
// boots a full Debian kernel.
//
// The CI machine's own kernel lacks ipvlan, 802.1q VLAN links, dummy links and
// ESP. vmlab fetches Debian's cloud kernel package once (apt-get download,
// dpkg -x, cached under /var/cache/weft-vmlab), builds a small initramfs with
// busybox, the network modules and a static test binary, boots it with
// qemu-system-x86_64 under TCG (KVM is unusable here) with no network device at
// all, and hands back the binary's output and exit code. A boot takes about
// two seconds.
//
// The packages listed in Packages run all their tests in the VM as well
// (TestKernelPackagesInVM, through RunPackage), on top of their usual run on
// the machine. A test that needs a kernel feature calls Missing when the
// feature is absent: on the machine it is skipped with the reason, in the VM
// (where WEFT_IN_VM=1) it fails; a test that only makes sense in the VM calls
// RequireVM. Either fails a test whose package is not in Packages:
//
//	func TestIPVLAN(t *testing.T) {
//		if err := probeIPVLAN(); err != nil {
//			vmlab.Missing(t, "ipvlan links", err)
//		}
//		// netlink calls that need ipvlan ...
//	}
//
// The guest has busybox (sh, ip, ping, nsenter, modprobe, ...) and no libc.
// Host programs such as iproute2's ip (for `ip netns exec`, which the testlab
// helpers use) and iptables are copied in with their libraries on request
// (Spec.HostCommands, RunTestsWith). Kernel modules load on demand through
// busybox modprobe, from DefaultModules and Spec.Modules.
//
// The test binary's output travels over a second serial port (about 130 KB/s
// under TCG): fine for go test -v, slow for megabytes of logs.
package vmlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Environment variables understood by vmlab.
const (
	// EnvInVM is set to "1" by the VM's /init for the test binary.
	EnvInVM = "WEFT_IN_VM"
	// EnvCache overrides the kernel cache directory.
	EnvCache = "WEFT_VMLAB_CACHE"
	// EnvKernel picks the kernel: a package name (linux-image-6.12-cloud-amd64),
	// a kernel release (6.1.0-56-cloud-amd64) or "newest" (the highest
	// release apt knows). Unset means what the linux-image-cloud-amd64
	// meta-package depends on when the cache is first filled; later runs
	// reuse that kernel without asking apt (remove CACHE/default-release to
	// move on to a newer one).
	EnvKernel = "WEFT_VMLAB_KERNEL"
	// EnvRequire, when "1", turns "qemu cannot run here" skips into failures,
	// so a CI that installed qemu cannot silently skip the VM tests.
	EnvRequire = "WEFT_VMLAB_REQUIRE"
	// EnvAccel picks qemu's accelerator; unset means "tcg". KVM exists on
	// the CI machine but does not work; "kvm" is for machines where it does.
	EnvAccel = "WEFT_VMLAB_ACCEL"
)

// DefaultCacheDir is where fetched kernels are kept across runs.
const DefaultCacheDir = "/var/cache/weft-vmlab"

// InVM reports whether the caller runs inside a vmlab VM.
func InVM() bool { return os.Getenv(EnvInVM) == "1" }

// CacheDir returns the kernel cache directory: $WEFT_VMLAB_CACHE, else
// DefaultCacheDir when it is (or can be made) writable, else a directory in
// the user's cache.
func CacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	if err := os.MkdirAll(DefaultCacheDir, 0o755); err == nil && writable(DefaultCacheDir) {
		return DefaultCacheDir
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "weft-vmlab")
	}
	return filepath.Join(os.TempDir(), "weft-vmlab")
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// Available reports whether a VM can be booted here at all: qemu, a static
// busybox and a kernel (cached, or obtainable through apt) must exist. When it
// cannot, reason says what is missing. It does not download anything.
func Available() (ok bool, reason string) {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return false, fmt.Sprintf("%s not installed (apt-get install qemu-system-x86)", qemuBinary)
	}
	if err := checkBusybox(busyboxPath); err != nil {
		return false, err.Error()
	}
	if err := kernelObtainable(CacheDir()); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// SkipUnlessAvailable skips t when no VM can run here (see Available), or
// fails it when WEFT_VMLAB_REQUIRE=1. RunTests calls it; tests that call Run
// themselves should too.
func SkipUnlessAvailable(t testing.TB) {
	t.Helper()
	if InVM() {
		t.Skip("inside the vmlab VM: no VM in the VM")
	}
	ok, reason := Available()
	if ok {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("vmlab: cannot boot a VM: %s (%s=1)", reason, EnvRequire)
	}
	t.Skipf("vmlab: cannot boot a VM: %s", reason)
}

// errNoKernel is wrapped when no kernel is cached and apt knows none.
var errNoKernel = errors.New("no Debian cloud kernel cached or known to apt")
