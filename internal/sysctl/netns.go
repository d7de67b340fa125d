package sysctl

import (
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// NamespaceWriter sets sysctls of another network namespace: /proc/sys/net
// shows the namespace of the thread that opens it, so the write happens on a
// thread moved into ns (and retired afterwards, never reused).
type NamespaceWriter struct {
	NS netns.NsHandle
}

// Set writes value to key inside the namespace.
func (w NamespaceWriter) Set(key, value string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with the goroutine.
		if err := netns.Set(w.NS); err != nil {
			errc <- err
			return
		}
		errc <- os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	}()
	return <-errc
}
