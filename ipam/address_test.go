package ipam

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func TestRequestAddress(t *testing.T) {
	type step struct {
		addr  string
		opts  map[string]string
		want  string // the address returned, or "" when an error is expected
		class error
		subs  []string
	}
	tests := []struct {
		name  string
		pool  PoolRequest
		steps []step
	}{
		{"lowest free first", PoolRequest{Pool: "10.1.0.0/24"}, []step{
			{opts: gwOpts, want: "10.1.0.1/24"},
			{want: "10.1.0.2/24"},
			{addr: "10.1.0.5", want: "10.1.0.5/24"},
			{addr: "10.1.0.6/24", want: "10.1.0.6/24"},
			{addr: "10.1.0.7/16", want: "10.1.0.7/24"},
			{want: "10.1.0.3/24"},
			{want: "10.1.0.4/24"},
			{want: "10.1.0.8/24"},
			{addr: "10.1.0.254", want: "10.1.0.254/24"},
		}},
		{"specific address errors", PoolRequest{Pool: "10.1.0.0/24"}, []step{
			{addr: "10.9.0.5", class: ErrInvalid, subs: []string{"--ip 10.9.0.5 is outside the network's subnet 10.1.0.0/24"}},
			{addr: "fd00::5", class: ErrInvalid, subs: []string{"--ip fd00::5 is outside the network's subnet 10.1.0.0/24"}},
			{addr: "10.1.0.0", class: ErrInvalid, subs: []string{"--ip 10.1.0.0 is the network address of 10.1.0.0/24 and cannot be assigned"}},
			{addr: "10.1.0.255", class: ErrInvalid, subs: []string{"--ip 10.1.0.255 is the broadcast address of 10.1.0.0/24 and cannot be assigned"}},
			{addr: "10.1.0.300", class: ErrInvalid, subs: []string{`invalid --ip "10.1.0.300": not an IP address`}},
			{addr: "10.1.0.5/33", class: ErrInvalid, subs: []string{`invalid --ip "10.1.0.5/33"`}},
			{addr: "10.1.0.5", want: "10.1.0.5/24"},
			{addr: "10.1.0.5", class: ErrConflict, subs: []string{"address 10.1.0.5 is already in use on this network"}},
			{addr: "10.1.0.5/24", class: ErrConflict, subs: []string{"address 10.1.0.5 is already in use on this network"}},
		}},
		{"gateway rules", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25"}, []step{
			{addr: "10.2.0.1", opts: gwOpts, class: ErrInvalid, subs: []string{"gateway 10.2.0.1 is outside --subnet 10.1.0.0/24"}},
			{addr: "10.1.0.0", opts: gwOpts, class: ErrInvalid, subs: []string{"--gateway 10.1.0.0 is the network address"}},
			{addr: "bad", opts: gwOpts, class: ErrInvalid, subs: []string{`invalid --gateway "bad"`}},
			// An explicit gateway may be outside the ip-range, inside the subnet.
			{addr: "10.1.0.1", opts: gwOpts, want: "10.1.0.1/24"},
			{addr: "10.1.0.1", opts: gwOpts, class: ErrConflict, subs: []string{"address 10.1.0.1 is already in use"}},
		}},
		{"empty gateway takes the first of the ip-range", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25"}, []step{
			{opts: gwOpts, want: "10.1.0.128/24"},
			{want: "10.1.0.129/24"},
			// --ip and --aux-address outside --ip-range but inside --subnet are fine.
			{addr: "10.1.0.10", want: "10.1.0.10/24"},
			{addr: "10.1.0.255", class: ErrInvalid, subs: []string{"broadcast address"}},
		}},
		{"sub-range exhaustion", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.252/30"}, []step{
			{want: "10.1.0.252/24"},
			{want: "10.1.0.253/24"},
			{want: "10.1.0.254/24"},
			{class: ErrExhausted, subs: []string{"no free address left in 10.1.0.0/24 (sub-range 10.1.0.252/30); widen --subnet or --ip-range, or remove containers"}},
			{addr: "10.1.0.20", want: "10.1.0.20/24"},
		}},
		{"/31 uses both addresses", PoolRequest{Pool: "10.1.0.0/31"}, []step{
			{opts: gwOpts, want: "10.1.0.0/31"},
			{want: "10.1.0.1/31"},
			{class: ErrExhausted, subs: []string{"no free address left in 10.1.0.0/31;"}},
		}},
		{"/32", PoolRequest{Pool: "10.1.0.9/32"}, []step{
			{addr: "10.1.0.9", want: "10.1.0.9/32"},
			{class: ErrExhausted},
		}},
		{"v6", PoolRequest{Pool: "fd00:1::/64", SubPool: "fd00:1::100/120", V6: true}, []step{
			{opts: gwOpts, want: "fd00:1::100/64"},
			{want: "fd00:1::101/64"},
			{addr: "fd00:1::", class: ErrInvalid, subs: []string{"--ip6 fd00:1:: is the subnet-router anycast address of fd00:1::/64"}},
			{addr: "fd00:2::1", class: ErrInvalid, subs: []string{"--ip6 fd00:2::1 is outside the network's subnet fd00:1::/64"}},
			{addr: "fd00:1::ffff:ffff:ffff:ffff", want: "fd00:1::ffff:ffff:ffff:ffff/64"},
			{addr: "fd00:1::5/64", want: "fd00:1::5/64"},
			{addr: "fd00:1::5", class: ErrConflict, subs: []string{"address fd00:1::5 is already in use on this network"}},
		}},
		{"v6 /128 has no usable address", PoolRequest{Pool: "fd00::/128", V6: true}, []step{
			{class: ErrExhausted},
		}},
		{"global space is idempotent", PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"}, []step{
			{addr: "10.1.0.1", opts: gwOpts, want: "10.1.0.1/24"},
			{addr: "10.1.0.1", opts: gwOpts, want: "10.1.0.1/24"},
			{addr: "10.1.0.5", want: "10.1.0.5/24"},
			{addr: "10.1.0.5", want: "10.1.0.5/24"},
			{want: "10.1.0.2/24"},
			{addr: "10.9.0.1", class: ErrInvalid, subs: []string{"outside"}},
		}},
		{"serial pool option", PoolRequest{Pool: "10.1.0.0/29", Options: map[string]string{SerialOption: "true", "other.key": "x"}}, []step{
			{opts: gwOpts, want: "10.1.0.1/29"},
			{want: "10.1.0.2/29"},
			{want: "10.1.0.3/29"},
		}},
		{"unknown options are ignored", PoolRequest{Pool: "10.1.0.0/29", Options: map[string]string{SerialOption: "false", "x": "y"}}, []step{
			{opts: map[string]string{"com.docker.network.endpoint.name": "c1"}, want: "10.1.0.1/29"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pool(tt.pool)
			for i, st := range tt.steps {
				got, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID, Address: st.addr, Options: st.opts})
				if st.want == "" {
					wantErr(t, err, st.class, st.subs...)
					continue
				}
				if err != nil {
					t.Fatalf("step %d (%q): %v", i, st.addr, err)
				}
				if got.String() != st.want {
					t.Fatalf("step %d (%q): got %s, want %s", i, st.addr, got, st.want)
				}
			}
		})
	}
}

