package vmlab_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/vmlab"
)

// outcome records what a helper did to a test instead of doing it.
type outcome struct {
	testing.TB
	fatal, skip string
}

func (o *outcome) Helper()      {}
func (o *outcome) Name() string { return "TestSomething" }
func (o *outcome) Fatalf(format string, args ...any) {
	o.fatal = fmt.Sprintf(format, args...)
	panic(o)
}
func (o *outcome) Skipf(format string, args ...any) {
	o.skip = fmt.Sprintf(format, args...)
	panic(o)
}

// run calls fn as a test helper would be called and returns its outcome.
func run(t *testing.T, fn func(t testing.TB)) *outcome {
	o := &outcome{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != o {
				panic(r)
			}
		}()
		fn(o)
	}()
	return o
}

// TestMissing: a missing kernel feature skips on the machine, fails in the
// VM, and fails when the test's package does not run in the VM at all.
func TestMissing(t *testing.T) {
	why := fmt.Errorf("Unknown device type")
	t.Setenv(vmlab.EnvInVM, "")
	if o := run(t, func(t testing.TB) { vmlab.Missing(t, "ipvlan links", why) }); !strings.Contains(o.skip, "lacks ipvlan links (Unknown device type)") || o.fatal != "" {
		t.Errorf("on the machine: skip %q, fatal %q; want a skip with the reason", o.skip, o.fatal)
	}
	if o := run(t, func(t testing.TB) { vmlab.RequireVM(t) }); o.skip == "" || o.fatal != "" {
		t.Errorf("RequireVM on the machine: skip %q, fatal %q; want a skip", o.skip, o.fatal)
	}

	t.Setenv(vmlab.EnvInVM, "1")
	if o := run(t, func(t testing.TB) { vmlab.Missing(t, "ipvlan links", why) }); !strings.Contains(o.fatal, "VM lacks ipvlan links") || o.skip != "" {
		t.Errorf("in the VM: fatal %q, skip %q; want a failure", o.fatal, o.skip)
	}
	if o := run(t, func(t testing.TB) { vmlab.RequireVM(t) }); o.skip != "" || o.fatal != "" {
		t.Errorf("RequireVM in the VM: skip %q, fatal %q; want the test to run", o.skip, o.fatal)
	}

	t.Setenv(vmlab.EnvInVM, "")
	listed := vmlab.Packages
	defer func() { vmlab.Packages = listed }()
	vmlab.Packages = slices.DeleteFunc(slices.Clone(listed), func(p string) bool { return strings.HasSuffix(p, "/internal/vmlab") })
	for name, fn := range map[string]func(testing.TB){
		"Missing":   func(t testing.TB) { vmlab.Missing(t, "ipvlan links", why) },
		"RequireVM": func(t testing.TB) { vmlab.RequireVM(t) },
	} {
		if o := run(t, fn); !strings.Contains(o.fatal, "package github.com/weftnet/weft/internal/vmlab is not in vmlab.Packages") {
			t.Errorf("%s from an unlisted package: fatal %q, skip %q; want a failure naming vmlab.Packages", name, o.fatal, o.skip)
		}
	}
}
