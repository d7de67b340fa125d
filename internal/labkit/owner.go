package labkit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// owner names a process so that its death can be proven later: a pid alone
// may be reused, but not together with the start time, and pids only mean
// something inside one pid namespace.
type owner struct {
	pidNS uint64 // inode of /proc/PID/ns/pid
	pid   int
	start uint64 // clock ticks after boot, field 22 of /proc/PID/stat
}

// named counts the names OwnedName gave out: unique within the process, as
// the owner part is between processes.
var named atomic.Uint64

// OwnedName returns a namespace name: prefix, then this process's pid,
// start time and pid namespace, then a serial number, e.g.
// weft-t-4711-1a2b3c-effffffc-7. ClearStaleNetns reads the owner back.
func OwnedName(prefix string) (string, error) {
	o, err := processOwner(os.Getpid())
	if err != nil {
		return "", err
	}
	return o.name(prefix, strconv.FormatUint(named.Add(1), 10)), nil
}

func (o owner) name(prefix, suffix string) string {
	return fmt.Sprintf("%s%d-%x-%x-%s", prefix, o.pid, o.start, o.pidNS, suffix)
}

// parseOwner reads the owner out of a name made by OwnedName with prefix.
func parseOwner(prefix, name string) (owner, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return owner{}, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 4 || f[3] == "" {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 16, 64)
	pidNS, err3 := strconv.ParseUint(f[2], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{pidNS: pidNS, pid: pid, start: start}, true
}

// processOwner reads pid's identity from /proc, as seen from this process's
// pid namespace.
func processOwner(pid int) (owner, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return owner{}, fmt.Errorf("stat /proc/self/ns/pid: %w", err)
	}
	start, err := startTime(pid)
	if err != nil {
		return owner{}, err
	}
	return owner{pidNS: st.Ino, pid: pid, start: start}, nil
}

// startTime reads field 22 of /proc/PID/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted after its last ")".
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	const field = 22 - 3 // f[0] is field 3
	if len(f) <= field {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[field], 10, 64)
}

// dead reports whether o's process is proven gone: it lived in this pid
// namespace, and no process with its pid and start time exists now. An
// owner from another pid namespace, or an unreadable /proc entry, proves
// nothing.
func (o owner) dead(self owner) bool {
	if o.pidNS != self.pidNS {
		return false
	}
	start, err := startTime(o.pid)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	return err == nil && start != o.start
}

// ClearStaleNetns removes the namespaces in NetnsDir named by OwnedName with
// prefix whose creating process is proven dead. Namespaces of live
// processes (other go test binaries, other people's runs in other mount
// namespaces) and names it cannot read an owner from are left alone. It
// returns the names removed; err joins what could not be removed.
func ClearStaleNetns(prefix string) (removed []string, err error) {
	self, err := processOwner(os.Getpid())
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range ListNetns(prefix) {
		o, ok := parseOwner(prefix, name)
		if !ok || !o.dead(self) {
			continue
		}
		if err := DeleteNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
