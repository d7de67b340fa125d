package ipam

import (
	"net/netip"
	"testing"
)

func TestRequestPoolErrors(t *testing.T) {
	tests := []struct {
		name  string
		req   PoolRequest
		class error
		subs  []string
	}{
		{"unknown space", PoolRequest{AddressSpace: "Foo", Pool: "10.1.0.0/24"}, ErrInvalid,
			[]string{`unknown address space "Foo"`, "LocalDefault", "GlobalDefault"}},
		{"not a cidr", PoolRequest{Pool: "foo"}, ErrInvalid,
			[]string{`invalid --subnet "foo": not an IPv4 or IPv6 CIDR such as 10.1.0.0/24`}},
		{"plain address", PoolRequest{Pool: "10.1.0.0"}, ErrInvalid,
			[]string{`invalid --subnet "10.1.0.0": not an IPv4 or IPv6 CIDR`}},
		{"host bits", PoolRequest{Pool: "10.1.0.5/24"}, ErrInvalid,
			[]string{`invalid --subnet "10.1.0.5/24": host bits are set; use 10.1.0.0/24`}},
		{"v4 for v6", PoolRequest{Pool: "10.1.0.0/24", V6: true}, ErrInvalid,
			[]string{"--subnet 10.1.0.0/24 given where an IPv6 subnet was expected"}},
		{"v6 for v4", PoolRequest{Pool: "fd00::/64"}, ErrInvalid,
			[]string{"--subnet fd00::/64 given where an IPv4 subnet was expected"}},
		{"bad ip-range", PoolRequest{Pool: "10.1.0.0/24", SubPool: "bar"}, ErrInvalid,
			[]string{`invalid --ip-range "bar": not an IPv4 or IPv6 CIDR`}},
		{"ip-range host bits", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.1/25"}, ErrInvalid,
			[]string{`invalid --ip-range "10.1.0.1/25": host bits are set; use 10.1.0.0/25`}},
		{"ip-range outside", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.2.0.0/25"}, ErrInvalid,
			[]string{"--ip-range 10.2.0.0/25 is not inside --subnet 10.1.0.0/24"}},
		{"ip-range larger", PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.0/16"}, ErrInvalid,
			[]string{"--ip-range 10.1.0.0/16 is not inside --subnet 10.1.0.0/24"}},
		{"ip-range other family", PoolRequest{Pool: "10.1.0.0/24", SubPool: "fd00::/120"}, ErrInvalid,
			[]string{"--ip-range fd00::/120 is not inside --subnet 10.1.0.0/24"}},
		{"ip-range without subnet", PoolRequest{SubPool: "10.1.0.0/25"}, ErrInvalid,
			[]string{"--ip-range 10.1.0.0/25 needs --subnet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.s.RequestPool(tt.req)
			wantErr(t, err, tt.class, tt.subs...)
			if len(e.s.pools) != 0 {
				t.Errorf("a failed request left %d pools", len(e.s.pools))
			}
		})
	}
}

