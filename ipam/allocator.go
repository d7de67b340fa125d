package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// denseBits is the host bits of the largest pool tracked with a bitmap
// (2^24 addresses in 2 MiB, e.g. a v4 /8). Larger pools, such as a v6 /64,
// use a sparse set.
const denseBits = 24

// allocator is the in-memory bookkeeping of one pool: which addresses are in
// use and which one to hand out next. It knows nothing about the store.
// It is not safe for concurrent use; Service.mu guards it.
type allocator struct {
	pool netip.Prefix
	// lo and hi bound the dynamic range (the sub-range, or the pool,
	// without the addresses that can never be assigned), inclusive.
	// empty is true when no address is left in it at all (e.g. a v4 /32
	// ip-range over the broadcast address).
	lo, hi netip.Addr
	empty  bool
	used   addrSet
	// hint is at or below the lowest free address of [lo, hi] and never
	// above hi; it only speeds up lowest-first searches, so that filling a
	// pool is O(n) overall.
	hint netip.Addr
	// cursor is the last address handed out dynamically (invalid if none),
	// where serial allocation continues.
	cursor netip.Addr
}

// newAllocator returns an allocator for pool whose dynamic range is sub, or
// the whole pool if sub is the zero Prefix. pool and sub must be masked and
// sub inside pool.
func newAllocator(pool, sub netip.Prefix) *allocator {
	rng := pool
	if sub.IsValid() {
		rng = sub
	}
	a := &allocator{pool: pool, lo: rng.Addr(), hi: lastAddr(rng)}
	// Skip the unusable addresses at either end of the dynamic range.
	for a.lo.Less(a.hi) && a.reserved(a.lo) != "" {
		a.lo = a.lo.Next()
	}
	for a.lo.Less(a.hi) && a.reserved(a.hi) != "" {
		a.hi = a.hi.Prev()
	}
	a.empty = a.reserved(a.lo) != ""
	a.hint = a.lo
	if pool.Addr().BitLen()-pool.Bits() <= denseBits {
		a.used = newDenseSet(pool)
	} else {
		a.used = sparseSet{}
	}
	return a
}

// reserved returns a non-empty description if x can never be assigned: the
// v4 network and broadcast addresses (except in a /31 or /32, RFC 3021) and
// the first address of a v6 subnet (the subnet-router anycast address).
func (a *allocator) reserved(x netip.Addr) string {
	if x == a.pool.Addr() && (a.pool.Addr().Is6() || a.pool.Bits() < 31) {
		if a.pool.Addr().Is4() {
			return "the network address"
		}
		return "the subnet-router anycast address"
	}
	if a.pool.Addr().Is4() && a.pool.Bits() < 31 && x == lastAddr(a.pool) {
		return "the broadcast address"
	}
	return ""
}

// has reports whether x is in use.
func (a *allocator) has(x netip.Addr) bool { return a.used.has(x) }

// next returns the address a dynamic request would get, without taking it:
// the next one after the cursor (wrapping) if serial, else the lowest free.
// ok is false when the dynamic range is full.
func (a *allocator) next(serial bool) (netip.Addr, bool) {
	if a.empty {
		return netip.Addr{}, false
	}
	if serial && a.cursor.IsValid() {
		start := a.cursor.Next()
		if !start.IsValid() || start.Less(a.lo) || a.hi.Less(start) {
			start = a.lo
		}
		if x, ok := a.used.firstFree(start, a.hi); ok {
			return x, true
		}
		if start == a.lo {
			return netip.Addr{}, false
		}
		return a.used.firstFree(a.lo, start.Prev())
	}
	start := a.hint
	if start.Less(a.lo) {
		start = a.lo
	}
	x, ok := a.used.firstFree(start, a.hi)
	// Nothing below x (or in the whole range) is free: still a valid hint.
	if ok {
		a.hint = x
	} else {
		a.hint = a.hi
	}
	return x, ok
}

