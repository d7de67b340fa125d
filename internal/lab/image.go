package lab

import (
	"archive/tar"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// image returns the path of the test image tarball, building it on first
// use.
func (l *Lab) image() (string, error) {
	l.imgOnce.Do(func() {
		start := time.Now()
		l.imgPath = filepath.Join(l.dir, "busybox-image.tar")
		l.imgErr = buildImage(l.imgPath, l.cfg.Busybox)
		if l.imgErr == nil {
			l.logf("lab: test image tarball built in %s", time.Since(start).Round(time.Millisecond))
		}
	})
	return l.imgPath, l.imgErr
}

// buildImage writes a rootfs tarball holding /bin/busybox (a static binary)
// and one /bin symlink per applet, plus a few directories and a minimal
// /etc/passwd and /etc/group.
func buildImage(path, busybox string) error {
	if f, err := elf.Open(busybox); err != nil {
		return fmt.Errorf("lab: busybox %s: %w", busybox, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				f.Close()
				return fmt.Errorf("lab: %s is dynamically linked; the test image needs busybox-static", busybox)
			}
		}
		f.Close()
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("lab: %s --list: %w", busybox, err)
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	mtime := time.Unix(0, 0)
	hdr := func(h *tar.Header) error {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		return tw.WriteHeader(h)
	}
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"proc/", 0o555}, {"root/", 0o700},
		{"sys/", 0o555}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"var/", 0o755}, {"var/www/", 0o755},
	} {
		if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, fl := range files {
		if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: fl.name, Mode: fl.mode, Size: int64(len(fl.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(fl.data); err != nil {
			return err
		}
	}
	n := 0
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("lab: %s --list printed no applets", busybox)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
