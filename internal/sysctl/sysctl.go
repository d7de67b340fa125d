// Package sysctl writes kernel parameters of the caller's network namespace.
// A managed plugin sees /proc/sys read-only, so weft's config.json mounts
// the host's /proc read-write at /host/proc and points Root there.
package sysctl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Writer sets sysctls below Root (e.g. /proc/sys or /host/proc/sys).
type Writer struct {
	Root string
}

// Set writes value to key ("net/ipv4/ip_forward"), skipping the write when the
// value is already there.
func (w Writer) Set(key, value string) error {
	path := filepath.Join(w.Root, key)
	if cur, err := os.ReadFile(path); err == nil && string(bytes.TrimSpace(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s=%s: %w", key, value, err)
	}
	return nil
}
