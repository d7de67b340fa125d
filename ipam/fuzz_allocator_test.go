package ipam

import (
	"net/netip"
	"testing"
)

// fuzzPools are the pools FuzzAllocator picks from (first input byte):
// the corner cases of the range rules, pools spanning several chunks, the
// largest chunked pools and a map-backed one.
var fuzzPools = []struct{ pool, sub string }{
	{"10.1.0.0/24", ""},
	{"10.1.0.0/29", ""},
	{"10.1.0.0/31", ""},
	{"10.1.0.7/32", ""},
	{"10.1.0.0/22", "10.1.1.0/24"},
	{"10.1.0.0/24", "10.1.0.255/32"},
	{"10.1.0.0/24", "10.1.0.254/31"},
	{"10.1.0.0/24", "10.1.0.0/25"},
	{"10.0.0.0/20", ""},
	{"10.0.0.0/8", ""},
	{"0.0.0.0/0", ""},
	{"fd00::/120", ""},
	{"fd00::/127", ""},
	{"fd00::/128", ""},
	{"fd00::/104", ""},
	{"fd00::/104", "fd00::ff:ff00/120"},
	{"fd00::/64", ""},
	{"fd00::/64", "fd00::ffff:ffff:ffff:ff00/120"},
	{"fd00::/48", ""},
	{"fd00::/48", "fd00::ffff:ffff:ffff:ff00/120"},
}

// allocModel is the allocation rules written out plainly: a set of used
// addresses and a cursor, searched address by address. FuzzAllocator holds
// the allocator to it.
type allocModel struct {
	pool   netip.Prefix
	lo, hi netip.Addr
	empty  bool
	used   map[netip.Addr]bool
	cursor netip.Addr
}

// modelReserved: the v4 network and broadcast addresses (not in a /31 or
// /32) and a v6 subnet's first address are never assigned.
func modelReserved(pool netip.Prefix, x netip.Addr) bool {
	if pool.Addr().Is4() {
		return pool.Bits() < 31 && (x == pool.Addr() || x == lastAddr(pool))
	}
	return x == pool.Addr()
}

func newAllocModel(pool, sub netip.Prefix) *allocModel {
	m := &allocModel{pool: pool, used: map[netip.Addr]bool{}}
	rng := pool
	if sub.IsValid() {
		rng = sub
	}
	first, last := rng.Addr(), lastAddr(rng)
	// Reserved addresses are only ever at the pool's ends, so two steps
	// from either end of the range are enough.
	for m.lo = first; modelReserved(pool, m.lo) && m.lo != last; m.lo = m.lo.Next() {
	}
	for m.hi = last; modelReserved(pool, m.hi) && m.hi != m.lo; m.hi = m.hi.Prev() {
	}
	m.empty = modelReserved(pool, m.lo)
	return m
}

// scan returns the first free address of [from, to].
func (m *allocModel) scan(from, to netip.Addr) (netip.Addr, bool) {
	for x := from; !to.Less(x); x = x.Next() {
		if !m.used[x] {
			return x, true
		}
		if x == to {
			break
		}
	}
	return netip.Addr{}, false
}

func (m *allocModel) next(serial bool) (netip.Addr, bool) {
	if m.empty {
		return netip.Addr{}, false
	}
	if !serial || !m.cursor.IsValid() {
		return m.scan(m.lo, m.hi)
	}
	start := m.cursor.Next()
	if m.cursor == m.hi || start.Less(m.lo) || m.hi.Less(start) {
		start = m.lo
	}
	if x, ok := m.scan(start, m.hi); ok {
		return x, true
	}
	if start == m.lo {
		return netip.Addr{}, false
	}
	return m.scan(m.lo, start.Prev())
}

func (m *allocModel) take(x netip.Addr, dynamic bool) {
	m.used[x] = true
	if dynamic {
		m.cursor = x
	}
}

// usedCount counts the addresses a set holds.
func usedCount(set addrSet) int {
	switch s := set.(type) {
	case *chunkSet:
		n := 0
		for _, c := range s.chunks {
			n += c.used
		}
		return n
	case sparseSet:
		return len(s)
	}
	panic("unknown set")
}

