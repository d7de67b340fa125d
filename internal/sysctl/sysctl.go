// Package sysctl writes kernel parameters of the caller's network namespace.
// A managed plugin sees /proc/sys read-only, so weft's config.json mounts
// only the host's /proc/sys/net read-write, at /host/proc/sys/net, and
// points Root at /host/proc/sys.
package sysctl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Writer sets sysctls below Root (e.g. /proc/sys or /host/proc/sys).
type Writer struct {
	Root string
}

// Set writes value to key ("net/ipv4/ip_forward"), skipping the write when the
// value is already there. Only keys of the net/ tree are accepted.
func (w Writer) Set(key, value string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	path := filepath.Join(w.Root, key)
	if cur, err := os.ReadFile(path); err == nil && string(bytes.TrimSpace(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s=%s: %w", key, value, err)
	}
	return nil
}

// checkKey keeps writes inside net/: a key is built from interface names,
// and no name may walk out of the tree weft is allowed to write.
func checkKey(key string) error {
	if !strings.HasPrefix(key, "net/") || filepath.Clean(key) != key || strings.Contains(key, "..") {
		return fmt.Errorf("sysctl %q: weft writes only keys below net/", key)
	}
	return nil
}
