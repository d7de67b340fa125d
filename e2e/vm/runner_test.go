package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/vmlab"
)

// Environment variables of TestDockerInVM.
const (
	// EnvEngines lists the engine directories to test, separated by
	// spaces: each holds dockerd, docker-proxy and runc of one engine.
	// Unset means the current engine only (build/engines/29.8, else where
	// go install puts binaries): one engine's run takes about 10 minutes
	// under TCG on an idle machine. Debian's docker.io is /usr/sbin. make
	// e2e-vm and make test set it to both (VM_ENGINES in the Makefile).
	EnvEngines = "WEFT_VM_ENGINES"
	// EnvPluginDir overrides build/plugin.
	EnvPluginDir = "WEFT_PLUGIN_DIR"
	// EnvRun, when set, is a -test.run pattern: only the scenarios it
	// matches run in the VM (for working on one; CI runs them all).
	EnvRun = "WEFT_VM_RUN"
)

// vmMemoryMB is the guest's RAM: the root tmpfs holds the engine (dockerd
// 29.8 alone is 130 MB) and each lab host runs dockerd, containerd, weft and
// containers; four hosts use about a gigabyte.
const vmMemoryMB = 4096

// TestDockerInVM boots the full-kernel VM once per engine and runs every test
// of this package there (vmlab.RunPackage): each must pass, none may skip.
func TestDockerInVM(t *testing.T) {
	if vmlab.InVM() {
		t.Skip("inside the VM: the scenarios run here")
	}
	vmlab.SkipUnlessAvailable(t)
	plugin := pluginDir()
	if _, err := os.Stat(filepath.Join(plugin, "rootfs", "weft")); err != nil {
		unavailable(t, "needs the plugin built: run `make plugin` first (make test and make e2e-vm do)")
	}
	cli, err := dockerCLI()
	if err != nil {
		unavailable(t, err.Error())
	}
	pkg, err := os.Getwd() // go test runs a package's tests in its directory
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range engineDirs() {
		e, err := findEngine(dir)
		name := "docker-" + e.version
		if err != nil {
			name = "docker-in-" + strings.ReplaceAll(strings.Trim(dir, "/"), "/", "-")
		}
		t.Run(name, func(t *testing.T) {
			if err != nil {
				unavailable(t, err.Error())
			}
			start := time.Now()
			spec := vmlab.Spec{
				Modules: guestModules,
				HostCommands: []string{
					"ip", "bridge", "iptables", "iptables-save", "iptables-restore",
					"ip6tables", "ip6tables-save", "ip6tables-restore",
					"nsenter", "unshare", "findmnt", "mount", "umount",
					"containerd", "containerd-shim-runc-v2",
				},
				Programs: map[string]string{
					guestEngineDir + "/dockerd":      e.dockerd,
					guestEngineDir + "/docker-proxy": e.proxy,
					guestEngineDir + "/runc":         e.runc,
					guestDocker:                      cli,
				},
				Files:     map[string]string{guestPlugin: plugin},
				Env:       []string{envEngine + "=" + e.version},
				MemoryMB:  vmMemoryMB,
				RootTmpfs: true,
			}
			var res vmlab.Result
			if pattern := os.Getenv(EnvRun); pattern != "" {
				res = vmlab.RunTestsWith(t, pkg, pattern, spec)
			} else {
				res = vmlab.RunPackage(t, pkg, spec)
			}
			// No scenario may skip in the VM: each is there to run.
			for _, m := range skipLine.FindAllStringSubmatch(res.Output, -1) {
				if m[1] != t.Name() && m[1] != "TestDockerInVM" {
					t.Errorf("%s skipped in the VM", m[1])
				}
			}
			t.Logf("Docker %s in the VM: %s", e.version, time.Since(start).Round(time.Second))
		})
	}
}

