package ipam

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/store"
)

// testEnv is a Service on a store in a temporary directory.
type testEnv struct {
	t    testing.TB
	path string
	st   *store.Store
	s    *Service
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{t: t, path: filepath.Join(t.TempDir(), "state.db")}
	e.open()
	t.Cleanup(func() { e.st.Close() })
	return e
}

// open opens the store and builds a Service from what it holds.
func (e *testEnv) open() {
	e.t.Helper()
	st, err := store.Open(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel) // run the debug logging code paths too
	s, err := New(st, log)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st, e.s = st, s
}

// reopen simulates a restart of the plugin.
func (e *testEnv) reopen() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *testEnv) pool(req PoolRequest) Pool {
	e.t.Helper()
	p, err := e.s.RequestPool(req)
	if err != nil {
		e.t.Fatalf("RequestPool(%+v): %v", req, err)
	}
	return p
}

func (e *testEnv) addr(req AddressRequest) string {
	e.t.Helper()
	a, err := e.s.RequestAddress(req)
	if err != nil {
		e.t.Fatalf("RequestAddress(%+v): %v", req, err)
	}
	return a.String()
}

// storedAddresses lists the address records of poolID.
func (e *testEnv) storedAddresses(poolID string) []string {
	e.t.Helper()
	var keys []string
	err := e.st.View(func(tx *store.Tx) error {
		return tx.ForEachPrefix(addressKind, poolID+"|", func(k string, _ []byte) error {
			keys = append(keys, strings.TrimPrefix(k, poolID+"|"))
			return nil
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// wantErr checks err's class and that its text contains every substring.
func wantErr(t *testing.T, err, class error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", class)
	}
	if !errors.Is(err, class) {
		t.Fatalf("error %q is not %v", err, class)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

var gwOpts = map[string]string{RequestTypeOption: GatewayRequest}

func TestDefaultAddressSpaces(t *testing.T) {
	l, g := newEnv(t).s.DefaultAddressSpaces()
	if l != "LocalDefault" || g != "GlobalDefault" {
		t.Fatalf("got %s %s", l, g)
	}
}
