package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The child side of vet.go. Any binary that imports this package (the weft
// daemon, and every test binary) becomes the checker when started with
// childEnv set, before its main or TestMain runs.

const (
	childEnv    = "WEFT_STORE_CHILD" // the job: jobCheck or jobSalvage
	childSrcEnv = "WEFT_STORE_SRC"
	childDstEnv = "WEFT_STORE_DST"

	jobCheck   = "check"
	jobSalvage = "salvage"

	exitDamaged = 3
	exitLocked  = 4

	childLockTimeout = 5 * time.Second
)

func init() {
	job := os.Getenv(childEnv)
	if job == "" {
		return
	}
	// A fault while reading the memory map becomes a panic this process
	// dies of with a readable first line, rather than "unexpected fault".
	debug.SetPanicOnFault(true)
	src, dst := os.Getenv(childSrcEnv), os.Getenv(childDstEnv)
	switch job {
	case jobCheck:
		os.Exit(exitCode(checkFile(src)))
	case jobSalvage:
		report := salvageFile(src, dst)
		json.NewEncoder(os.Stdout).Encode(report)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "damaged: unknown store job %q\n", job)
		os.Exit(2)
	}
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errLocked):
		return exitLocked
	default:
		fmt.Fprintf(os.Stderr, "damaged: %v\n", err)
		return exitDamaged
	}
}

// openReadOnly opens a file for reading only; a lock held by another
// process is errLocked.
func openReadOnly(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: childLockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, errLocked
	}
	return db, err
}

// checkFile runs bbolt's consistency check and reads every key and value.
func checkFile(path string) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil && b.Bucket(k) != nil {
					return fmt.Errorf("bucket %q holds a nested bucket %q, which weft never writes", name, k)
				}
				return nil
			})
		})
	})
}

// salvageReport is what a salvage child prints on stdout.
type salvageReport struct {
	Read map[string]int `json:"read"`
	Lost []string       `json:"lost,omitempty"`
}

// salvageFile copies every record it can read from src into a new database
// at dst, bucket by bucket, so a page that cannot be read costs only the
// records behind it. The instance mark is not copied: links made under the
// damaged file must not count as the new database's own (see Instance).
func salvageFile(src, dst string) salvageReport {
	report := salvageReport{Read: map[string]int{}}
	in, err := guarded(func() (*bolt.DB, error) { return openReadOnly(src) })
	if err != nil {
		report.Lost = append(report.Lost, "everything (the file cannot be opened: "+err.Error()+")")
		return report
	}
	names, err := guarded(func() ([]string, error) { return bucketNames(in) })
	if err != nil {
		report.Lost = append(report.Lost, "unknown kinds (the list of kinds cannot be read: "+err.Error()+")")
	}
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: childLockTimeout})
	if err != nil {
		report.Lost = append(report.Lost, "everything (cannot write "+dst+": "+err.Error()+")")
		return report
	}
	defer out.Close()
	for _, name := range names {
		records, complete := readBucket(in, name)
		if name == metaBucket {
			delete(records, instanceKey)
		}
		if !complete {
			report.Lost = append(report.Lost, name)
		}
		err := out.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range records {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			report.Lost = append(report.Lost, name+" (cannot write: "+err.Error()+")")
			continue
		}
		if name != metaBucket {
			report.Read[name] = len(records)
		}
	}
	return report
}

// readBucket copies the records of one bucket up to the first that cannot
// be read; complete says it got them all.
func readBucket(db *bolt.DB, name string) (records map[string][]byte, complete bool) {
	records = map[string][]byte{}
	_, err := guarded(func() (struct{}, error) {
		return struct{}{}, db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return errors.New("bucket vanished")
			}
			return b.ForEach(func(k, v []byte) error {
				if v != nil {
					records[string(k)] = append([]byte(nil), v...)
				}
				return nil
			})
		})
	})
	return records, err == nil
}

func bucketNames(db *bolt.DB) ([]string, error) {
	var names []string
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
	})
	sort.Strings(names)
	return names, err
}

// guarded runs fn, turning a panic (bbolt's, or a fault in the memory map)
// into an error. A damage the runtime cannot recover from (a stack
// overflow) kills the child instead, which the parent reports.
func guarded[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return fn()
}
