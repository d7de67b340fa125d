package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type record struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetDeleteSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "weft.db")
	s := open(t, path)
	err := s.Update(func(tx *Tx) error {
		for _, k := range []string{"pool/a|1", "pool/a|2", "pool/b|1"} {
			if err := tx.Put("addrs", k, record{Name: k}); err != nil {
				return err
			}
		}
		return tx.Put("networks", "n1", record{Name: "n1", N: 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	s.View(func(tx *Tx) error {
		var r record
		if err := tx.Get("networks", "n1", &r); err != nil || r.N != 7 {
			t.Errorf("after reopen: %+v %v", r, err)
		}
		if err := tx.Get("networks", "missing", &r); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing key: %v, want ErrNotFound", err)
		}
		if err := tx.Get("no-such-kind", "x", &r); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing kind: %v, want ErrNotFound", err)
		}
		var keys []string
		tx.ForEachPrefix("addrs", "pool/a|", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
		if strings.Join(keys, ",") != "pool/a|1,pool/a|2" {
			t.Errorf("prefix scan = %v", keys)
		}
		return nil
	})
	// A failed update changes nothing.
	boom := errors.New("boom")
	if err := s.Update(func(tx *Tx) error {
		tx.Delete("networks", "n1")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	s.View(func(tx *Tx) error {
		if !tx.Has("networks", "n1") {
			t.Error("a rolled back delete took effect")
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.Delete("networks", "never-there") }); err != nil {
		t.Errorf("deleting a missing record: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte(metaBucket))
		return b.Put([]byte("schema"), []byte("99"))
	})
	db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("opening a newer database: %v", err)
	}
}
