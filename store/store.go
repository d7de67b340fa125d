// Package store keeps weft's durable state in an embedded bbolt database.
//
// Records are JSON documents grouped by kind (one bbolt bucket per kind).
// Every Update is one fsync'd transaction: a request handler commits its
// change before it answers dockerd, so a plugin killed at any moment leaves
// either the old state or the new one, never half of it.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is written into every new database; Open refuses a newer one
// so an old binary never misreads state written by a newer weft.
//
//	1: records as JSON, one bucket per kind.
//	2: adds the instance mark (meta "instance"), which weft writes on every
//	   link it makes; a version 1 database gets one when it is opened.
const SchemaVersion = 2

const (
	metaBucket  = "meta"
	schemaKey   = "schema"
	instanceKey = "instance"
)

// Store is an open state database. It is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	instance string
	recovery *Recovery
}

// Open opens (creating if needed) the database file at path, in a directory
// only root can enter. A damaged file is never opened as it is: it is kept
// aside, what can be read of it goes into a new file, and Recovery says so
// (see vet.go).
func Open(path string) (*Store, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	// The directory may predate weft (dockerd makes the propagated mount
	// 0755): container addresses and encryption keys are nobody else's.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict state directory %s: %w", dir, err)
	}
	recovery, err := vet(path)
	if err != nil {
		return nil, err
	}
	// The timeout turns a second weft process on the same state into a clear
	// error instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("restrict state database %s: %w", path, err)
	}
	s := &Store{db: db, recovery: recovery}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	return s, nil
}

// Recovery reports what Open did about a damaged file; nil when the file
// was sound or new.
func (s *Store) Recovery() *Recovery { return s.recovery }

// Instance is this database's random mark. weft writes it on every link it
// makes, and deletes a link no record owns only when it carries this mark:
// a new, emptied or salvaged database has a mark of its own, so it never
// takes the links of running containers made under another for leftovers.
func (s *Store) Instance() string { return s.instance }

// migrate brings a database to SchemaVersion: a new one gets the current
// version, an older one is upgraded in place, a newer one is refused.
func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		v := SchemaVersion
		if raw := b.Get([]byte(schemaKey)); raw != nil {
			if _, err := fmt.Sscan(string(raw), &v); err != nil {
				return fmt.Errorf("unreadable schema version %q", raw)
			}
		}
		if v > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this weft understands (%d): run the weft version that wrote it, or a newer one", v, SchemaVersion)
		}
		if raw := b.Get([]byte(instanceKey)); len(raw) == instanceLen {
			s.instance = string(raw)
		} else {
			s.instance = newInstance()
			if err := b.Put([]byte(instanceKey), []byte(s.instance)); err != nil {
				return err
			}
		}
		return b.Put([]byte(schemaKey), []byte(fmt.Sprint(SchemaVersion)))
	})
}

// instanceLen is the length of an instance mark: 16 hex digits.
const instanceLen = 16

func newInstance() string {
	b := make([]byte, instanceLen/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in one read-write transaction, committed durably when fn
// returns nil and rolled back otherwise.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is one transaction; it must not be used after Update or View returns.
type Tx struct {
	tx *bolt.Tx
}

// ErrNotFound is returned by Get for a key that is not stored.
var ErrNotFound = errors.New("not found")

// Get decodes the record kind/key into v, or returns ErrNotFound.
func (t *Tx) Get(kind, key string, v any) error {
	b := t.tx.Bucket([]byte(kind))
	if b == nil {
		return ErrNotFound
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s %q: %w", kind, key, err)
	}
	return nil
}

// Has reports whether kind/key is stored.
func (t *Tx) Has(kind, key string) bool {
	b := t.tx.Bucket([]byte(kind))
	return b != nil && b.Get([]byte(key)) != nil
}

// Put stores v, encoded as JSON, as the record kind/key.
func (t *Tx) Put(kind, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", kind, key, err)
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(kind))
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// Delete removes kind/key; deleting a missing record is not an error.
func (t *Tx) Delete(kind, key string) error {
	b := t.tx.Bucket([]byte(kind))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn for every record of kind in key order, passing the raw
// JSON; decode it with Decode.
func (t *Tx) ForEach(kind string, fn func(key string, raw []byte) error) error {
	b := t.tx.Bucket([]byte(kind))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// ForEachPrefix is ForEach restricted to keys starting with prefix.
func (t *Tx) ForEachPrefix(kind, prefix string, fn func(key string, raw []byte) error) error {
	b := t.tx.Bucket([]byte(kind))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && len(k) >= len(p) && string(k[:len(p)]) == prefix; k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// Decode unmarshals a raw record handed out by ForEach.
func Decode(raw []byte, v any) error { return json.Unmarshal(raw, v) }
