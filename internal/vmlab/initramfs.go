package vmlab

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// busyboxPath is the static busybox (Debian's busybox-static) put into the
// guest as its shell and tools.
const busyboxPath = "/bin/busybox"

// guestBinDir holds the test binary in the guest.
const guestBinDir = "/vmlab"

// outputTTY carries the test binary's output; the console (ttyS0) carries the
// kernel's and /init's messages, so they never interleave with test lines.
const outputTTY = "/dev/ttyS1"

// initramfsCompressed selects gzip for the initramfs. Off: qemu loads the
// image by fw_cfg DMA in no time, while inflating it in the emulated CPU
// made each boot about 0.4 s slower, and compressing it on the host cost
// 0.2 s more (measured with a 20 MB image).
const initramfsCompressed = false

func checkBusybox(p string) error {
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("%s missing (apt-get install busybox-static)", p)
	}
	if err := checkStatic(p); err != nil {
		return fmt.Errorf("%s is not static (apt-get install busybox-static): %v", p, err)
	}
	return nil
}

// image is everything one initramfs holds besides the fixed skeleton.
type image struct {
	kernel  *KernelImage
	modules []string // closure of DefaultModules and Spec.Modules
	binary  string   // host path of the test binary
	init    []byte   // the /init script
	files   *fileSet
}

// guestBinary is where the test binary lives in the guest.
func guestBinary(host string) string { return path.Join(guestBinDir, filepath.Base(host)) }

// writeInitramfs writes the newc archive (gzipped if initramfsCompressed) to w.
func writeInitramfs(w io.Writer, im *image) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var out io.Writer = bw
	var zw *gzip.Writer
	if initramfsCompressed {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		out = zw
	}
	c := newCPIOWriter(out)

	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc", "var/tmp",
		"bin", "sbin", "usr/bin", "usr/sbin", hostCmdDir} {
		c.mkdirAll(d)
	}
	c.charDev("dev/console", 0o600, 5, 1)
	c.symlink("var/run", "/run") // iproute2 and netns use /var/run/netns
	c.bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.bytes("etc/group", 0o644, []byte("root:x:0:\n"))
	c.bytes("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"))
	for _, f := range []string{"/etc/protocols", "/etc/services", "/etc/ethertypes"} {
		if err := addHostFile(c, f, f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}

	if err := addHostFile(c, "bin/busybox", busyboxPath); err != nil {
		return err
	}
	applets, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "bin/busybox" {
			c.symlink(a, "/bin/busybox")
		}
	}

	modDir := path.Join("lib/modules", im.kernel.Release)
	ix := im.kernel.mods
	for _, m := range im.modules {
		if err := addHostFile(c, path.Join(modDir, ix.path[m]), filepath.Join(ix.dir, ix.path[m])); err != nil {
			return err
		}
	}
	meta := ix.metadata(im.modules)
	for _, name := range []string{"modules.dep", "modules.alias", "modules.builtin"} {
		c.bytes(path.Join(modDir, name), 0o644, meta[name])
	}

	first := map[string]string{}                                 // host file -> guest path it was added at
	for _, g := range slices.Sorted(maps.Keys(im.files.files)) { // sorted: reproducible archives
		h := im.files.files[g]
		if prev, ok := first[h]; ok { // e.g. the loader at /lib64 and in /lib/x86_64-linux-gnu
			c.symlink(g, "/"+clean(prev))
			continue
		}
		first[h] = g
		if err := addHostFile(c, g, h); err != nil {
			return err
		}
	}
	for _, g := range slices.Sorted(maps.Keys(im.files.links)) { // sorted: reproducible archives
		c.symlink(g, im.files.links[g])
	}
	if err := addHostFile(c, guestBinary(im.binary), im.binary); err != nil {
		return err
	}
	c.bytes("init", 0o755, im.init)

	if err := c.close(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// addHostFile copies host file src into the archive at guest path dst,
// keeping its permission bits.
func addHostFile(c *cpioWriter, dst, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	c.file(dst, uint32(st.Mode().Perm()), st.Size(), f)
	return c.err
}

// initScript returns the guest's /init: mount the API filesystems, bring lo
// up, load the modules asked for, run the binary with its output on
// outputTTY, report its exit code after a marker only this run knows, power
// off. Each step's failure is reported rather than fatal, so the host always
// gets the console to diagnose from.
func initScript(nonce string, modules []string, binary string, args, env []string, dir string, rootTmpfs bool) []byte {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("#!/bin/sh")
	p("# /init of a vmlab VM, generated for one run.")
	if rootTmpfs {
		// Copy the initramfs into a tmpfs and start over from there:
		// switch_root empties the initramfs, so the copy is not kept twice.
		p("if [ ! -e /%s ]; then", rootTmpfsMark)
		p("  /bin/busybox mkdir /.root && /bin/busybox mount -t tmpfs -o mode=0755 tmpfs /.root")
		p("  for f in /*; do /bin/busybox cp -a \"$f\" /.root/ || echo \"vmlab: copying $f to the tmpfs root failed\"; done")
		p("  /bin/busybox touch /.root/%s", rootTmpfsMark)
		p("  exec /bin/busybox switch_root /.root /init")
		p("fi")
	}
	p("export PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp %s=1", hostCmdDir, EnvInVM)
	p("mount -t proc proc /proc")
	p("mount -t sysfs sysfs /sys")
	p("mount -t devtmpfs devtmpfs /dev")
	p("mkdir -p /dev/pts /dev/shm")
	p("mount -t devpts devpts /dev/pts")
	p("mount -t tmpfs tmpfs /dev/shm")
	p("mount -t tmpfs -o mode=0755 tmpfs /run")
	p("mount -t tmpfs tmpfs /tmp")
	p("mount -t cgroup2 cgroup2 /sys/fs/cgroup")
	p("echo /sbin/modprobe > /proc/sys/kernel/modprobe")
	p("/bin/busybox ip link set lo up")
	// raw: no \n -> \r\n translation and no echo on the output line.
	p("stty -F %s raw -echo 115200", outputTTY)
	// fd 3 keeps the output tty open to the end: its last close waits until
	// the UART has sent everything, before poweroff.
	p("exec 3>%s", outputTTY)
	p("rc=0")
	for _, m := range modules {
		p("modprobe %s || { echo 'vmlab: modprobe %s failed' >&3; rc=125; }", shQuote(m), m)
	}
	p("echo \"%s $(cut -d' ' -f1 /proc/uptime)\" >&3", startMarker(nonce))
	p("if [ $rc = 0 ]; then")
	for _, e := range env {
		p("  export %s", shQuote(e))
	}
	cmd := []string{shQuote(binary)}
	for _, a := range args {
		cmd = append(cmd, shQuote(a))
	}
	p("  mkdir -p %s && cd %s && %s </dev/null >&3 2>&3", shQuote(dir), shQuote(dir), strings.Join(cmd, " "))
	p("  rc=$?")
	p("fi")
	// The leading newline ends a last output line that lacks one.
	p("printf '\\n%s %%s %%s\\n' \"$rc\" \"$(cut -d' ' -f1 /proc/uptime)\" >&3", exitMarker(nonce))
	p("exec 3>&-")
	p("poweroff -f")
	return []byte(b.String())
}

// rootTmpfsMark, at the root, says /init runs on the tmpfs copy already.
const rootTmpfsMark = ".vmlab-root-tmpfs"

func startMarker(nonce string) string { return "vmlab-start-" + nonce }
func exitMarker(nonce string) string  { return "vmlab-exit-" + nonce }

// shQuote quotes s for the shell.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