// take marks x in use; dynamic says it was handed out by next, which moves
// the serial cursor.
func (a *allocator) take(x netip.Addr, dynamic bool) {
	a.used.add(x)
	if x == a.hint && x.Less(a.hi) {
		a.hint = x.Next()
	}
	if dynamic {
		a.cursor = x
	}
}

// release marks x free.
func (a *allocator) release(x netip.Addr) {
	a.used.remove(x)
	if x.Less(a.hint) {
		a.hint = x
	}
}

// FillBenchmark allocates every address of prefix, one by one, with the
// in-memory allocator alone (no store) and returns the time it took and the
// number of addresses handed out. It is meant for small enough pools (say up
// to a /16); it stops after 2^24 addresses.
func FillBenchmark(prefix netip.Prefix) (time.Duration, int) {
	a := newAllocator(prefix.Masked(), netip.Prefix{})
	start := time.Now()
	n := 0
	for n < 1<<denseBits {
		x, ok := a.next(false)
		if !ok {
			break
		}
		a.take(x, true)
		n++
	}
	return time.Since(start), n
}

// addrSet is a set of addresses of one pool.
type addrSet interface {
	has(x netip.Addr) bool
	add(x netip.Addr)
	remove(x netip.Addr)
	// firstFree returns the lowest address of [from, to] not in the set.
	firstFree(from, to netip.Addr) (netip.Addr, bool)
}

// denseSet is a bitmap over every address of a pool of at most denseBits
// host bits.
type denseSet struct {
	base netip.Addr
	bits []uint64
}

func newDenseSet(pool netip.Prefix) *denseSet {
	n := uint64(1) << (pool.Addr().BitLen() - pool.Bits())
	return &denseSet{base: pool.Addr(), bits: make([]uint64, (n+63)/64)}
}

func (d *denseSet) off(x netip.Addr) uint64 { return low64(x) - low64(d.base) }

func (d *denseSet) has(x netip.Addr) bool {
	o := d.off(x)
	return d.bits[o/64]&(1<<(o%64)) != 0
}

func (d *denseSet) add(x netip.Addr) {
	o := d.off(x)
	d.bits[o/64] |= 1 << (o % 64)
}

func (d *denseSet) remove(x netip.Addr) {
	o := d.off(x)
	d.bits[o/64] &^= 1 << (o % 64)
}

func (d *denseSet) firstFree(from, to netip.Addr) (netip.Addr, bool) {
	f, t := d.off(from), d.off(to)
	for i := f; i <= t; {
		w := i / 64
		word := d.bits[w] | (1<<(i%64) - 1) // bits below i count as used
		if word == ^uint64(0) {
			i = (w + 1) * 64
			continue
		}
		free := w*64 + uint64(bits.TrailingZeros64(^word))
		if free > t {
			break
		}
		return withLow64(d.base, low64(d.base)+free), true
	}
	return netip.Addr{}, false
}

// sparseSet holds the used addresses of a pool too large for a bitmap.
type sparseSet map[netip.Addr]struct{}

func (s sparseSet) has(x netip.Addr) bool { _, ok := s[x]; return ok }
func (s sparseSet) add(x netip.Addr)      { s[x] = struct{}{} }
func (s sparseSet) remove(x netip.Addr)   { delete(s, x) }

func (s sparseSet) firstFree(from, to netip.Addr) (netip.Addr, bool) {
	for x := from; ; x = x.Next() {
		if !s.has(x) {
			return x, true
		}
		if x == to {
			return netip.Addr{}, false
		}
	}
}

// low64 returns the low 64 bits of x (all 32 of a v4 address).
func low64(x netip.Addr) uint64 {
	if x.Is4() {
		b := x.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := x.As16()
	return binary.BigEndian.Uint64(b[8:])
}

// withLow64 returns x with its low 64 bits (all 32 of v4) replaced by v.
func withLow64(x netip.Addr, v uint64) netip.Addr {
	if x.Is4() {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v))
		return netip.AddrFrom4(b)
	}
	b := x.As16()
	binary.BigEndian.PutUint64(b[8:], v)
	return netip.AddrFrom16(b)
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	x, _ := netip.AddrFromSlice(b)
	return x
}
