package vmlab

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// defaultTimeout bounds a VM run when the test has no deadline.
const defaultTimeout = 10 * time.Minute

// RunTests compiles the tests of the package in pkgDir ("." is the calling
// test's own package: go test runs tests in their package directory), boots
// the VM with modules loaded and runs the tests matching the -test.run
// pattern run with -test.v. Their output goes to the test's output as it
// arrives; t fails when they fail, when the pattern matches no test, or when
// the VM does not deliver an exit code (the error carries the console's tail).
// t is skipped only when no VM can run here at all (see Available), and
// inside the VM, where there is nothing to relay.
func RunTests(t testing.TB, pkgDir, run string, modules ...string) Result {
	t.Helper()
	return RunTestsWith(t, pkgDir, run, Spec{Modules: modules})
}

// RunTestsWith is RunTests with more control over the VM: spec's Binary is
// replaced by the compiled tests, and -test.v -test.run run (and -test.short
// when set) come before spec.Args.
func RunTestsWith(t testing.TB, pkgDir, run string, spec Spec) Result {
	t.Helper()
	if InVM() {
		t.Skip("already inside the vmlab VM")
	}
	SkipUnlessAvailable(t)

	ctx, cancel := testContext(t)
	defer cancel()
	bin, err := compileTests(ctx, t, pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	return runCompiled(ctx, t, bin, pkgDir, run, spec)
}

// runCompiled is RunTestsWith with the test binary bin compiled already.
func runCompiled(ctx context.Context, t testing.TB, bin, pkgDir, run string, spec Spec) Result {
	t.Helper()
	spec.Binary = bin
	args := []string{"-test.v", "-test.run", run}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if dl, ok := ctx.Deadline(); ok {
		// The binary's own timeout fires first and dumps goroutines, which
		// says more than a killed VM.
		if d := time.Until(dl) - 20*time.Second; d > 0 {
			args = append(args, "-test.timeout", d.Round(time.Second).String())
		}
	}
	spec.Args = append(args, spec.Args...)
	if spec.Dir == "" {
		// Tests find their testdata relative to the package directory.
		spec.Dir = "/vmlab/pkg"
		if td := filepath.Join(pkgDir, "testdata"); isDir(td) {
			files := map[string]string{spec.Dir + "/testdata": td}
			for g, h := range spec.Files {
				files[g] = h
			}
			spec.Files = files
		}
	}
	if spec.Output == nil {
		spec.Output = testOutput(t)
	}

	res, err := Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmlab: kernel %s, initramfs %.1f MB, %v", res.Kernel, float64(res.InitramfsBytes)/1e6, res.Timing)
	switch {
	case res.ExitCode != 0:
		t.Errorf("vmlab: tests in the VM failed (exit code %d); console tail:\n%s", res.ExitCode, tail(res.Console, 20))
	case strings.Contains(res.Output, "testing: warning: no tests to run"):
		t.Errorf("vmlab: -test.run %q matched no test in %s", run, pkgDir)
	}
	return res
}

// testContext ends shortly before the test's deadline, so a hung VM is
// reported by RunTests instead of the go test timeout panic.
func testContext(t testing.TB) (context.Context, context.CancelFunc) {
	ctx := context.Background()
	if tt, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tt.Context()
	}
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := tt.Deadline(); ok {
			return context.WithDeadline(ctx, dl.Add(-10*time.Second))
		}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// compileTests builds pkgDir's test binary, static, into a temporary
// directory. When pkgDir is the running test's own package and the running
// binary is already static (go test with CGO_ENABLED=0), that binary is used.
func compileTests(ctx context.Context, t testing.TB, pkgDir string) (string, error) {
	t.Helper()
	if self, err := os.Executable(); err == nil && samePackage(pkgDir) && checkStatic(self) == nil {
		return self, nil
	}
	out := filepath.Join(t.TempDir(), filepath.Base(absOr(pkgDir))+".test")
	// Debug info off (-s -w): a smaller initramfs, still with stack traces.
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, "-ldflags=-s -w", ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the guest has no libc
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", &compileError{dir: pkgDir, err: err, out: buf.String()}
	}
	t.Logf("vmlab: compiled %s tests in %v", pkgDir, time.Since(start).Round(10*time.Millisecond))
	return out, nil
}

type compileError struct {
	dir string
	err error
	out string
}

func (e *compileError) Error() string {
	return "vmlab: go test -c in " + e.dir + ": " + e.err.Error() + "\n" + e.out
}

// samePackage reports whether dir is the current directory, which go test
// makes the package directory of the running test binary.
func samePackage(dir string) bool {
	wd, err := os.Getwd()
	return err == nil && absOr(dir) == wd
}

func absOr(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// testOutput returns where the VM's test output goes: the test's output
// stream (t.Output, Go 1.25+), else a writer that calls t.Log per line.
func testOutput(t testing.TB) io.Writer {
	if o, ok := t.(interface{ Output() io.Writer }); ok {
		return o.Output()
	}
	return logWriter{t}
}

// logWriter relays each line written to it to t.Log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
