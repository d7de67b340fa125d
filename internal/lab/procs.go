package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file finds and kills the processes that belong to the lab. A process
// belongs to the lab when any of these holds:
//   - it lives in one of the lab's network namespaces (anchors, dockerd,
//     containerd, shims, host-network plugins, commands run by Host.Run);
//   - it lives in the mount namespace of a lab host's anchor;
//   - it sits in a cgroup whose path has a component named weft-lab-*
//     (dockerd and everything it starts is put there, containers get it as
//     their --cgroup-parent, plugins get a cgroup below dockerd's);
//   - it descends from a process that belongs to the lab.
// Nothing else is ever signalled: the caller, its ancestors, PID 1 and
// kernel threads are protected explicitly, and the root namespaces are
// never accepted as lab namespaces.

type procInfo struct {
	pid, ppid int
	state     byte
	comm      string
	netns     uint64
	mntns     uint64
	cgroups   []string
}

// readProc reads what the selector needs about one process. ok is false
// when the process vanished or is a zombie (zombies cannot be killed and
// their namespaces are gone; their parent or init reaps them).
func readProc(pid int) (p *procInfo, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, false
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	open := bytes.IndexByte(stat, '(')
	end := bytes.LastIndexByte(stat, ')')
	if open < 0 || end < 0 || end+4 > len(stat) {
		return nil, false
	}
	fields := strings.Fields(string(stat[end+2:]))
	if len(fields) < 2 {
		return nil, false
	}
	p = &procInfo{pid: pid, state: fields[0][0], comm: string(stat[open+1 : end])}
	p.ppid, _ = strconv.Atoi(fields[1])
	if p.state == 'Z' || p.state == 'X' {
		return p, false
	}
	p.netns = nsLinkInode(dir + "/ns/net")
	p.mntns = nsLinkInode(dir + "/ns/mnt")
	if cg, err := os.ReadFile(dir + "/cgroup"); err == nil {
		for _, line := range strings.Split(string(cg), "\n") {
			// hierarchy-id:controllers:path
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 {
				p.cgroups = append(p.cgroups, parts[2])
			}
		}
	}
	return p, true
}

// nsLinkInode returns the inode from a /proc/PID/ns/* link ("net:[4026531992]"),
// 0 if unreadable.
func nsLinkInode(link string) uint64 {
	s, err := os.Readlink(link)
	if err != nil {
		return 0
	}
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return 0
	}
	n, _ := strconv.ParseUint(s[i+1:j], 10, 64)
	return n
}

// fdInode returns the inode of an open namespace file.
func fdInode(f *os.File) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// fileInode returns the inode of a namespace file such as /run/netns/NAME.
func fileInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// allProcs lists every live, non-zombie process, plus a map of every pid
// (zombies included) to its parent.
func allProcs() (live []*procInfo, parent map[int]int) {
	parent = map[int]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, parent
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if p != nil {
			parent[pid] = p.ppid
		}
		if ok {
			live = append(live, p)
		}
	}
	return live, parent
}

// procSelector describes a set of lab processes.
type procSelector struct {
	netns  map[uint64]bool
	mntns  map[uint64]bool
	cgroup func(component string) bool // matches one path component
}

func newSelector() *procSelector {
	return &procSelector{netns: map[uint64]bool{}, mntns: map[uint64]bool{}}
}

func (s *procSelector) addNetNS(ino uint64) {
	if ino != 0 {
		s.netns[ino] = true
	}
}

func (s *procSelector) addMntNS(ino uint64) {
	if ino != 0 {
		s.mntns[ino] = true
	}
}

// rootNamespaces are the namespaces of PID 1 and of this process; a lab
// selector must never contain them (that would select the whole machine).
func (s *procSelector) sanitize() {
	for _, pid := range []string{"1", "self"} {
		delete(s.netns, nsLinkInode("/proc/"+pid+"/ns/net"))
		delete(s.mntns, nsLinkInode("/proc/"+pid+"/ns/mnt"))
	}
}

func (s *procSelector) matches(p *procInfo) bool {
	if s.netns[p.netns] || s.mntns[p.mntns] {
		return true
	}
	if s.cgroup != nil {
		for _, path := range p.cgroups {
			for _, c := range strings.Split(path, "/") {
				if c != "" && s.cgroup(c) {
					return true
				}
			}
		}
	}
	return false
}

// protectedPIDs are never signalled: PID 1, kthreadd, this process and its
// ancestors.
func protectedPIDs(parent map[int]int) map[int]bool {
	prot := map[int]bool{0: true, 1: true, 2: true}
	for pid := os.Getpid(); pid > 0 && !prot[pid]; pid = parent[pid] {
		prot[pid] = true
	}
	return prot
}

