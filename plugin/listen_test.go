package plugin

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListenMode: the socket is 0600 whatever the umask (under umask 0 it
// was 0777: any local user could create and delete networks), replaces a
// stale socket, leaves nothing else in its directory and is removed on
// Close.
func TestListenMode(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "weft.sock")
			// A stale socket of a previous run, made under the same umask.
			old := syscall.Umask(umask)
			stale, err := net.Listen("unix", path)
			if err == nil {
				stale.(*net.UnixListener).SetUnlinkOnClose(false)
				stale.Close()
			}
			l, err := Listen(path)
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want only weft.sock", names)
			}
			// The socket serves.
			go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
			if got := get(t, path); got != "ok" {
				t.Errorf("got %q", got)
			}
			l.Close()
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket still there after Close: %v", err)
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	// A directory where the socket should be is not replaced.
	path := filepath.Join(dir, "weft.sock")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Listen over a directory: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a failed Listen left %d entries", len(entries))
	}
}
