package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeftTakesTheFlags builds weft and checks that it accepts the flags
// the benchmark starts it with (a renamed flag once made every protocol
// benchmark fail with "flag provided but not defined").
func TestWeftTakesTheFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weft")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/weftnet/weft/cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("build weft: %v: %s", err, out)
	}
	// -h after the flags: weft parses them all, then prints its usage and
	// exits without starting.
	out, _ := exec.Command(bin, append(weftArgs(t.TempDir()), "-h")...).CombinedOutput()
	if strings.Contains(string(out), "not defined") {
		t.Errorf("weft refuses the benchmark's flags %v: %s", weftArgs("DIR"), out)
	}
}
