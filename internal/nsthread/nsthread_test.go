package nsthread

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func threadNetns() string {
	link, _ := os.Readlink(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	return link
}

// TestDoComesBack runs fn in fresh namespaces many times (often enough that
// some run lands on the main thread) and checks that fn ran elsewhere and
// that the process's namespace, as /proc/self reads it, never changed.
func TestDoComesBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unshares network namespaces")
	}
	home, _ := os.Readlink("/proc/self/ns/net")
	for i := range 50 {
		var inside string
		err := Do(func() error { return unix.Unshare(unix.CLONE_NEWNET) }, func() error {
			inside = threadNetns()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside == home || inside == "" {
			t.Fatalf("run %d: fn ran in %q, the process's own namespace", i, inside)
		}
		if now, _ := os.Readlink("/proc/self/ns/net"); now != home {
			t.Fatalf("run %d: /proc/self/ns/net is %s, was %s", i, now, home)
		}
	}
}

func TestDoReportsErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unshares network namespaces")
	}
	boom := errors.New("boom")
	if err := Do(func() error { return boom }, func() error { return nil }); !errors.Is(err, boom) {
		t.Errorf("enter's error: got %v", err)
	}
	if err := Do(func() error { return unix.Unshare(unix.CLONE_NEWNET) }, func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: got %v", err)
	}
}