// fuzzOffset is an address of p counted from its start, or from its end
// when the top bit of hi is set.
func fuzzOffset(p netip.Prefix, hi, lo byte) netip.Addr {
	n := uint64(hi&0x7f)<<8 | uint64(lo)
	if hi&0x80 == 0 {
		return withLow64(p.Addr(), low64(p.Addr())+n)
	}
	end := lastAddr(p)
	return withLow64(end, low64(end)-n)
}

// FuzzAllocator drives one pool's allocator with a stream of operations
// (3 bytes each: lowest-first, serial, take a given address, release) and
// checks it against allocModel: the same answers, every address inside its
// pool's range, none handed out twice, and a chunk kept only while used.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0, 1, 1, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 3, 0, 7})
	f.Add([]byte{5, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{6, 0, 0, 0, 1, 0, 0, 1, 0, 0})
	f.Add([]byte{8, 3, 0x04, 0x00, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 0})
	f.Add([]byte{13, 0, 0, 0})
	f.Add([]byte{12, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	// The issue's /104: an address at each end, then fill from the start.
	f.Add([]byte{14, 3, 0x80, 0x00, 3, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{15, 0, 0, 0, 1, 0, 0, 3, 0x80, 0x00, 1, 0, 0})
	f.Add([]byte{17, 1, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 3, 0x80, 0x00})
	f.Add([]byte{19, 0, 0, 0, 3, 0x80, 0x00, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		c := fuzzPools[int(data[0])%len(fuzzPools)]
		pool := netip.MustParsePrefix(c.pool)
		var sub netip.Prefix
		if c.sub != "" {
			sub = netip.MustParsePrefix(c.sub)
		}
		a, m := newAllocator(pool, sub), newAllocModel(pool, sub)
		var held []netip.Addr
		for ops := data[1:]; len(ops) >= 3; ops = ops[3:] {
			op, b1, b2 := ops[0]%4, ops[1], ops[2]
			switch op {
			case 0, 1:
				serial := op == 1
				x, ok := a.next(serial)
				wx, wok := m.next(serial)
				if x != wx || ok != wok {
					t.Fatalf("next(serial=%v) in %s (range %s..%s): got %s %v, want %s %v", serial, pool, m.lo, m.hi, x, ok, wx, wok)
				}
				if !ok {
					continue
				}
				if !pool.Contains(x) || x.Less(m.lo) || m.hi.Less(x) {
					t.Fatalf("%s is outside the range %s..%s of %s", x, m.lo, m.hi, pool)
				}
				if a.has(x) {
					t.Fatalf("%s handed out twice", x)
				}
				a.take(x, true)
				m.take(x, true)
				held = append(held, x)
			case 2:
				if len(held) == 0 {
					continue
				}
				i := (int(b1)<<8 | int(b2)) % len(held)
				x := held[i]
				held = append(held[:i], held[i+1:]...)
				a.release(x)
				delete(m.used, x)
			case 3:
				// RequestAddress's rules: inside the pool, not reserved,
				// not in use.
				x := fuzzOffset(pool, b1, b2)
				if !pool.Contains(x) || a.reserved(x) != "" || a.has(x) {
					if pool.Contains(x) && (a.reserved(x) != "") != modelReserved(pool, x) {
						t.Fatalf("reserved(%s) disagrees with the model", x)
					}
					continue
				}
				a.take(x, false)
				m.take(x, false)
				held = append(held, x)
			}
			if got := usedCount(a.used); got != len(m.used) {
				t.Fatalf("the set holds %d addresses, want %d", got, len(m.used))
			}
		}
		for x := range m.used {
			if !a.has(x) {
				t.Fatalf("%s in use but not in the set", x)
			}
		}
		for _, x := range held {
			a.release(x)
		}
		if cs, ok := a.used.(*chunkSet); ok && len(cs.chunks) != 0 {
			t.Fatalf("%d chunks left after releasing everything", len(cs.chunks))
		}
	})
}
