package vmlab

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// metaPackage is Debian's "current cloud kernel" meta-package.
const metaPackage = "linux-image-cloud-amd64"

// completeStamp marks a fully unpacked kernel in the cache; a directory
// without it is the remains of an interrupted fetch.
const completeStamp = ".vmlab-complete"

// KernelImage is an unpacked Debian kernel image package (Debian calls them
// linux-image-*): the bootable vmlinuz and its modules.
type KernelImage struct {
	// Release is the kernel release, e.g. 6.1.0-56-cloud-amd64.
	Release string
	// Package is the Debian package it came from.
	Package string
	// Vmlinuz is the path of the bootable kernel (bzImage).
	Vmlinuz string
	// Vmlinux is the uncompressed kernel extracted from Vmlinuz, booted
	// through its PVH entry (faster); "" when it could not be extracted.
	Vmlinux string
	// ModulesDir is /lib/modules/RELEASE inside the cache.
	ModulesDir string

	mods *moduleIndex
}

// bootFile is the kernel file qemu boots.
func (k *KernelImage) bootFile() string {
	if k.Vmlinux != "" {
		return k.Vmlinux
	}
	return k.Vmlinuz
}

var (
	kernelMu    sync.Mutex
	kernelCache = map[string]*KernelImage{}
)

// Kernel finds the Debian cloud kernel in cacheDir ("" means CacheDir()) or
// fetches it: apt-get download, dpkg -x, modules decompressed, depmod, the
// uncompressed vmlinux extracted for PVH boot. Which kernel is chosen is
// described at EnvKernel. The result is remembered for the life of the
// process; the cache is shared safely between processes (flock).
func Kernel(cacheDir string) (*KernelImage, error) {
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	want := os.Getenv(EnvKernel)
	key := cacheDir + "\x00" + want
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if k := kernelCache[key]; k != nil {
		return k, nil
	}
	k, err := findOrFetch(cacheDir, want)
	if err != nil {
		return nil, err
	}
	kernelCache[key] = k
	return k, nil
}

func findOrFetch(cacheDir, want string) (*KernelImage, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("vmlab: kernel cache: %w", err)
	}
	// Asking apt costs a second (it parses every package list), so a kernel
	// the cache can name without apt is used without asking: the default
	// choice is remembered, a release is looked up directly.
	if rel := cachedChoice(cacheDir, want); rel != "" {
		return openKernel(filepath.Join(cacheDir, rel), rel, "")
	}
	pkg, aptErr := resolvePackage(want)
	if aptErr != nil {
		// Offline, or apt lists never downloaded: any cached kernel still does.
		if rel := cachedFallback(cacheDir, want); rel != "" {
			return openKernel(filepath.Join(cacheDir, rel), rel, "")
		}
		return nil, fmt.Errorf("vmlab: %w: %v", errNoKernel, aptErr)
	}
	rel := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(cacheDir, rel)
	if !isComplete(dir) {
		unlock, err := lockFile(filepath.Join(cacheDir, ".lock"))
		if err != nil {
			return nil, err
		}
		if !isComplete(dir) { // another process may have fetched it meanwhile
			err = fetchKernel(cacheDir, pkg, rel, dir)
		}
		unlock()
		if err != nil {
			return nil, err
		}
	}
	if want == "" {
		// Only a cache hint: without it the next run asks apt again.
		_ = writeFileAtomic(filepath.Join(cacheDir, defaultFile), []byte(rel+"\n"))
	}
	return openKernel(dir, rel, pkg)
}

// defaultFile in the cache names the release the default choice resolved to.
const defaultFile = "default-release"

