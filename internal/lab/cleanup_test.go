package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStaleCleanup leaves a lab behind as a crashed run would and checks
// that the next New clears it.
func TestStaleCleanup(t *testing.T) {
	requireLab(t, false)
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := New(Config{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	x, err := l.AddHost("stale")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	p, err := x.Start("sleep", "1000")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	// A crashed run's processes are inside their host; this one starts as
	// nsenter in the machine's namespaces and joins the host's a moment
	// later, so wait until it has.
	want, err := fileInode(x.NetNS)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); nsLinkInode(fmt.Sprintf("/proc/%d/ns/net", p.Pid())) != want; {
		if time.Now().After(deadline) {
			l.Close()
			t.Fatalf("process %d did not enter host %s", p.Pid(), x.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.abandon()

	l2, err := New(Config{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Errorf("process of the abandoned lab still runs")
	}
	if _, err := os.Stat(x.NetNS); !os.IsNotExist(err) {
		t.Errorf("%s survived New: %v", x.NetNS, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Errorf("old host dir survived New: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	assertClean(t, dir)
}

// TestDeadAnchorSparesOthers kills a host's anchor, as a crash would, then
// starts processes with mount namespaces of their own (as `ip netns exec`
// does): none may be taken for the host's. The kernel reuses the numbers of
// freed namespaces, and a selector that kept a dead anchor's number killed
// an unrelated test's iptables-save.
func TestDeadAnchorSparesOthers(t *testing.T) {
	requireLab(t, false)
	l, err := New(Config{Dir: filepath.Join(t.TempDir(), "lab"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	x, err := l.AddHost("crash")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := x.anchorPID()
	if err != nil {
		t.Fatal(err)
	}
	old := x.mntNS()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, c := range x.childDone() {
		<-c
	}
	var others []*exec.Cmd
	defer func() {
		for _, c := range others {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range 20 {
		c := exec.Command("unshare", "--mount", "--", "sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		others = append(others, c)
	}
	for _, c := range others {
		for nsLinkInode(fmt.Sprintf("/proc/%d/ns/mnt", c.Process.Pid)) == nsLinkInode("/proc/self/ns/mnt") {
			time.Sleep(5 * time.Millisecond) // unshare has not run yet
		}
		if got := nsLinkInode(fmt.Sprintf("/proc/%d/ns/mnt", c.Process.Pid)); got == old {
			t.Errorf("process %d got the dead anchor's mount namespace number %d", c.Process.Pid, old)
		}
	}
	for _, p := range x.selector().find() {
		for _, c := range others {
			if p.pid == c.Process.Pid {
				t.Errorf("the host's selector takes unrelated process %d for the host's", p.pid)
			}
		}
	}
}
