package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fill writes n records into each of two kinds and returns the file's path
// and its instance mark.
func fill(t *testing.T, n int) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "weft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.Put("networks", fmt.Sprintf("net-%04d", i), map[string]any{"id": fmt.Sprintf("net-%04d", i), "pad": strings.Repeat("x", 200)}); err != nil {
				return err
			}
			if err := tx.Put("endpoints", fmt.Sprintf("ep-%04d", i), map[string]any{"id": fmt.Sprintf("ep-%04d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := s.Instance()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, inst
}

func count(t *testing.T, s *Store, kind string) int {
	t.Helper()
	n := 0
	if err := s.View(func(tx *Tx) error {
		return tx.ForEach(kind, func(string, []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDamagedFiles: every kind of damage found by hand (an empty file, 8 KiB
// of a valid file, half of it, flipped bytes in a data page) opens without a
// crash: the file is kept aside, what can be read is salvaged, the new
// database has an instance mark of its own and takes writes.
func TestDamagedFiles(t *testing.T) {
	const records = 200
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		// whole: every record must come back (the damage spared them).
		whole bool
	}{
		{"empty", func(t *testing.T, p string) { os.Truncate(p, 0) }, false},
		{"truncated to 8 KiB", func(t *testing.T, p string) { os.Truncate(p, 8192) }, false},
		{"half", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()/2)
		}, false},
		{"flipped bytes in a data page", func(t *testing.T, p string) { flipDataPage(t, p) }, false},
		{"garbage meta pages", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			for i := range 8192 {
				b[i] ^= 0x5a
			}
			os.WriteFile(p, b, 0o600)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, oldInstance := fill(t, records)
			tc.damage(t, path)
			s, err := Open(path)
			if err != nil {
				t.Fatalf("Open of a damaged file failed: %v", err)
			}
			defer s.Close()
			rec := s.Recovery()
			if rec == nil {
				t.Fatal("a damaged file opened as if it were sound")
			}
			t.Logf("recovery: %s", rec)
			if rec.Problem == "" {
				t.Error("the recovery names no problem")
			}
			if tc.name != "empty" {
				if _, err := os.Stat(rec.KeptAs); err != nil {
					t.Errorf("damaged file not kept aside: %v", err)
				}
				if !strings.HasPrefix(filepath.Base(rec.KeptAs), "weft.db.damaged-") {
					t.Errorf("damaged file kept as %s", rec.KeptAs)
				}
			}
			if s.Instance() == oldInstance || len(s.Instance()) != instanceLen {
				t.Errorf("instance mark %q after recovery, was %q: a recovered database must not claim the old links", s.Instance(), oldInstance)
			}
			if got := count(t, s, "networks"); got != rec.Salvaged["networks"] {
				t.Errorf("%d networks in the new database, recovery says %d", got, rec.Salvaged["networks"])
			}
			if err := s.Update(func(tx *Tx) error { return tx.Put("networks", "new", map[string]string{"id": "new"}) }); err != nil {
				t.Errorf("the recovered database takes no writes: %v", err)
			}
		})
	}
}

// flipDataPage damages the header of the leaf page holding the records of
// "networks" found in the middle of the file.
func flipDataPage(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("net-0100"))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	page := i / os.Getpagesize() * os.Getpagesize()
	for j := page; j < page+16; j++ {
		b[j] = ^b[j]
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSoundFileKept: a sound file is opened as it is, with its mark, and no
// copy is made.
func TestSoundFileKept(t *testing.T) {
	path, inst := fill(t, 10)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Recovery() != nil {
		t.Fatalf("sound file reported as damaged: %s", s.Recovery())
	}
	if s.Instance() != inst {
		t.Errorf("instance mark changed from %s to %s", inst, s.Instance())
	}
	if n := count(t, s, "networks"); n != 10 {
		t.Errorf("%d networks, want 10", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only weft.db", len(entries))
	}
}

// TestPermissions: the directory is 0700 and the file 0600, also when they
// existed with wider modes (dockerd makes the propagated mount 0755) and
// under umask 0.
func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	path := filepath.Join(dir, "weft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Chmod(path, 0o666)
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", p, got, want)
		}
	}
}

// TestLockedIsNotDamage: a second opener waits on the lock and fails with a
// clear error, and the first one's file stays where it is.
func TestLockedIsNotDamage(t *testing.T) {
	path, _ := fill(t, 1)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open: %v, want a lock error", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("a locked file was treated as damaged: %d files in the state directory", len(entries))
	}
}