// guestModules are loaded before the tests start rather than on demand: the
// lab's hosts and their dockerds start in parallel, and of two concurrent
// first uses of a link type one can fail ("ip link add type veth: Unknown
// device type") while the other's modprobe is still loading it. br_netfilter
// is left out: TestNoBrNetfilter needs a host without it.
var guestModules = []string{
	"overlay", "veth", "bridge", "vxlan", "macvlan", "ipvlan", "8021q",
	"nf_tables", "nft_compat", "nft_chain_nat", "nf_nat", "nf_conntrack", "nf_conntrack_netlink",
	"xt_conntrack", "xt_MASQUERADE", "xt_addrtype", "xt_nat", "xt_tcpudp", "xt_comment", "xt_mark",
	"xt_ipvs", "ip_vs", "ip_vs_rr", "xfrm_user", "esp4", "xt_policy", "xt_u32",
}

var skipLine = regexp.MustCompile(`(?m)^\s*--- SKIP: (\S+)`)

// unavailable skips t, or fails it where the VM tests must run
// (WEFT_VMLAB_REQUIRE=1, as in CI).
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(vmlab.EnvRequire) == "1" {
		t.Fatalf("%s (%s=1)", why, vmlab.EnvRequire)
	}
	t.Skip(why)
}

func pluginDir() string {
	if d := os.Getenv(EnvPluginDir); d != "" {
		return d
	}
	abs, _ := filepath.Abs("../../build/plugin")
	return abs
}

// engineDirs are the directories of the engines to test.
func engineDirs() []string {
	if v := strings.Fields(os.Getenv(EnvEngines)); len(v) > 0 {
		return v
	}
	current, _ := filepath.Abs("../../build/engines/29.8")
	if _, err := os.Stat(filepath.Join(current, "dockerd")); err != nil {
		current = goBin()
	}
	return []string{current}
}

// goBin is where go install puts binaries.
func goBin() string {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return filepath.Join(os.Getenv("HOME"), "go", "bin")
	}
	f := strings.Split(string(out), "\n")
	if strings.TrimSpace(f[0]) != "" {
		return strings.TrimSpace(f[0])
	}
	return filepath.Join(strings.Split(strings.TrimSpace(f[1]), ":")[0], "bin")
}

// engine is one Docker engine's binaries on the machine.
type engine struct {
	version              string // as dockerd --version reports it: 29.8.0, 20.10.24
	dockerd, proxy, runc string
}

var dockerdVersion = regexp.MustCompile(`Docker version ([0-9]+\.[0-9]+\.[0-9]+)`)

// findEngine checks dir holds dockerd, docker-proxy and runc and asks
// dockerd its version.
func findEngine(dir string) (engine, error) {
	e := engine{
		dockerd: filepath.Join(dir, "dockerd"),
		proxy:   filepath.Join(dir, "docker-proxy"),
		runc:    filepath.Join(dir, "runc"),
	}
	for _, f := range []string{e.dockerd, e.proxy, e.runc} {
		if _, err := os.Stat(f); err != nil {
			return e, fmt.Errorf("no Docker engine in %s (%s): %v; build one with `make engines` or name engine directories in %s", dir, filepath.Base(f), err, EnvEngines)
		}
	}
	out, err := exec.Command(e.dockerd, "--version").Output()
	if err != nil {
		return e, fmt.Errorf("%s --version: %v", e.dockerd, err)
	}
	m := dockerdVersion.FindSubmatch(out)
	if m == nil {
		return e, fmt.Errorf("%s --version says %q, not a Docker version", e.dockerd, out)
	}
	e.version = string(m[1])
	return e, nil
}

// dockerCLI is the docker client the guest's lab uses: $WEFT_LAB_DOCKER,
// else the newest one here. Docker 29 refuses clients older than API 1.44
// (Debian's 20.10 client speaks 1.41); a 28.x client negotiates down to
// 20.10's API, so it drives both engines.
func dockerCLI() (string, error) {
	if v := os.Getenv("WEFT_LAB_DOCKER"); v != "" {
		return v, nil
	}
	for _, p := range []string{"/usr/local/bin/docker", "/usr/bin/docker"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("needs a docker CLI (apt-get install docker.io)")
	}
	return p, nil
}
