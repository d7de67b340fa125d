package vmlab

import (
	"slices"
	"testing"
)

func TestFuncPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/weftnet/weft/driver.TestVLANParent":           "github.com/weftnet/weft/driver",
		"github.com/weftnet/weft/driver.(*harness).attach.func1":  "github.com/weftnet/weft/driver",
		"github.com/weftnet/weft/internal/vmlab_test.TestVMLinks": "github.com/weftnet/weft/internal/vmlab_test",
		"github.com/weftnet/weft/internal/vmlab.Missing":          "github.com/weftnet/weft/internal/vmlab",
		"testing.tRunner":            "testing",
		"gopkg.in/yaml.v3.Unmarshal": "gopkg.in/yaml",
	} {
		if got := funcPackage(fn); got != want {
			t.Errorf("funcPackage(%q) = %q, want %q", fn, got, want)
		}
	}
}

// TestUnrun: a test of the package with no result line in the VM's output
// is reported, as are skips; subtests and indented lines are not top-level
// results.
func TestUnrun(t *testing.T) {
	out := `=== RUN   TestA
--- PASS: TestA (0.01s)
=== RUN   TestB
    --- PASS: TestB/sub (0.00s)
--- SKIP: TestC (0.00s)
    x_test.go:9: this kernel has ESP
        --- PASS: TestD (0.00s)
--- FAIL: TestE (1.00s)
PASS
`
	missing, skipped := unrun([]string{"TestA", "TestB", "TestC", "TestD", "TestE"}, out)
	if !slices.Equal(missing, []string{"TestB", "TestD"}) || !slices.Equal(skipped, []string{"TestC"}) {
		t.Errorf("missing %v, skipped %v; want [TestB TestD] and [TestC]", missing, skipped)
	}
}
