package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/store"
)

func TestStateSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	local := e.pool(PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25"})
	global := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"})
	v6 := e.pool(PoolRequest{V6: true})
	serial := e.pool(PoolRequest{Pool: "10.2.0.0/29", Options: map[string]string{SerialOption: "true"}})
	gone := e.pool(PoolRequest{Pool: "10.3.0.0/24"})
	e.addr(AddressRequest{PoolID: gone.ID})

	e.addr(AddressRequest{PoolID: local.ID, Address: "10.1.0.1", Options: gwOpts})
	e.addr(AddressRequest{PoolID: local.ID})                        // .128
	e.addr(AddressRequest{PoolID: local.ID})                        // .129
	e.addr(AddressRequest{PoolID: local.ID, Address: "10.1.0.130"}) // taken explicitly
	e.addr(AddressRequest{PoolID: global.ID, Address: "10.1.0.7"})
	e.addr(AddressRequest{PoolID: v6.ID, Options: gwOpts})
	for range 3 {
		e.addr(AddressRequest{PoolID: serial.ID})
	}
	if err := e.s.ReleaseAddress(serial.ID, "10.2.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.ReleasePool(gone.ID); err != nil {
		t.Fatal(err)
	}

	e.reopen()

	if len(e.s.pools) != 4 {
		t.Fatalf("restored %d pools, want 4", len(e.s.pools))
	}
	if _, err := e.s.RequestAddress(AddressRequest{PoolID: gone.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("released pool came back: %v", err)
	}
	_, err := e.s.RequestAddress(AddressRequest{PoolID: local.ID, Address: "10.1.0.1"})
	wantErr(t, err, ErrConflict, "address 10.1.0.1 is already in use")
	if got := e.addr(AddressRequest{PoolID: local.ID}); got != "10.1.0.131/24" {
		t.Fatalf("local next %s, want 10.1.0.131/24", got)
	}
	// The swarm leader's replay after a restart succeeds.
	if p := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"}); p.ID != global.ID {
		t.Fatalf("global replay id %s", p.ID)
	}
	if got := e.addr(AddressRequest{PoolID: global.ID, Address: "10.1.0.7"}); got != "10.1.0.7/24" {
		t.Fatalf("global replay %s", got)
	}
	if got := e.addr(AddressRequest{PoolID: global.ID}); got != "10.1.0.1/24" {
		t.Fatalf("global next %s", got)
	}
	// Still separate: the local pool is refused, the v6 default moves on.
	_, err = e.s.RequestPool(PoolRequest{Pool: "10.1.0.0/24"})
	wantErr(t, err, ErrConflict)
	if p := e.pool(PoolRequest{V6: true}); p.Prefix == v6.Prefix {
		t.Fatalf("v6 default %s handed out twice", p.Prefix)
	}
	if got := e.addr(AddressRequest{PoolID: v6.ID}); got != "fd77:6566:7400::2/64" {
		t.Fatalf("v6 next %s", got)
	}
	// Serial continues after the last address handed out (.3), not at .1.
	if got := e.addr(AddressRequest{PoolID: serial.ID}); got != "10.2.0.4/29" {
		t.Fatalf("serial next %s, want 10.2.0.4/29", got)
	}
	e.reopen()
	if got := e.addr(AddressRequest{PoolID: serial.ID}); got != "10.2.0.5/29" {
		t.Fatalf("serial next %s, want 10.2.0.5/29", got)
	}
}