// cachedChoice returns the cached release that want names without asking
// apt: the remembered default, or a release given by name.
func cachedChoice(cacheDir, want string) string {
	var rel string
	switch {
	case want == "":
		b, _ := os.ReadFile(filepath.Join(cacheDir, defaultFile))
		rel = strings.TrimSpace(string(b))
	case want == "newest" || strings.HasPrefix(want, "linux-image-"):
		return ""
	default:
		rel = want
	}
	if rel == "" || strings.ContainsAny(rel, "/") || !isComplete(filepath.Join(cacheDir, rel)) {
		return ""
	}
	return rel
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// resolvePackage turns the EnvKernel choice into a kernel image package name,
// asking only apt's local package lists (no network).
func resolvePackage(want string) (string, error) {
	switch {
	case want == "":
		return imageDependency(metaPackage)
	case want == "newest":
		return newestCloudImage()
	case strings.HasPrefix(want, "linux-image-"):
		// A meta-package (linux-image-6.12-cloud-amd64) depends on the real
		// one; a real one depends on no other image.
		if dep, err := imageDependency(want); err == nil {
			return dep, nil
		}
		if _, err := aptCache("show", want); err != nil {
			return "", err
		}
		return want, nil
	default:
		return "linux-image-" + want, nil
	}
}

// realImage matches image packages that hold a kernel (release
// MAJOR.MINOR.PATCH-ABI or MAJOR.MINOR.PATCH+debN), not meta-packages.
var realImage = regexp.MustCompile(`^linux-image-[0-9]+\.[0-9]+\.[0-9]+[-+]`)

var imageDep = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s]*)`)

// imageDependency returns the kernel image package that pkg depends on.
func imageDependency(pkg string) (string, error) {
	out, err := aptCache("depends", pkg)
	if err != nil {
		return "", err
	}
	m := imageDep.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s depends on no linux-image-* package", pkg)
	}
	return m[1], nil
}

// newestCloudImage returns the cloud kernel image package with the highest
// kernel release apt knows.
func newestCloudImage() (string, error) {
	out, err := aptCache("search", "--names-only", `^linux-image-[0-9].*-cloud-amd64$`)
	if err != nil {
		return "", err
	}
	var best string
	for _, line := range strings.Split(out, "\n") {
		name, _, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(name, "linux-image-") || strings.HasSuffix(name, "-unsigned") {
			continue
		}
		if !realImage.MatchString(name) {
			continue // a meta-package such as linux-image-6.12-cloud-amd64
		}
		if best == "" || versionLess(best, name) {
			best = name
		}
	}
	if best == "" {
		return "", fmt.Errorf("apt-cache search found no linux-image-*-cloud-amd64")
	}
	return best, nil
}

func aptCache(args ...string) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", fmt.Errorf("apt-cache not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "apt-cache", args...).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache %s: %w (run apt-get update?)", strings.Join(args, " "), err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return "", fmt.Errorf("apt-cache %s: no result (run apt-get update?)", strings.Join(args, " "))
	}
	return string(out), nil
}

// cachedFallback returns the release to use from the cache alone: the asked
// release if cached, else (no explicit choice, or "newest") the newest
// cached one.
func cachedFallback(cacheDir, want string) string {
	rels := cachedReleases(cacheDir)
	if want != "" && want != "newest" {
		want = strings.TrimPrefix(want, "linux-image-")
		for _, r := range rels {
			if r == want {
				return r
			}
		}
		return ""
	}
	if len(rels) == 0 {
		return ""
	}
	return rels[len(rels)-1]
}

// cachedReleases lists the complete kernels in cacheDir, oldest first.
func cachedReleases(cacheDir string) []string {
	entries, _ := os.ReadDir(cacheDir)
	var rels []string
	for _, e := range entries {
		if e.IsDir() && isComplete(filepath.Join(cacheDir, e.Name())) {
			rels = append(rels, e.Name())
		}
	}
	sort.Slice(rels, func(i, j int) bool { return versionLess(rels[i], rels[j]) })
	return rels
}

func isComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, completeStamp))
	return err == nil
}

// kernelObtainable is Available's kernel check: a cached kernel, or apt knows
// one and the tools to unpack it exist.
func kernelObtainable(cacheDir string) error {
	want := os.Getenv(EnvKernel)
	if cachedFallback(cacheDir, want) != "" {
		return nil
	}
	for _, tool := range []string{"apt-get", "dpkg", "depmod"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("no kernel cached in %s and %s is missing", cacheDir, tool)
		}
	}
	pkg, err := resolvePackage(want)
	if err != nil {
		return fmt.Errorf("no kernel cached in %s: %v", cacheDir, err)
	}
	if !strings.HasPrefix(want, "linux-image-") && want != "" && want != "newest" {
		// A release name was taken on trust by resolvePackage.
		if _, err := aptCache("show", pkg); err != nil {
			return fmt.Errorf("no kernel cached in %s: %v", cacheDir, err)
		}
	}
	return nil
}

// fetchKernel downloads and unpacks pkg into dir. The caller holds the lock.
func fetchKernel(cacheDir, pkg, rel, dir string) error {
	// Fetches happen under the lock only: any other .fetch-* directory was
	// left by a process that died.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, ".fetch-*"))
	for _, d := range stale {
		os.RemoveAll(d)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return fmt.Errorf("vmlab: %w", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// apt-get download writes into its working directory.
	if err := runIn(ctx, tmp, "apt-get", "download", pkg); err != nil {
		return fmt.Errorf("vmlab: fetch kernel: %w", err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("vmlab: apt-get download %s left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := runIn(ctx, tmp, "dpkg", "-x", debs[0], root); err != nil {
		return fmt.Errorf("vmlab: unpack kernel: %w", err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return err
	}
	modDir := filepath.Join(root, "lib", "modules", rel)
	if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+rel)); err != nil {
		return fmt.Errorf("vmlab: %s holds no boot/vmlinuz-%s", pkg, rel)
	}
	if err := decompressModules(ctx, modDir); err != nil {
		return fmt.Errorf("vmlab: %s: %w", pkg, err)
	}
	if err := runIn(ctx, tmp, "depmod", "-b", root, rel); err != nil {
		return fmt.Errorf("vmlab: %w", err)
	}
	// Best effort: without it, boots take the slower vmlinuz path.
	if err := extractVmlinux(filepath.Join(root, "boot", "vmlinuz-"+rel), filepath.Join(root, "boot", "vmlinux-"+rel)); err != nil {
		_ = os.WriteFile(filepath.Join(root, vmlinuxFailed), []byte(err.Error()+"\n"), 0o644) // a note for people, as best effort
	}
	stamp := fmt.Sprintf("package=%s\nfetched=%s\n", pkg, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(root, completeStamp), []byte(stamp), 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir) // remains of an interrupted fetch, if any
	return os.Rename(root, dir)
}

// decompressModules unpacks *.ko.xz / *.ko.zst / *.ko.gz in place. Debian
// compresses modules since 6.x; busybox modprobe would first hand the
// compressed file to the kernel (an "Invalid ELF header" line per module) and
// then decompress it slowly inside the emulated CPU. Doing it once here keeps
// the console clean and boots faster.
func decompressModules(ctx context.Context, modDir string) error {
	byExt := map[string][]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
			if strings.HasSuffix(p, ext) {
				byExt[ext] = append(byExt[ext], p)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range byExt[".ko.gz"] {
		if err := gunzipFile(p); err != nil {
			return err
		}
	}
	tools := map[string][]string{".ko.xz": {"xz", "-d", "-q", "--"}, ".ko.zst": {"zstd", "-d", "-q", "--rm", "--"}}
	for ext, tool := range tools {
		files := byExt[ext]
		for len(files) > 0 {
			n := min(len(files), 500) // stay far below ARG_MAX
			if err := runIn(ctx, modDir, tool[0], append(tool[1:], files[:n]...)...); err != nil {
				return fmt.Errorf("decompress %s modules: %w", ext, err)
			}
			files = files[n:]
		}
	}
	return nil
}

func gunzipFile(p string) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	out, err := os.Create(strings.TrimSuffix(p, ".gz"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(p)
}

func openKernel(dir, rel, pkg string) (*KernelImage, error) {
	k := &KernelImage{
		Release:    rel,
		Package:    pkg,
		Vmlinuz:    filepath.Join(dir, "boot", "vmlinuz-"+rel),
		ModulesDir: filepath.Join(dir, "lib", "modules", rel),
	}
	if k.Package == "" {
		k.Package = "linux-image-" + rel
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return nil, fmt.Errorf("vmlab: cached kernel %s is broken (remove %s): %w", rel, dir, err)
	}
	if vmlinux := filepath.Join(dir, "boot", "vmlinux-"+rel); fileExists(vmlinux) {
		k.Vmlinux = vmlinux
	}
	mods, err := loadModuleIndex(k.ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("vmlab: cached kernel %s is broken (remove %s): %w", rel, dir, err)
	}
	k.mods = mods
	return k, nil
}

// vmlinuxFailed in a kernel's cache directory says why no vmlinux could be
// extracted (e.g. zstd missing for a 6.12 kernel).
const vmlinuxFailed = ".vmlinux-failed"

func runIn(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return nil
}

// lockFile takes an exclusive flock, so that concurrent test processes
// (go test ./... runs packages in parallel) fetch a kernel only once.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmlab: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("vmlab: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// versionLess compares version-like strings piecewise: runs of digits as
// numbers, anything else as text, so 6.1.0-56 < 6.12.117 and -9 < -10.
func versionLess(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		if x == y {
			continue
		}
		xd, yd := isDigits(x), isDigits(y)
		if xd && yd {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				return len(x) < len(y)
			}
		}
		return x < y
	}
	return len(pa) < len(pb)
}

var versionPart = regexp.MustCompile(`[0-9]+|[^0-9]+`)

func versionParts(s string) []string { return versionPart.FindAllString(s, -1) }

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readLines returns the non-empty lines of a file.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
