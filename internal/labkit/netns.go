// Package labkit holds the plumbing that weft's test labs share: named
// network namespaces kept the way iproute2 keeps them (internal/testlab,
// internal/lab, and through testlab the VM tests), a buffer that
// collects a process's output while others read it (internal/lab,
// internal/vmlab), and a packet capture in a namespace (internal/testlab,
// e2e/vm). It imports no testing package: the lab also serves the
// benchmark binary.
package labkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsthread"
)

// NetnsDir is where named network namespaces are bind-mounted, as for
// `ip netns`.
const NetnsDir = "/run/netns"

// prepareMu keeps this process's own namespace adds from racing each other
// through prepareDir.
var prepareMu sync.Mutex

// prepareDir makes NetnsDir a shared mount point before a namespace is
// mounted in it, exactly as `ip netns add` does. Without it, the first
// `ip netns add` of another process (the e2e lab, run in parallel by
// go test ./...) bind-mounts NetnsDir over itself and covers the namespace
// mounts already in the plain directory: they can then be neither unmounted
// nor removed (EBUSY). With it, every such mount is made on the shared
// mount, later copies of it are its peers, and an unmount in one mount
// namespace reaches the others.
func prepareDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return err
	}
	madeMount := false
	for {
		err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: not a mount point yet. Make it one, once.
		if !errors.Is(err, unix.EINVAL) || madeMount {
			return fmt.Errorf("mount --make-rshared %s: %w", NetnsDir, err)
		}
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount --rbind %s %s: %w", NetnsDir, NetnsDir, err)
		}
		madeMount = true
	}
}

// AddNetns creates a network namespace and bind-mounts it at
// NetnsDir/name, without switching the caller's thread into it. The caller
// closes the returned handle.
func AddNetns(name string) (netns.NsHandle, error) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return netns.None(), fmt.Errorf("namespace name %q: want a plain file name", name)
	}
	prepareMu.Lock()
	err := prepareDir()
	prepareMu.Unlock()
	if err != nil {
		return netns.None(), err
	}
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return netns.None(), fmt.Errorf("create namespace %s: %w", name, err)
	}
	f.Close()
	err = nsthread.Do(func() error { return unix.Unshare(unix.CLONE_NEWNET) }, func() error {
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return netns.None(), fmt.Errorf("create namespace %s: %w", name, err)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		err = fmt.Errorf("open namespace %s: %w", name, err)
		return netns.None(), errors.Join(err, DeleteNetns(name))
	}
	return h, nil
}

// DeleteNetns unmounts and removes NetnsDir/name, as `ip netns del` does. A
// name that does not exist is no error. The namespace itself lives on while
// a process or a handle still holds it.
func DeleteNetns(name string) error {
	path := filepath.Join(NetnsDir, name)
	// EINVAL: not mounted in this mount namespace (a file left by a
	// process of another one); removing it is still right.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove namespace %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove namespace %s: %w", name, err)
	}
	return nil
}

// ListNetns returns the sorted names in NetnsDir that start with prefix.
func ListNetns(prefix string) []string {
	ents, err := os.ReadDir(NetnsDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