// TestFailedCommitLeaksNothing makes the store fail under every kind of
// change and checks that memory, and the store once reopened, are unchanged.
func TestFailedCommitLeaksNothing(t *testing.T) {
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	e.addr(AddressRequest{PoolID: p.ID}) // .1
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID}); err == nil {
		t.Fatal("RequestAddress succeeded on a closed store")
	}
	if _, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID, Address: "10.1.0.9"}); err == nil {
		t.Fatal("RequestAddress succeeded on a closed store")
	}
	if _, err := e.s.RequestPool(PoolRequest{}); err == nil {
		t.Fatal("RequestPool succeeded on a closed store")
	}
	if err := e.s.ReleaseAddress(p.ID, "10.1.0.1"); err == nil {
		t.Fatal("ReleaseAddress succeeded on a closed store")
	}
	if err := e.s.ReleasePool(p.ID); err == nil {
		t.Fatal("ReleasePool succeeded on a closed store")
	}

	check := func(s *Service) {
		t.Helper()
		if len(s.pools) != 1 {
			t.Fatalf("%d pools", len(s.pools))
		}
		a := s.pools[p.ID].alloc
		if !a.has(netip.MustParseAddr("10.1.0.1")) {
			t.Fatal("10.1.0.1 was freed by a failed release")
		}
		for _, x := range []string{"10.1.0.2", "10.1.0.9"} {
			if a.has(netip.MustParseAddr(x)) {
				t.Fatalf("%s leaked by a failed request", x)
			}
		}
	}
	check(e.s)
	e.open()
	check(e.s)
	if got := e.addr(AddressRequest{PoolID: p.ID}); got != "10.1.0.2/24" {
		t.Fatalf("got %s", got)
	}
}

