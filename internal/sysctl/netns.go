package sysctl

import (
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/nsthread"
)

// NamespaceWriter sets sysctls of another network namespace: /proc/sys/net
// shows the namespace of the thread that opens it, so the write happens on a
// thread moved into ns.
type NamespaceWriter struct {
	NS netns.NsHandle
}

// Set writes value to key inside the namespace.
func (w NamespaceWriter) Set(key, value string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return nsthread.In(w.NS, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}
