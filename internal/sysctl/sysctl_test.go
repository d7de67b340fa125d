package sysctl

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriterStaysInNet: keys are built from interface names; none may walk
// out of net/, the only tree config.json mounts writable.
func TestWriterStaysInNet(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := Writer{Root: root}
	if err := w.Set("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv4/ip_forward")); string(b) != "1" {
		t.Fatalf("ip_forward = %q", b)
	}
	for _, key := range []string{"kernel/core_pattern", "net/../kernel/core_pattern", "net/ipv4/conf/../../../kernel/x", "/net/ipv4/ip_forward", "net//x"} {
		if err := w.Set(key, "1"); err == nil {
			t.Errorf("Set(%q) was accepted", key)
		}
	}
}
