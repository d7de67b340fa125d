package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A damaged bbolt file can crash the process that reads it: bbolt panics on
// pages it cannot make sense of, reads past the end of a truncated file
// through its memory map (a fault the Go runtime cannot always turn into a
// panic), and can recurse without end on a page that points at itself. So
// weft never opens an unverified file in its own process: a child process
// (this same binary, see child.go) checks it first, and, when it is damaged,
// salvages what it can read into a new file while the damaged one is kept
// aside for the operator. Running containers are never touched by any of
// this: links made under the damaged file carry its instance mark, which the
// new database does not have (see Instance).

// Time limits of the child processes. A check reads the whole file, which
// is small (kilobytes per network); a child that runs longer is stuck on a
// damaged page.
const (
	checkTimeout   = 20 * time.Second
	salvageTimeout = 40 * time.Second
)

// Recovery says what Open did about a database file it could not use as it
// was. Nil means the file was sound (or new).
type Recovery struct {
	Problem string // what was wrong with the file
	KeptAs  string // where the damaged file now is, "" if it was empty
	// Salvaged counts the records read back into the new database, by kind
	// (bbolt bucket); Lost names the kinds of which some records or all of
	// them could not be read.
	Salvaged map[string]int
	Lost     []string
}

// String is the log line: what was wrong, where the file went, what came back.
func (r *Recovery) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the state database was damaged (%s)", r.Problem)
	if r.KeptAs != "" {
		fmt.Fprintf(&b, "; the damaged file is kept as %s", r.KeptAs)
	}
	kinds := make([]string, 0, len(r.Salvaged))
	for k := range r.Salvaged {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Salvaged[k], k))
	}
	if len(parts) == 0 {
		b.WriteString("; no record could be read back")
	} else {
		fmt.Fprintf(&b, "; records read back: %s", strings.Join(parts, ", "))
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "; records lost from: %s", strings.Join(r.Lost, ", "))
	}
	return b.String()
}

// errLocked: another process holds the database (a second weft on the same
// state). Not damage: the file must stay where it is.
var errLocked = errors.New("state database is locked by another process (is a second weft running on the same state directory?)")

// vet makes path safe to open: a sound file is left alone; a damaged one is
// moved aside and replaced by what could be salvaged from it.
func vet(path string) (*Recovery, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	var problem string
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("state database %s is not a regular file; move it away", path)
	case fi.Size() == 0:
		problem = "the file is empty"
	default:
		err := runChild(jobCheck, path, "", checkTimeout, nil)
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("state database %s: %w", path, errLocked)
		}
		if err == nil {
			return nil, nil
		}
		problem = err.Error()
	}
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("state database %s is damaged (%s) and cannot be moved aside: %w", path, problem, err)
	}
	rec := &Recovery{Problem: problem, KeptAs: aside, Salvaged: map[string]int{}}
	if fi.Size() == 0 {
		os.Remove(aside) // nothing to keep
		rec.KeptAs = ""
		return rec, nil
	}
	salvaged(aside, path, rec)
	return rec, nil
}

// salvaged fills dst with what a child can read of src. Whatever happens,
// dst ends up either a verified database or absent.
func salvaged(src, dst string, rec *Recovery) {
	var report salvageReport
	err := runChild(jobSalvage, src, dst, salvageTimeout, &report)
	for k, n := range report.Read {
		rec.Salvaged[k] = n
	}
	rec.Lost = report.Lost
	if err != nil {
		rec.Lost = append(rec.Lost, "(salvage stopped: "+err.Error()+")")
	}
	if _, statErr := os.Stat(dst); statErr == nil {
		if err := runChild(jobCheck, dst, "", checkTimeout, nil); err != nil {
			os.Remove(dst)
			rec.Salvaged = map[string]int{}
			rec.Lost = append(rec.Lost, "(the salvaged copy failed its check: "+err.Error()+")")
		}
	}
}

// runChild runs one job of child.go in a fresh process of this binary and
// turns its outcome into an error (nil: success). A child that crashes or
// overruns its time is an error carrying the crash's first line.
func runChild(job, src, dst string, timeout time.Duration, report any) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot run the database check: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+job, childSrcEnv+"="+src, childDstEnv+"="+dst)
	cmd.Dir = filepath.Dir(src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot run the database check: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("reading it did not finish within %s", timeout)
	}
	if report != nil && stdout.Len() > 0 {
		json.Unmarshal(stdout.Bytes(), report)
	}
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == exitLocked {
		return errLocked
	}
	return errors.New(firstCrashLine(stderr.String(), err))
}

// firstCrashLine picks the line of a child's stderr that says what went
// wrong: its own message, or the Go runtime's panic or fatal error line.
func firstCrashLine(stderr string, waitErr error) string {
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "damaged: ") {
			l = strings.TrimPrefix(l, "damaged: ")
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			return l
		}
	}
	return "reading it crashed (" + waitErr.Error() + ")"
}