// find returns the selected processes and all their live descendants.
func (s *procSelector) find() []*procInfo {
	s.sanitize()
	live, parent := allProcs()
	prot := protectedPIDs(parent)
	byPID := map[int]*procInfo{}
	children := map[int][]int{}
	for _, p := range live {
		byPID[p.pid] = p
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	sel := map[int]bool{}
	var queue []int
	for _, p := range live {
		if p.ppid == 2 || prot[p.pid] { // kernel threads, ourselves
			continue
		}
		if s.matches(p) {
			sel[p.pid] = true
			queue = append(queue, p.pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !sel[c] && !prot[c] {
				sel[c] = true
				queue = append(queue, c)
			}
		}
	}
	var out []*procInfo
	for pid := range sel {
		out = append(out, byPID[pid])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// kill signals every selected process (SIGTERM first when grace > 0, then
// SIGKILL) and returns once none is left, or an error naming the survivors
// after a deadline. Processes are re-scanned every round, so children forked
// while killing are caught too.
func (s *procSelector) kill(grace time.Duration) error {
	if grace > 0 {
		ps := s.find()
		if len(ps) == 0 {
			return nil
		}
		for _, p := range ps {
			_ = syscall.Kill(p.pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) && len(s.find()) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ps := s.find()
		if len(ps) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range ps {
				names = append(names, fmt.Sprintf("%d(%s)", p.pid, p.comm))
			}
			return fmt.Errorf("lab processes survived SIGKILL: %s", strings.Join(names, " "))
		}
		for _, p := range ps {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	_, ok := readProc(pid)
	return ok
}

// cgroupMounts returns the mount points of all cgroup hierarchies (v1 and
// v2) of this mount namespace whose root is the hierarchy root.
func cgroupMounts() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mountInfo() {
		if (m.fstype == "cgroup" || m.fstype == "cgroup2") && m.root == "/" && !seen[m.point] {
			seen[m.point] = true
			out = append(out, m.point)
		}
	}
	return out
}

// ensureCgroup creates <hierarchy>/<rel> in every hierarchy (copying the
// cpuset of the parent where the cpuset controller needs it) and returns the
// cgroup.procs files a process must write its pid to in order to join.
func ensureCgroup(rel string) ([]string, error) {
	var procs []string
	for _, mp := range cgroupMounts() {
		dir := mp
		for _, comp := range strings.Split(rel, "/") {
			parent := dir
			dir = filepath.Join(dir, comp)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				return nil, err
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				cur, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || len(bytes.TrimSpace(cur)) > 0 {
					continue
				}
				val, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
					return nil, fmt.Errorf("cgroup %s: %w", filepath.Join(dir, f), err)
				}
			}
		}
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}
	return procs, nil
}

// removeCgroups removes, in every hierarchy, the top-level cgroups whose
// name satisfies match, deepest first. Cgroups still holding processes
// cannot be removed; that is retried for a few seconds.
func removeCgroups(match func(name string) bool) error {
	var errs []string
	for _, mp := range cgroupMounts() {
		ents, err := os.ReadDir(mp)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || !match(e.Name()) {
				continue
			}
			dir := filepath.Join(mp, e.Name())
			var err error
			for i := 0; i < 50; i++ {
				if err = rmdirTree(dir); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing cgroups: %s", strings.Join(errs, "; "))
	}
	return nil
}

// rmdirTree removes a cgroup directory and its child cgroups (cgroupfs
// directories are removed with rmdir alone; their files are virtual).
func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && err != syscall.ENOENT {
		return fmt.Errorf("rmdir %s: %w", dir, err)
	}
	return nil
}

type mountEntry struct {
	root, point, fstype string
}

// mountInfo parses /proc/self/mountinfo.
func mountInfo() []mountEntry {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			root:   unescapeMount(fields[3]),
			point:  unescapeMount(fields[4]),
			fstype: fields[sep+1],
		})
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 etc.) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder lazily unmounts every mount (of this mount namespace) at or
// below dir, deepest first. The lab makes its mounts in private mount
// namespaces, so normally there is nothing to do here.
func unmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	var points []string
	for _, m := range mountInfo() {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			points = append(points, m.point)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []string
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Sprintf("umount %s: %v", p, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removePluginCgroups removes the top-level cgroups named after the managed
// plugins found in a dockerd data-root (<data-root>/plugins/<64-hex id>).
// runc (1.1, cgroup v1 + unified hybrid) resolves a plugin's relative
// cgroup path against dockerd's cgroup in the v1 hierarchies but against
// the root in the unified one, so every plugin that ever ran leaves an
// empty /sys/fs/cgroup/unified/<id> behind. Only empty cgroups can be
// removed, so this never disturbs a running process.
func removePluginCgroups(dataRoot string) {
	ents, err := os.ReadDir(filepath.Join(dataRoot, "plugins"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !isContainerID(e.Name()) {
			continue
		}
		for _, mp := range cgroupMounts() {
			dir := filepath.Join(mp, e.Name())
			for i := 0; i < 20; i++ {
				err := rmdirTree(dir)
				if err == nil || !errors.Is(err, syscall.EBUSY) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// isContainerID reports whether s looks like a Docker object id (64 hex).
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