func TestRequestAddressUnknownPool(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.RequestAddress(AddressRequest{PoolID: "LocalDefault/10.7.0.0/24"})
	wantErr(t, err, ErrNotFound, `"LocalDefault/10.7.0.0/24"`)
}

func TestExhaustReleaseReuse(t *testing.T) {
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: "10.1.0.0/30"})
	if a, b := e.addr(AddressRequest{PoolID: p.ID}), e.addr(AddressRequest{PoolID: p.ID}); a != "10.1.0.1/30" || b != "10.1.0.2/30" {
		t.Fatalf("got %s %s", a, b)
	}
	_, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID})
	wantErr(t, err, ErrExhausted, "no free address left in 10.1.0.0/30; widen --subnet or --ip-range, or remove containers")
	if err := e.s.ReleaseAddress(p.ID, "10.1.0.1/30"); err != nil {
		t.Fatal(err)
	}
	if got := e.addr(AddressRequest{PoolID: p.ID}); got != "10.1.0.1/30" {
		t.Fatalf("after release got %s", got)
	}
	if err := e.s.ReleaseAddress(p.ID, "10.1.0.2"); err != nil {
		t.Fatal(err)
	}
	if got := e.addr(AddressRequest{PoolID: p.ID, Address: "10.1.0.2"}); got != "10.1.0.2/30" {
		t.Fatalf("after release got %s", got)
	}
}

