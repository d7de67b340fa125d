package vmlab

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as an
// initramfs. It is written here rather than piped through cpio(1) because the
// archive is assembled from scattered host files under chosen guest names,
// owners and modes: with cpio(1) that needs a staging copy of every file (the
// test binary alone is tens of MB) and root-owned entries need fakeroot or
// root. The format is 110 bytes of hex header per entry.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{"": true, ".": true, "/": true}}
}

// File type bits of the header's mode field.
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

func (c *cpioWriter) header(name string, mode uint32, size int64, nlink uint32, rmajor, rminor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	_, c.err = io.WriteString(c.w, hdr+name+"\x00")
	c.pad(len(hdr) + len(name) + 1)
}

// pad writes zeros up to the next multiple of 4 after n bytes.
func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// clean makes a guest path relative ("usr/bin/ip"), as cpio archives are.
func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// mkdirAll adds the directory name and any missing parents: the kernel does
// not create parents while unpacking.
func (c *cpioWriter) mkdirAll(name string) {
	name = clean(name)
	if c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.header(name, cpioDir|0o755, 0, 2, 0, 0)
}

// file adds a regular file with size bytes read from r.
func (c *cpioWriter) file(name string, perm uint32, size int64, r io.Reader) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, cpioFile|perm, size, 1, 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("cpio: %s: wrote %d of %d bytes: %w", name, n, size, err)
		return
	}
	c.pad(int(size % 4))
}

// bytes adds a regular file holding data.
func (c *cpioWriter) bytes(name string, perm uint32, data []byte) {
	c.file(name, perm, int64(len(data)), strings.NewReader(string(data)))
}

// symlink adds name pointing at target.
func (c *cpioWriter) symlink(name, target string) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, cpioSymlink|0o777, int64(len(target)), 1, 0, 0)
	if c.err == nil {
		_, c.err = io.WriteString(c.w, target)
		c.pad(len(target))
	}
}

// charDev adds a character device node.
func (c *cpioWriter) charDev(name string, perm, major, minor uint32) {
	name = clean(name)
	c.mkdirAll(path.Dir(name))
	c.header(name, cpioCharDev|perm, 0, 1, major, minor)
}

// close writes the trailer and returns the first error met.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 1, 0, 0)
	return c.err
}
