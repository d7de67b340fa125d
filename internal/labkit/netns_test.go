package labkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testPrefix keeps this package's namespaces apart from testlab's weft-t-*:
// a testlab ClearStaleNetns in a parallel test process reads no owner from
// them and leaves them alone.
const testPrefix = "weft-t-labkit-"

func requireRoot(t *testing.T, commands ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces and mounts")
	}
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s, which is not installed", c)
		}
	}
}

func TestOwnedNameNamesThisProcess(t *testing.T) {
	name, err := OwnedName(testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := parseOwner(testPrefix, name)
	self, err := processOwner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ok || o != self {
		t.Errorf("%s reads back as %+v (ok %v), want %+v", name, o, ok, self)
	}
	if again, _ := OwnedName(testPrefix); again == name {
		t.Errorf("two names alike: %s", name)
	}
	for _, bad := range []string{
		"weft-t-labkit-5fde2765",                   // testlab's names before owners
		"weft-t-labkit-1-2-3",                      // no serial
		"weft-t-labkit-1-2-3-4-5",                  // a dash too many
		"weft-t-labkit-x-2-3-4",                    // no pid
		"weft-t-labkit-0-2-3-4",                    // pid 0
		"weft-lab-" + name[len("weft-t-labkit-"):], // another prefix
	} {
		if o, ok := parseOwner(testPrefix, bad); ok {
			t.Errorf("parseOwner(%q) = %+v, want no owner", bad, o)
		}
	}
}

// TestDeadOwner: a process counts as dead only when it is proven gone.
func TestDeadOwner(t *testing.T) {
	self, err := processOwner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.dead(self) {
		t.Error("this process counts as dead")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child, err := processOwner(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if child.dead(self) {
		t.Error("a running child counts as dead")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !child.dead(self) {
		t.Error("a child that exited counts as alive")
	}
	reused := self
	reused.start++ // this pid, but a process started at another time
	if !reused.dead(self) {
		t.Error("a reused pid counts as the old process")
	}
	foreign := child
	foreign.pidNS++ // a pid of another pid namespace proves nothing here
	if foreign.dead(self) {
		t.Error("an owner from another pid namespace counts as dead")
	}
}

// TestClearStaleNetns removes the namespace of a dead process and leaves
// those of live processes, of other pid namespaces and of unknown owners.
func TestClearStaleNetns(t *testing.T) {
	requireRoot(t)
	self, err := processOwner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gone, err := processOwner(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	foreign := gone
	foreign.pidNS++
	prefix := fmt.Sprintf("%s%d-", testPrefix, os.Getpid())
	names := map[string]bool{ // name: removed
		gone.name(prefix, "1"):    true,
		self.name(prefix, "2"):    false,
		foreign.name(prefix, "3"): false,
		prefix + "legacy":         false,
	}
	for name := range names {
		h, err := AddNetns(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		t.Cleanup(func() {
			if err := DeleteNetns(name); err != nil {
				t.Error(err)
			}
		})
	}
	removed, err := ClearStaleNetns(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || !names[removed[0]] {
		t.Errorf("removed %v, want only the dead process's namespace", removed)
	}
	for name, gone := range names {
		if _, err := os.Stat(NetnsDir + "/" + name); os.IsNotExist(err) != gone {
			t.Errorf("%s: exists %v after ClearStaleNetns", name, !os.IsNotExist(err))
		}
	}
}

// childEnv selects the half of TestNetnsUnderIPNetnsAdd that runs in a
// private mount namespace, and how it makes its namespaces.
const childEnv = "LABKIT_TEST_CHILD"

// TestNetnsUnderIPNetnsAdd reproduces a fresh machine (no /run/netns mount
// yet) in a private mount namespace, makes a namespace, lets `ip netns add`
// run as another test package's lab does, and removes the namespace. Made
// the way testlab did before (a bind mount in a plain /run/netns), the
// removal fails with EBUSY, which shows the setup reproduces the fault; made
// by AddNetns, it succeeds, also with namespaces and `ip netns add` racing.
func TestNetnsUnderIPNetnsAdd(t *testing.T) {
	if mode := os.Getenv(childEnv); mode != "" {
		netnsChild(t, mode)
		return
	}
	requireRoot(t, "ip", "unshare")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode, want string
	}{
		{"plain-dir", "device or resource busy"},
		{"labkit", "all removed"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			prefix := fmt.Sprintf("%s%d-%s-", testPrefix, os.Getpid(), tc.mode)
			// What the child leaves on the directory under the mounts.
			t.Cleanup(func() {
				for _, n := range ListNetns(prefix) {
					if err := DeleteNetns(n); err != nil {
						t.Error(err)
					}
				}
			})
			cmd := exec.Command("unshare", "-m", "--propagation", "private", self, "-test.run", "^TestNetnsUnderIPNetnsAdd$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.mode, "LABKIT_TEST_PREFIX="+prefix,
				fmt.Sprint("LABKIT_TEST_PARENT_MNT=", nsInode(t, "/proc/self/ns/mnt")))
			out, err := cmd.CombinedOutput()
			_, result, _ := strings.Cut(string(out), "result: ")
			result, _, _ = strings.Cut(result, "\n")
			if err != nil || !strings.Contains(result, tc.want) {
				t.Errorf("result %q, want %q: %v\n%s", result, tc.want, err, out)
			}
		})
	}
}

func netnsChild(t *testing.T, mode string) {
	prefix := os.Getenv("LABKIT_TEST_PREFIX")
	if fmt.Sprint(nsInode(t, "/proc/self/ns/mnt")) == os.Getenv("LABKIT_TEST_PARENT_MNT") {
		t.Fatal("the child must run in a private mount namespace: it unmounts /run/netns")
	}
	// A fresh machine: /run/netns is a plain directory (maybe several
	// mounts are stacked on it in the machine's namespace).
	for unix.Unmount(NetnsDir, unix.MNT_DETACH) == nil {
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ipAdd := func(name string) error {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add: %w: %s", err, out)
		}
		return nil
	}
	switch mode {
	case "plain-dir":
		name := prefix + "old"
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked: the thread is retired
			var h netns.NsHandle
			if h, err = netns.NewNamed(name); err == nil {
				h.Close()
			}
		}()
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if err := ipAdd(prefix + "ip"); err != nil {
			t.Fatal(err)
		}
		err = netns.DeleteNamed(name)
		t.Logf("result: %v", err)
	case "labkit":
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprint(prefix, i)
				var err error
				if i%3 == 0 {
					err = ipAdd(name)
				} else {
					var h netns.NsHandle
					if h, err = AddNetns(name); err == nil {
						h.Close()
					}
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, n := range ListNetns(prefix) {
			errs = append(errs, DeleteNetns(n))
		}
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if left := ListNetns(prefix); len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
		t.Log("result: all removed")
	}
}

func nsInode(t *testing.T, path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestAddNetnsLeavesNoThreadInside makes namespaces and checks that none of
// this process's threads stays in one: a thread parked in a lab namespace
// (the main thread, which Go never retires) made /proc/self/ns/net name
// that namespace, and the lab's cleanup then spared its processes.
func TestAddNetnsLeavesNoThreadInside(t *testing.T) {
	requireRoot(t)
	for range 30 {
		name, err := OwnedName(testPrefix)
		if err != nil {
			t.Fatal(err)
		}
		h, err := AddNetns(name)
		if err != nil {
			t.Fatal(err)
		}
		made := threadNetns(t, h)
		h.Close()
		if err := DeleteNetns(name); err != nil {
			t.Fatal(err)
		}
		if len(made) > 0 {
			t.Fatalf("threads %v of this process stayed in namespace %s", made, name)
		}
	}
}

// threadNetns returns the ids of this process's threads in namespace h.
func threadNetns(t *testing.T, h netns.NsHandle) []string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, task := range tasks {
		if link, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && link == want {
			in = append(in, task.Name())
		}
	}
	return in
}