func TestReleaseAddress(t *testing.T) {
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	e.addr(AddressRequest{PoolID: p.ID, Address: "10.1.0.5"})
	for _, c := range []struct{ pool, addr string }{
		{"LocalDefault/10.9.0.0/24", "10.9.0.1"}, // unknown pool
		{"nonsense", "x"},                        // unknown pool, whatever the address
		{p.ID, "10.1.0.6"},                       // not in use
		{p.ID, "10.2.0.6"},                       // outside the pool
		{p.ID, "fd00::1"},                        // other family
	} {
		if err := e.s.ReleaseAddress(c.pool, c.addr); err != nil {
			t.Errorf("ReleaseAddress(%s, %s): %v", c.pool, c.addr, err)
		}
	}
	wantErr(t, e.s.ReleaseAddress(p.ID, "x"), ErrInvalid, `invalid address "x"`)
	if got := e.storedAddresses(p.ID); len(got) != 1 || got[0] != "10.1.0.5" {
		t.Fatalf("stored %v", got)
	}
	if err := e.s.ReleaseAddress(p.ID, "10.1.0.5/24"); err != nil {
		t.Fatal(err)
	}
	if got := e.storedAddresses(p.ID); len(got) != 0 {
		t.Fatalf("stored %v after release", got)
	}
	if err := e.s.ReleaseAddress(p.ID, "10.1.0.5"); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

func TestSerial(t *testing.T) {
	for _, viaAddressOption := range []bool{false, true} {
		t.Run(fmt.Sprint("address option ", viaAddressOption), func(t *testing.T) {
			e := newEnv(t)
			req := PoolRequest{Pool: "10.1.0.0/29"} // usable .1 to .6
			var opts map[string]string
			if viaAddressOption {
				opts = map[string]string{SerialOption: "true"}
			} else {
				req.Options = map[string]string{SerialOption: "true"}
			}
			p := e.pool(req)
			next := func() string { return e.addr(AddressRequest{PoolID: p.ID, Options: opts}) }
			for _, w := range []string{"10.1.0.1/29", "10.1.0.2/29", "10.1.0.3/29"} {
				if got := next(); got != w {
					t.Fatalf("got %s, want %s", got, w)
				}
			}
			if err := e.s.ReleaseAddress(p.ID, "10.1.0.1"); err != nil {
				t.Fatal(err)
			}
			// Serial: .4, not the lowest free .1.
			for _, w := range []string{"10.1.0.4/29", "10.1.0.5/29", "10.1.0.6/29", "10.1.0.1/29"} {
				if got := next(); got != w {
					t.Fatalf("got %s, want %s", got, w)
				}
			}
			_, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID, Options: opts})
			wantErr(t, err, ErrExhausted)
			// Wrapping: free .3 and .5; the cursor is at .1, so .3 comes next.
			for _, a := range []string{"10.1.0.5", "10.1.0.3"} {
				if err := e.s.ReleaseAddress(p.ID, a); err != nil {
					t.Fatal(err)
				}
			}
			if got := next(); got != "10.1.0.3/29" {
				t.Fatalf("got %s, want 10.1.0.3/29", got)
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				a, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[a.String()] {
					t.Errorf("%s handed out twice", a)
				}
				seen[a.String()] = true
				mu.Unlock()
			}
		})
	}
	// Pools requested concurrently, too.
	for range 4 {
		wg.Go(func() {
			if _, err := e.s.RequestPool(PoolRequest{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(seen) != 160 || len(e.storedAddresses(p.ID)) != 160 {
		t.Fatalf("%d addresses handed out, %d stored", len(seen), len(e.storedAddresses(p.ID)))
	}
	if len(e.s.pools) != 5 {
		t.Fatalf("%d pools", len(e.s.pools))
	}
}

// TestFillThroughService fills a /20 through the Service, one durable
// transaction per address, and checks the count (no timing). The in-memory
// /16 fill is in allocator_test.go; a /16 through the store costs about 25 s
// of fsyncs, so it lives in `make bench`, not in every test run.
func TestFillThroughService(t *testing.T) {
	prefix := "10.16.0.0/20"
	e := newEnv(t)
	p := e.pool(PoolRequest{Pool: prefix})
	n := 0
	for {
		_, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID})
		if err != nil {
			wantErr(t, err, ErrExhausted)
			break
		}
		n++
	}
	want := 1<<(32-netip.MustParsePrefix(prefix).Bits()) - 2
	if n != want {
		t.Fatalf("filled %d, want %d", n, want)
	}
	e.reopen()
	if got := len(e.storedAddresses(p.ID)); got != want {
		t.Fatalf("%d addresses stored, want %d", got, want)
	}
	_, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID})
	wantErr(t, err, ErrExhausted)
}

// BenchmarkRequestAddress is the durable path of `make bench`'s IPAM phase:
// one RequestAddress, committed to a store on disk, per iteration.
func BenchmarkRequestAddress(b *testing.B) {
	e := newEnv(b)
	p, err := e.s.RequestPool(PoolRequest{Pool: "10.0.0.0/16"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID}); err != nil {
			b.Fatal(err)
		}
	}
}
