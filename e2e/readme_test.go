package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/probe"
)

// TestReadmeInstallDemo runs the README's first command, `make install demo`,
// against the lab's dockerd: it rebuilds and reinstalls weft:latest the way a
// user does and shows two containers talking over a weft network.
func TestReadmeInstallDemo(t *testing.T) {
	requireLab(t)
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, "make", "-C", "..", "install", "demo")
	cmd.Env = append(os.Environ(), host.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install demo: %v\n%s\n--- dockerd log ---\n%s", err, out, probe.Tail(host.Logs(), 30))
	}
	if !strings.Contains(string(out), "weft works") || !strings.Contains(string(out), "3 packets received") {
		t.Errorf("demo did not show containers reaching each other:\n%s", out)
	}
	if err := pluginEnabled(); err != nil {
		t.Error(err)
	}
}
