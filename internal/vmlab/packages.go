package vmlab

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Packages lists the packages whose tests all run inside the VM as well, on
// Debian's full kernel (TestKernelPackagesInVM in this package's tests runs
// them with RunPackage). Whole packages, not test names: a new or renamed
// test cannot drop out. A test that needs what the machine's kernel may lack
// (Missing) or that only makes sense in the VM (RequireVM) must be in one of
// them, or it fails: it would otherwise run nowhere.
var Packages = []string{
	"github.com/weftnet/weft/driver",
	"github.com/weftnet/weft/internal/vmlab",
	"github.com/weftnet/weft/macvlan", // ipvlan, 802.1q and dummy links
}

// Missing handles a kernel feature the test needs and the running kernel
// lacks; why says how that showed. Inside the VM nothing may be missing: the
// test fails. Elsewhere it is skipped with the reason, as the VM runs it, or
// fails when its package is not in Packages.
func Missing(t testing.TB, feature string, why error) {
	t.Helper()
	if InVM() {
		t.Fatalf("the full-kernel VM lacks %s: %v", feature, why)
	}
	requireListed(t, "needs "+feature)
	t.Skipf("this kernel lacks %s (%v); the full-kernel VM runs this test (vmlab.Packages)", feature, why)
}

// RequireVM skips the test unless it runs inside a vmlab VM. It marks tests
// that only make sense there (they change the root namespace, say); their
// package must be in Packages.
func RequireVM(t testing.TB) {
	t.Helper()
	if InVM() {
		return
	}
	requireListed(t, "runs only in the VM")
	t.Skipf("runs only inside the vmlab VM (%s=1); TestKernelPackagesInVM boots it", EnvInVM)
}

// requireListed fails t when the package of the test calling into vmlab is
// not in Packages.
func requireListed(t testing.TB, what string) {
	t.Helper()
	pkg := callerPackage()
	if !slices.Contains(Packages, pkg) {
		t.Fatalf("%s %s, but its package %s is not in vmlab.Packages, so it runs nowhere: add the package there", t.Name(), what, pkg)
	}
}

// callerPackage returns the import path of the first caller outside this
// package; an external test package (p_test) counts as p.
func callerPackage() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	self := ""
	for {
		f, more := frames.Next()
		pkg := funcPackage(f.Function)
		if self == "" {
			self = pkg
		} else if pkg != self {
			return strings.TrimSuffix(pkg, "_test")
		}
		if !more {
			return ""
		}
	}
}

// funcPackage cuts the package path out of a function name such as
// github.com/weftnet/weft/driver.(*harness).attach.func1.
func funcPackage(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}

// PackageDir returns the directory of the package with import path pkg, as
// go list resolves it from the current directory.
func PackageDir(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("vmlab: go list %s: %w", pkg, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// topResult matches the result line of a top-level test in go test -v output.
var topResult = regexp.MustCompile(`(?m)^--- (PASS|FAIL|SKIP): (\S+) `)

// RunPackage runs every test of the package in pkgDir inside the VM
// (RunTestsWith with the pattern "."), then checks that each test the
// package has (-test.list) reported a result there: a test that never ran
// in the VM fails t. Tests skipped in the VM are logged.
func RunPackage(t testing.TB, pkgDir string, spec Spec) Result {
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
	want, err := listTests(ctx, bin, pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	res := runCompiled(ctx, t, bin, pkgDir, ".", spec)
	missing, skipped := unrun(want, res.Output)
	for _, name := range missing {
		t.Errorf("vmlab: %s did not run in the VM", name)
	}
	if len(skipped) > 0 {
		t.Logf("vmlab: skipped in the VM (see their reasons above): %s", strings.Join(skipped, " "))
	}
	return res
}

// unrun compares the tests a package has (want) with the go test -v output
// of its run: missing had no result at all, skipped were skipped.
func unrun(want []string, output string) (missing, skipped []string) {
	got := map[string]string{}
	for _, m := range topResult.FindAllStringSubmatch(output, -1) {
		got[m[2]] = m[1]
	}
	for _, name := range want {
		switch got[name] {
		case "":
			missing = append(missing, name)
		case "SKIP":
			skipped = append(skipped, name)
		}
	}
	return missing, skipped
}

// listTests returns the names of the tests and fuzz targets in the test
// binary bin, from its -test.list on this machine (listing runs no test).
func listTests(ctx context.Context, bin, pkgDir string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin, "-test.list", ".")
	cmd.Dir = pkgDir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vmlab: %s -test.list: %w", pkgDir, err)
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if name := sc.Text(); strings.HasPrefix(name, "Test") || strings.HasPrefix(name, "Fuzz") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("vmlab: %s has no tests", pkgDir)
	}
	return names, nil
}