func TestRestoreSkipsBadRecords(t *testing.T) {
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	e.addr(AddressRequest{PoolID: p.ID, Address: "10.1.0.5"})
	err := e.st.Update(func(tx *store.Tx) error {
		for _, put := range []struct {
			kind, key string
			v         any
		}{
			{poolKind, "LocalDefault/10.2.0.5/24", poolRecord{}},   // host bits
			{poolKind, "Nowhere/10.3.0.0/24", poolRecord{}},        // unknown space
			{poolKind, "LocalDefault/10.4.0.0/24", "not a record"}, // undecodable
			{addressKind, "LocalDefault/10.9.0.0/24|10.9.0.1", addressRecord{}},
			{addressKind, p.ID + "|garbage", addressRecord{}},
			{addressKind, p.ID + "|10.2.0.1", addressRecord{}},
			{addressKind, "no separator", addressRecord{}},
		} {
			if err := tx.Put(put.kind, put.key, put.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if len(e.s.pools) != 1 || e.s.pools[p.ID] == nil {
		t.Fatalf("restored pools %v", e.s.pools)
	}
	_, err = e.s.RequestAddress(AddressRequest{PoolID: p.ID, Address: "10.1.0.5"})
	wantErr(t, err, ErrConflict)
}

// TestSwarmCopyRecreated is a node's dockerd dying with a swarm network's
// copy in use: it forgets the copy without releasing anything, then creates
// it again, asking for the same pool, gateway and task address. A marked
// pool answers with what it holds, across a plugin restart too; an
// unmarked local pool still refuses the same subnet twice.
func TestSwarmCopyRecreated(t *testing.T) {
	e := newEnv(t)
	prefix := netip.MustParsePrefix("10.90.0.0/24")
	copyPool := e.pool(PoolRequest{Pool: prefix.String()})
	e.addr(AddressRequest{PoolID: copyPool.ID, Address: "10.90.0.1", Options: gwOpts})
	e.addr(AddressRequest{PoolID: copyPool.ID, Address: "10.90.0.5"})
	serial := e.pool(PoolRequest{Pool: "10.91.0.0/24", Options: map[string]string{SerialOption: "true"}})
	e.addr(AddressRequest{PoolID: serial.ID})
	e.addr(AddressRequest{PoolID: serial.ID})

	if err := e.s.MarkSwarmCopy("", prefix); err != nil {
		t.Fatal(err)
	}
	if err := e.s.MarkSwarmCopy(LocalSpace, netip.MustParsePrefix("10.91.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := e.s.MarkSwarmCopy(LocalSpace, netip.MustParsePrefix("10.99.0.0/24")); err != nil {
		t.Fatalf("marking a pool weft does not hold: %v", err)
	}
	e.reopen()

	if p := e.pool(PoolRequest{Pool: prefix.String()}); p.ID != copyPool.ID {
		t.Fatalf("recreated copy got pool %s, want %s", p.ID, copyPool.ID)
	}
	if got := e.addr(AddressRequest{PoolID: copyPool.ID, Address: "10.90.0.1", Options: gwOpts}); got != "10.90.0.1/24" {
		t.Fatalf("gateway again: %s", got)
	}
	if got := e.addr(AddressRequest{PoolID: copyPool.ID, Address: "10.90.0.5"}); got != "10.90.0.5/24" {
		t.Fatalf("task address again: %s", got)
	}
	// Marking kept the serial cursor: .3 follows the .2 handed out before.
	if got := e.addr(AddressRequest{PoolID: serial.ID}); got != "10.91.0.3/24" {
		t.Fatalf("serial next %s, want 10.91.0.3/24", got)
	}
	// The copy's pool is still one pool: releasing it frees the subnet.
	if err := e.s.ReleasePool(copyPool.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.storedAddresses(copyPool.ID); len(got) != 0 {
		t.Fatalf("released copy left addresses %v", got)
	}
	plain := e.pool(PoolRequest{Pool: prefix.String()})
	_, err := e.s.RequestPool(PoolRequest{Pool: prefix.String()})
	wantErr(t, err, ErrConflict, "--subnet 10.90.0.0/24 overlaps 10.90.0.0/24")
	_, err = e.s.RequestAddress(AddressRequest{PoolID: plain.ID, Address: "10.90.0.1", Options: gwOpts})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.RequestAddress(AddressRequest{PoolID: plain.ID, Address: "10.90.0.1", Options: gwOpts})
	wantErr(t, err, ErrConflict, "address 10.90.0.1 is already in use")
}

// TestOldSharedV6DefaultSurvives: a swarm pool an earlier weft cut from
// the v6 block both spaces then shared stays where it is across a restart
// (a running network must not move), and new defaults of either space go
// around it.
func TestOldSharedV6DefaultSurvives(t *testing.T) {
	e := newEnv(t)
	old := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "fd77:6566:7400::/64", V6: true})
	e.addr(AddressRequest{PoolID: old.ID, Options: gwOpts})
	e.reopen()
	if got := e.addr(AddressRequest{PoolID: old.ID, Address: "fd77:6566:7400::1", Options: gwOpts}); got != "fd77:6566:7400::1/64" {
		t.Fatalf("the old pool's gateway after a restart: %s", got)
	}
	if got := e.addr(AddressRequest{PoolID: old.ID}); got != "fd77:6566:7400::2/64" {
		t.Fatalf("the old pool's next address: %s", got)
	}
	if p := e.pool(PoolRequest{V6: true}); p.Prefix.String() != "fd77:6566:7400:1::/64" {
		t.Fatalf("local v6 default %s, want fd77:6566:7400:1::/64", p.Prefix)
	}
	if p := e.pool(PoolRequest{AddressSpace: GlobalSpace, V6: true}); p.Prefix.String() != "fd77:6566:7401::/64" {
		t.Fatalf("global v6 default %s, want fd77:6566:7401::/64", p.Prefix)
	}
}

// TestCursorSurvivesRestart: a serial request continues after the last
// address handed out, in a pool that is not serial itself too, and a
// restart must not move where it continues (the cursor was only stored by
// serial requests, so a restart sent the next one back to the start).
func TestCursorSurvivesRestart(t *testing.T) {
	serialOpts := map[string]string{SerialOption: "true"}
	for _, restart := range []bool{false, true} {
		e := newEnv(t)
		p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
		e.addr(AddressRequest{PoolID: p.ID, Options: gwOpts}) // .1
		e.addr(AddressRequest{PoolID: p.ID})                  // .2
		e.addr(AddressRequest{PoolID: p.ID})                  // .3
		if err := e.s.ReleaseAddress(p.ID, "10.1.0.2"); err != nil {
			t.Fatal(err)
		}
		if restart {
			e.reopen()
		}
		if got := e.addr(AddressRequest{PoolID: p.ID, Options: serialOpts}); got != "10.1.0.4/24" {
			t.Errorf("restart %v: serial request got %s, want 10.1.0.4/24", restart, got)
		}
		if got := e.addr(AddressRequest{PoolID: p.ID}); got != "10.1.0.2/24" {
			t.Errorf("restart %v: lowest-first request got %s, want 10.1.0.2/24", restart, got)
		}
	}
}