func TestPoolIDs(t *testing.T) {
	tests := []struct {
		req  PoolRequest
		want string
	}{
		{PoolRequest{Pool: "10.1.0.0/24"}, "LocalDefault/10.1.0.0/24"},
		{PoolRequest{AddressSpace: LocalSpace, Pool: "10.1.0.0/24"}, "LocalDefault/10.1.0.0/24"},
		{PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25"}, "LocalDefault/10.1.0.0/24/10.1.0.128/25"},
		{PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"}, "GlobalDefault/10.1.0.0/24"},
		{PoolRequest{Pool: "fd00:1::/64", SubPool: "fd00:1::/80", V6: true}, "LocalDefault/fd00:1::/64/fd00:1::/80"},
		{PoolRequest{}, "LocalDefault/172.17.0.0/16"},
		{PoolRequest{AddressSpace: GlobalSpace}, "GlobalDefault/10.0.0.0/24"},
		{PoolRequest{V6: true}, "LocalDefault/fd77:6566:7400::/64"},
	}
	for _, tt := range tests {
		e := newEnv(t)
		// Same request twice (with a release in between): same id.
		for range 2 {
			p := e.pool(tt.req)
			if p.ID != tt.want {
				t.Errorf("%+v: id %q, want %q", tt.req, p.ID, tt.want)
			}
			if p.Data == nil {
				t.Errorf("%+v: nil Data", tt.req)
			}
			space, prefix, sub, err := parsePoolID(p.ID)
			if err != nil || space == "" || prefix != p.Prefix || poolID(space, prefix, sub) != p.ID {
				t.Errorf("parsePoolID(%q) = %s %s %s %v", p.ID, space, prefix, sub, err)
			}
			if err := e.s.ReleasePool(p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestParsePoolIDRejects(t *testing.T) {
	for _, id := range []string{"", "LocalDefault", "LocalDefault/10.1.0.0", "Other/10.1.0.0/24",
		"LocalDefault/10.1.0.5/24", "LocalDefault/10.1.0.0/24/10.2.0.0/25", "LocalDefault/10.1.0.0/24/x",
		"LocalDefault/10.1.0.0/24/10.1.0.0/25/extra"} {
		if _, _, _, err := parsePoolID(id); err == nil {
			t.Errorf("parsePoolID(%q) accepted", id)
		}
	}
}

func TestPoolOverlap(t *testing.T) {
	e := newEnv(t)
	local := e.pool(PoolRequest{Pool: "10.1.0.0/24"})

	_, err := e.s.RequestPool(PoolRequest{Pool: "10.1.0.0/16"})
	wantErr(t, err, ErrConflict, "--subnet 10.1.0.0/16 overlaps 10.1.0.0/24, already used by another weft network")
	_, err = e.s.RequestPool(PoolRequest{Pool: "10.1.0.128/25"})
	wantErr(t, err, ErrConflict, "--subnet 10.1.0.128/25 overlaps 10.1.0.0/24")
	// Local: an identical pool is refused, with or without a sub-range.
	_, err = e.s.RequestPool(PoolRequest{Pool: "10.1.0.0/24"})
	wantErr(t, err, ErrConflict, "--subnet 10.1.0.0/24 overlaps 10.1.0.0/24")
	_, err = e.s.RequestPool(PoolRequest{Pool: "10.1.0.0/24", SubPool: "10.1.0.0/25"})
	wantErr(t, err, ErrConflict, "overlaps 10.1.0.0/24")

	// The global space is separate: the same subnet is fine there...
	global := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24", SubPool: "10.1.0.0/25"})
	if global.ID == local.ID {
		t.Fatalf("local and global share id %s", global.ID)
	}
	// ...an identical global request is a replay and gets the same pool...
	again := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24", SubPool: "10.1.0.0/25"})
	if again.ID != global.ID || again.Prefix != global.Prefix {
		t.Fatalf("replay got %+v, want %+v", again, global)
	}
	// ...but a different overlapping one is refused.
	_, err = e.s.RequestPool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"})
	wantErr(t, err, ErrConflict, "--subnet 10.1.0.0/24 overlaps 10.1.0.0/24")

	// Families do not overlap each other.
	e.pool(PoolRequest{Pool: "fd00::/64", V6: true})
	_, err = e.s.RequestPool(PoolRequest{Pool: "fd00::/48", V6: true})
	wantErr(t, err, ErrConflict, "--subnet fd00::/48 overlaps fd00::/64")

	// Releasing the global pool frees nothing local.
	if err := e.s.ReleasePool(global.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.RequestPool(PoolRequest{Pool: "10.1.0.0/24"})
	wantErr(t, err, ErrConflict)
}

func TestDefaultPools(t *testing.T) {
	t.Run("local v4 order and exhaustion", func(t *testing.T) {
		e := newEnv(t)
		var want []string
		for i := 17; i <= 31; i++ {
			want = append(want, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16).String())
		}
		for i := 0; i < 16; i++ {
			want = append(want, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i * 16), 0}), 20).String())
		}
		for _, w := range want {
			// Consecutive calls, holding every earlier result (libnetwork does
			// that while a pool overlaps a host route), must differ.
			if p := e.pool(PoolRequest{}); p.Prefix.String() != w {
				t.Fatalf("got %s, want %s", p.Prefix, w)
			}
		}
		_, err := e.s.RequestPool(PoolRequest{})
		wantErr(t, err, ErrExhausted, "no free default IPv4 subnet left in LocalDefault", "choose one with --subnet")
		// The global space is unaffected.
		if p := e.pool(PoolRequest{AddressSpace: GlobalSpace}); p.Prefix.String() != "10.0.0.0/24" {
			t.Fatalf("global default %s", p.Prefix)
		}
		// A released default is handed out again.
		if err := e.s.ReleasePool("LocalDefault/172.20.0.0/16"); err != nil {
			t.Fatal(err)
		}
		if p := e.pool(PoolRequest{}); p.Prefix.String() != "172.20.0.0/16" {
			t.Fatalf("got %s after release", p.Prefix)
		}
	})
	t.Run("skips user subnets", func(t *testing.T) {
		e := newEnv(t)
		e.pool(PoolRequest{Pool: "172.17.5.0/24"})
		e.pool(PoolRequest{Pool: "172.18.0.0/15"})
		if p := e.pool(PoolRequest{}); p.Prefix.String() != "172.20.0.0/16" {
			t.Fatalf("got %s, want 172.20.0.0/16", p.Prefix)
		}
		e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.0.0.0/16"})
		e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/25"})
		if p := e.pool(PoolRequest{AddressSpace: GlobalSpace}); p.Prefix.String() != "10.1.1.0/24" {
			t.Fatalf("got %s, want 10.1.1.0/24", p.Prefix)
		}
	})
	t.Run("v6", func(t *testing.T) {
		e := newEnv(t)
		// The spaces' v6 defaults come from different blocks: the first
		// local and the first swarm network without --subnet used to get
		// the same /64, two bridges with one prefix on a swarm node.
		for space, want := range map[string][]string{
			LocalSpace:  {"fd77:6566:7400::/64", "fd77:6566:7400:1::/64", "fd77:6566:7400:2::/64"},
			GlobalSpace: {"fd77:6566:7401::/64", "fd77:6566:7401:1::/64", "fd77:6566:7401:2::/64"},
		} {
			for _, w := range want {
				if p := e.pool(PoolRequest{AddressSpace: space, V6: true}); p.Prefix.String() != w {
					t.Fatalf("%s: got %s, want %s", space, p.Prefix, w)
				}
			}
		}
		if got := e.addr(AddressRequest{PoolID: "LocalDefault/fd77:6566:7400:1::/64", Options: gwOpts}); got != "fd77:6566:7400:1::1/64" {
			t.Fatalf("v6 gateway %s", got)
		}
		if got := e.addr(AddressRequest{PoolID: "LocalDefault/fd77:6566:7400:1::/64"}); got != "fd77:6566:7400:1::2/64" {
			t.Fatalf("v6 address %s", got)
		}
	})
	t.Run("defaults skip the other space's pools", func(t *testing.T) {
		e := newEnv(t)
		// A user's --subnet in the other space's block, and a swarm pool
		// an earlier weft cut from the shared block, are both skipped.
		e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "fd77:6566:7400::/64", V6: true})
		e.pool(PoolRequest{Pool: "fd77:6566:7401::/63", V6: true})
		e.pool(PoolRequest{Pool: "10.0.0.0/23"})
		e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "172.17.0.0/24"})
		for _, c := range []struct {
			req  PoolRequest
			want string
		}{
			{PoolRequest{V6: true}, "fd77:6566:7400:1::/64"},
			{PoolRequest{AddressSpace: GlobalSpace, V6: true}, "fd77:6566:7401:2::/64"},
			{PoolRequest{}, "172.18.0.0/16"},
			{PoolRequest{AddressSpace: GlobalSpace}, "10.0.2.0/24"},
		} {
			if p := e.pool(c.req); p.Prefix.String() != c.want {
				t.Errorf("%+v: got %s, want %s", c.req, p.Prefix, c.want)
			}
		}
		// An explicit --subnet may still overlap the other space's pools.
		e.pool(PoolRequest{Pool: "fd77:6566:7401:2::/64", V6: true})
	})
}

