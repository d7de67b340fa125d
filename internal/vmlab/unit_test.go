package vmlab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry of a newc archive as the kernel would read it.
type cpioEntry struct {
	name         string
	mode         uint32
	data         string
	rmajor, rmin uint32
}

// readNewc parses a newc archive strictly: magic, hex fields, 4-byte
// alignment of names and data, the trailer last.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("entry at %d: field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 || off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at offset %d", off)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(namesize)-1])
		if b[off+110+int(namesize)-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", name)
		}
		off = align4(off + 110 + int(namesize))
		data := string(b[off : off+int(size)])
		off = align4(off + int(size))
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, mode, data, rmaj, rmin})
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.bytes("/usr/local/bin/x", 0o755, []byte("12345")) // parents made first
	c.bytes("etc/empty", 0o644, nil)
	c.symlink("bin/sh", "/bin/busybox")
	c.charDev("dev/console", 0o600, 5, 1)
	c.mkdirAll("usr/local") // already there: no second entry
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	want := []cpioEntry{
		{"usr", cpioDir | 0o755, "", 0, 0},
		{"usr/local", cpioDir | 0o755, "", 0, 0},
		{"usr/local/bin", cpioDir | 0o755, "", 0, 0},
		{"usr/local/bin/x", cpioFile | 0o755, "12345", 0, 0},
		{"etc", cpioDir | 0o755, "", 0, 0},
		{"etc/empty", cpioFile | 0o644, "", 0, 0},
		{"bin", cpioDir | 0o755, "", 0, 0},
		{"bin/sh", cpioSymlink | 0o777, "/bin/busybox", 0, 0},
		{"dev", cpioDir | 0o755, "", 0, 0},
		{"dev/console", cpioCharDev | 0o600, "", 5, 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("archive holds\n%v\nwant\n%v", got, want)
	}

	// The reference implementation agrees, where installed.
	if _, err := exec.LookPath("cpio"); err != nil {
		return
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v: %s", err, out)
	}
	if n := len(strings.Fields(string(out))); n != len(want) {
		t.Errorf("cpio -it lists %d entries, want %d:\n%s", n, len(want), out)
	}
}

func TestVersionLess(t *testing.T) {
	ordered := []string{"6.1.0-9-cloud-amd64", "6.1.0-10-cloud-amd64", "6.1.0-56-cloud-amd64",
		"6.12.100+deb12-cloud-amd64", "6.12.117+deb12-cloud-amd64"}
	for i := range ordered {
		for j := range ordered {
			if got := versionLess(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("versionLess(%s, %s) = %v", ordered[i], ordered[j], got)
			}
		}
	}
}

func TestModuleIndex(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.dep", "kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/llc/llc.ko\n"+
		"kernel/net/802/garp.ko: kernel/net/llc/llc.ko\nkernel/net/llc/llc.ko:\n"+
		"kernel/crypto/ghash-generic.ko:\nkernel/drivers/net/dummy.ko:\n")
	write("modules.builtin", "kernel/net/ipv6/ipv6.ko\n")
	write("modules.alias", "alias rtnl-link-vlan 8021q\nalias crypto-ghash ghash_generic\nalias rtnl-link-dummy dummy\n")
	ix, err := loadModuleIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, missing := ix.closure([]string{"8021q", "ghash-generic", "ipv6", "nosuch"})
	if got := strings.Join(mods, " "); got != "llc garp 8021q ghash_generic" {
		t.Errorf("closure = %s, want dependencies first", got)
	}
	if fmt.Sprint(missing) != "[nosuch]" {
		t.Errorf("missing = %v, want [nosuch] (ipv6 is built in)", missing)
	}
	meta := ix.metadata(mods)
	if dep := string(meta["modules.dep"]); strings.Contains(dep, "dummy") ||
		!strings.Contains(dep, "kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/llc/llc.ko\n") {
		t.Errorf("modules.dep subset:\n%s", dep)
	}
	if alias := string(meta["modules.alias"]); alias != "alias rtnl-link-vlan 8021q\nalias crypto-ghash ghash_generic\n" {
		t.Errorf("modules.alias subset:\n%s", alias)
	}
}

func TestDefaultModulesExist(t *testing.T) {
	k := cachedKernel(t)
	_, missing := k.mods.closure(DefaultModules)
	if len(missing) > 0 {
		t.Errorf("kernel %s lacks DefaultModules %v", k.Release, missing)
	}
}

