// Package testlab builds throwaway network namespaces for weft's kernel-level
// tests. Every namespace is bind-mounted at /run/netns/weft-t-*, so tools such
// as `ip netns exec` and iptables can be pointed at it, and is removed when the
// test ends, also when it fails. /run/netns is kept as iproute2 keeps it
// (internal/labkit), so test packages that go test runs in parallel, some
// with `ip netns add`, never cover each other's namespaces.
package testlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/labkit"
	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/internal/vmlab"
)

// Prefix starts the name of every namespace this package makes.
const Prefix = "weft-t-"

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: kernel-level test creates network namespaces and links")
	}
}

// RequireCommand skips the test when a command it needs is not installed.
// Inside the full-kernel VM it fails instead: there a missing command means
// the VM was built without it, and the test would silently not run.
func RequireCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if vmlab.InVM() {
			t.Fatalf("needs %s, which the VM lacks (vmlab.Spec.HostCommands)", name)
		}
		t.Skipf("needs %s, which is not installed", name)
	}
}

// NS is a throwaway network namespace with a netlink handle bound to it.
type NS struct {
	Name   string
	NL     *nl.Handle
	handle netns.NsHandle
}

// staleOnce clears, before this process's first namespace, the namespaces
// that test processes which died without cleaning up left behind.
var staleOnce sync.Once

// NewNS creates a namespace with loopback up; t.Cleanup removes it. Its
// name carries this process's identity (labkit.OwnedName), so a later test
// process can prove it stale once this one is gone.
func NewNS(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	staleOnce.Do(func() {
		removed, err := labkit.ClearStaleNetns(Prefix)
		if len(removed) > 0 {
			t.Logf("testlab: removed namespaces of dead test processes: %s", strings.Join(removed, " "))
		}
		if err != nil {
			t.Logf("testlab: stale namespaces stay: %v", err)
		}
	})
	name, err := labkit.OwnedName(Prefix)
	if err != nil {
		t.Fatal(err)
	}
	h, err := labkit.AddNetns(name)
	if err != nil {
		t.Fatal(err)
	}
	handle, err := nl.NewAt(h)
	if err != nil {
		h.Close()
		t.Fatal(errors.Join(err, labkit.DeleteNetns(name)))
	}
	ns := &NS{Name: name, NL: handle, handle: h}
	t.Cleanup(func() {
		handle.Close()
		h.Close()
		if err := labkit.DeleteNetns(name); err != nil {
			t.Error(err)
		}
	})
	ns.MustRun(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Handle returns the namespace's file handle.
func (n *NS) Handle() netns.NsHandle { return n.handle }

// Path is the namespace's bind mount.
func (n *NS) Path() string { return filepath.Join(labkit.NetnsDir, n.Name) }

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (n *NS) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start runs a command inside the namespace in the background; t.Cleanup
// kills it.
func (n *NS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, n.Name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// Wire joins two namespaces with a veth pair named aName (in a) and bName (in
// b), both up. Addresses are the caller's business.
func Wire(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	a.MustRun(t, "ip", "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	a.MustRun(t, "ip", "link", "set", aName, "up")
	b.MustRun(t, "ip", "link", "set", bName, "up")
}