func TestReleasePool(t *testing.T) {
	e := newEnv(t)
	if err := e.s.ReleasePool("LocalDefault/10.9.0.0/24"); err != nil {
		t.Fatalf("unknown pool: %v", err)
	}
	if err := e.s.ReleasePool("garbage"); err != nil {
		t.Fatalf("malformed id: %v", err)
	}
	p := e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	// Another pool (same subnet, other space) must keep its addresses.
	n := e.pool(PoolRequest{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24", SubPool: "10.1.0.0/25"})
	e.addr(AddressRequest{PoolID: p.ID, Options: gwOpts})
	e.addr(AddressRequest{PoolID: p.ID, Address: "10.1.0.5"})
	e.addr(AddressRequest{PoolID: n.ID})
	if err := e.s.ReleasePool(p.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.storedAddresses(p.ID); len(got) != 0 {
		t.Fatalf("addresses left in the store: %v", got)
	}
	if got := e.storedAddresses(n.ID); len(got) != 1 {
		t.Fatalf("neighbour pool lost its address: %v", got)
	}
	_, err := e.s.RequestAddress(AddressRequest{PoolID: p.ID})
	wantErr(t, err, ErrNotFound, p.ID)
	// The same pool again starts empty.
	p = e.pool(PoolRequest{Pool: "10.1.0.0/24"})
	if got := e.addr(AddressRequest{PoolID: p.ID, Address: "10.1.0.5"}); got != "10.1.0.5/24" {
		t.Fatalf("got %s", got)
	}
}

// TestDynamicRange: the driver asks which addresses a pool hands out.
func TestDynamicRange(t *testing.T) {
	e := newEnv(t)
	whole, sub := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")
	if _, err := e.s.RequestPool(PoolRequest{Pool: whole.String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RequestPool(PoolRequest{Pool: sub.String(), SubPool: "10.2.0.64/26"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		space  string
		prefix netip.Prefix
		want   string
		ok     bool
	}{
		{LocalSpace, whole, "10.1.0.0/24", true},
		{"", sub, "10.2.0.64/26", true},
		{GlobalSpace, whole, "invalid Prefix", false},
		{LocalSpace, netip.MustParsePrefix("10.3.0.0/24"), "invalid Prefix", false},
	} {
		if r, ok := e.s.DynamicRange(tt.space, tt.prefix); r.String() != tt.want || ok != tt.ok {
			t.Errorf("DynamicRange(%q, %s) = %s, %v; want %s, %v", tt.space, tt.prefix, r, ok, tt.want, tt.ok)
		}
	}
}