// cachedKernel returns the default kernel if it is cached, else skips.
func cachedKernel(t *testing.T) *KernelImage {
	t.Helper()
	if cachedFallback(CacheDir(), os.Getenv(EnvKernel)) == "" {
		t.Skip("no kernel cached")
	}
	k, err := Kernel("")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLZ4Block(t *testing.T) {
	// "abc" as literals, then a match of 9 bytes at offset 3 (overlapping:
	// repeats "abc"), then the literals "xyz".
	block := []byte{0x35, 'a', 'b', 'c', 3, 0, 0x30, 'x', 'y', 'z'}
	got, err := lz4Block(nil, block)
	if err != nil || string(got) != "abcabcabcabcxyz" {
		t.Errorf("lz4Block = %q, %v", got, err)
	}
	if _, err := lz4Block(nil, []byte{0x10, 'a', 9, 0}); err == nil {
		t.Error("a match before the start of the output was accepted")
	}
}

func TestExtractVmlinux(t *testing.T) {
	k := cachedKernel(t)
	out := filepath.Join(t.TempDir(), "vmlinux")
	if err := extractVmlinux(k.Vmlinuz, out); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("lz4"); err != nil {
		return
	}
	// Cross-check the Go LZ4 decoder against the lz4 tool.
	img, _ := os.ReadFile(k.Vmlinuz)
	payload, err := bzImagePayload(img)
	if err != nil || !bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}) {
		return // not LZ4
	}
	cmd := exec.Command("lz4", "-dc")
	cmd.Stdin = bytes.NewReader(payload[:len(payload)-4])
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("lz4 -dc: %v", err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Errorf("Go LZ4 decoding differs from lz4 -dc (%d vs %d bytes)", len(got), len(want))
	}
}

func TestCollector(t *testing.T) {
	var sink bytes.Buffer
	c := &collector{start: "vmlab-start-n", exit: "vmlab-exit-n", sink: &sink}
	in := "vmlab-start-n 1.50\r\nline 1\n\nline 3\nno newline\nvmlab-exit-n 3 2.00\n"
	c.read(strings.NewReader(in))
	if want := "line 1\n\nline 3\nno newline\n"; c.output.String() != want || sink.String() != want {
		t.Errorf("output %q, sink %q, want %q", c.output.String(), sink.String(), want)
	}
	if !c.started || c.guestUptime.Seconds() != 1.5 || !c.exited || c.exitCode != 3 {
		t.Errorf("collector = %+v", c)
	}

	// Output ending in a newline: the empty line /init prints before the
	// marker is not output.
	c = &collector{start: "s", exit: "vmlab-exit-n"}
	c.read(strings.NewReader("last\n\nvmlab-exit-n 0 1\n"))
	if c.output.String() != "last\n" {
		t.Errorf("output %q, want %q", c.output.String(), "last\n")
	}

	// A marker inside a line still ends the run; the text before it is output.
	c = &collector{start: "s", exit: "vmlab-exit-n"}
	c.read(strings.NewReader("partialvmlab-exit-n 0 1\n"))
	if c.output.String() != "partial\n" || !c.exited {
		t.Errorf("glued marker: output %q, exited %v", c.output.String(), c.exited)
	}
}

func TestInitScriptQuoting(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	// The generated command line must reach the binary verbatim.
	args := []string{"plain", "with space", "it's", `$HOME "q" \x`, ""}
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, shQuote(a))
	}
	script := "set -- " + strings.Join(quoted, " ") + `; for a in "$@"; do printf '[%s]' "$a"; done`
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "[plain][with space][it's][$HOME \"q\" \\x][]"
	if string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	script = string(initScript("n", []string{"8021q"}, "/vmlab/x.test", []string{"-test.v"}, []string{"A=b c"}, "/d", false))
	for _, s := range []string{"modprobe '8021q'", "export 'A=b c'", "cd '/d' && '/vmlab/x.test' '-test.v'", "poweroff -f", "WEFT_IN_VM=1"} {
		if !strings.Contains(script, s) {
			t.Errorf("init script lacks %q:\n%s", s, script)
		}
	}
	if strings.Contains(script, "switch_root") {
		t.Errorf("init script without RootTmpfs switches root:\n%s", script)
	}
	script = string(initScript("n", nil, "/vmlab/x.test", nil, nil, "/", true))
	if !strings.Contains(script, "switch_root /.root /init") {
		t.Errorf("init script with RootTmpfs does not switch root:\n%s", script)
	}
}

func TestSharedLibrariesMatchLdd(t *testing.T) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip")
	}
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	got, err := sharedLibraries([]string{ip})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ldd", ip).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			lib = f[2]
		case len(f) == 2 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		real, _ := filepath.EvalSymlinks(lib)
		found := false
		for _, h := range got {
			found = found || h == real
		}
		if !found {
			t.Errorf("ldd names %s (%s), sharedLibraries does not: %v", lib, real, got)
		}
	}
	if err := checkStatic(ip); err == nil {
		t.Errorf("checkStatic(%s) accepted a dynamic binary", ip)
	}
	if err := checkStatic(busyboxPath); err != nil && fileExists(busyboxPath) {
		t.Errorf("checkStatic(busybox): %v", err)
	}
}
