package vmlab

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostCmdDir is where Spec.HostCommands land in the guest; it comes first in
// the guest's PATH, ahead of busybox's applets of the same name (ip, ping).
const hostCmdDir = "/usr/local/bin"

// fileSet maps guest paths to host paths of regular files, plus symlinks.
type fileSet struct {
	files map[string]string // guest path -> host file
	links map[string]string // guest path -> link target
}

func newFileSet() *fileSet {
	return &fileSet{files: map[string]string{}, links: map[string]string{}}
}

// addTree adds host path src (a file or a directory, recursively) at guest
// path dst. Symlinks inside a directory stay symlinks; a symlink given as src
// is followed.
func (s *fileSet) addTree(dst, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		s.files[dst] = src
		return nil
	}
	src, err = filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		g := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s.links[g] = t
		case d.Type().IsRegular():
			s.files[g] = p
		}
		return nil
	})
}

// addHostCommands adds each command (found in the host's PATH) at
// hostCmdDir/NAME, with the shared libraries it and its helpers need at the
// paths the host's dynamic loader uses. iptables (xtables-*-multi) also gets
// its extension directory, which it dlopens (no DT_NEEDED names them).
func (s *fileSet) addHostCommands(names []string) error {
	var elfs []string
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("host command %s: %w", name, err)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("host command %s: %w", name, err)
		}
		// Copied under the asked name: multi-call binaries such as
		// xtables-nft-multi dispatch on argv[0].
		s.files[filepath.Join(hostCmdDir, filepath.Base(name))] = real
		elfs = append(elfs, real)
		if strings.HasPrefix(filepath.Base(real), "xtables-") {
			dirs, _ := filepath.Glob("/usr/lib/*/xtables")
			for _, d := range dirs {
				if err := s.addTree(d, d); err != nil {
					return err
				}
				ext, _ := filepath.Glob(filepath.Join(d, "*.so"))
				elfs = append(elfs, ext...)
			}
		}
	}
	return s.addLibraries(elfs)
}

// addLibraries adds the shared libraries the ELF files need, at the paths
// the host's dynamic loader uses.
func (s *fileSet) addLibraries(elfs []string) error {
	libs, err := sharedLibraries(elfs)
	if err != nil {
		return err
	}
	for guest, host := range libs {
		s.files[guest] = host
	}
	return nil
}

// addPrograms adds each host executable (programs: guest path -> host path)
// at its guest path, with the shared libraries it needs.
func (s *fileSet) addPrograms(programs map[string]string) error {
	var elfs []string
	for guest, host := range programs {
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return fmt.Errorf("program %s: %w", guest, err)
		}
		if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("program %s: %s is not an executable file", guest, host)
		}
		s.files[guest] = real
		elfs = append(elfs, real)
	}
	return s.addLibraries(elfs)
}

// libDirs are searched for a library no RUNPATH finds: the default search
// path of Debian's amd64 dynamic loader.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// sharedLibraries returns what files need from the dynamic loader (guest
// path -> host file): the loader itself and every DT_NEEDED library,
// transitively, each at the path the guest's loader will search. Done with
// debug/elf rather than ldd: ldd runs the loader once per file (half a
// second for iptables's 120 extensions), this takes milliseconds.
func sharedLibraries(files []string) (map[string]string, error) {
	libs := map[string]string{}
	seen := map[string]bool{}
	queue := append([]string(nil), files...)
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		interp, needed, paths, err := elfDeps(f)
		if err != nil {
			return nil, err
		}
		if interp != "" {
			if err := addLib(libs, interp); err != nil {
				return nil, err
			}
		}
		dirs := append(searchDirs(f, paths), libDirs...)
		for _, soname := range needed {
			if seen[soname] {
				continue
			}
			seen[soname] = true
			found := ""
			for _, d := range dirs {
				if p := filepath.Join(d, soname); fileExists(p) {
					found = p
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, found in none of %s", f, soname, strings.Join(dirs, ":"))
			}
			if err := addLib(libs, found); err != nil {
				return nil, err
			}
			queue = append(queue, found)
		}
	}
	return libs, nil
}

// elfDeps reads f's interpreter, DT_NEEDED and DT_RUNPATH/DT_RPATH. A file
// that is not ELF (a script) has none.
func elfDeps(f string) (interp string, needed, paths []string, err error) {
	e, err := elf.Open(f)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return "", nil, nil, nil
		}
		return "", nil, nil, err
	}
	defer e.Close()
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, nil, fmt.Errorf("%s: interpreter: %w", f, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, _ = e.ImportedLibraries()
	runpath, _ := e.DynString(elf.DT_RUNPATH)
	rpath, _ := e.DynString(elf.DT_RPATH)
	return interp, needed, append(runpath, rpath...), nil
}

// searchDirs expands DT_RUNPATH/DT_RPATH entries ($ORIGIN is f's directory).
func searchDirs(f string, paths []string) []string {
	var dirs []string
	for _, p := range paths {
		for _, d := range strings.Split(p, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", filepath.Dir(f))
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// addLib records library path p (as the loader names it) with its real file.
func addLib(libs map[string]string, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("library %s: %w", p, err)
	}
	libs[p] = real
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// checkStatic fails unless f is a static executable, as everything the VM
// runs without Spec.HostCommands must be: the guest has no libc.
func checkStatic(f string) error {
	e, err := elf.Open(f)
	if err != nil {
		return fmt.Errorf("%s: not an ELF executable: %w", f, err)
	}
	defer e.Close()
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the VM has no libc (build with CGO_ENABLED=0)", f)
		}
	}
	return nil
}
