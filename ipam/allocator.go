package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// maxFill bounds FillBenchmark.
const maxFill = 1 << 24

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
	if pool.Addr().BitLen()-pool.Bits() <= 64 {
		a.used = newChunkSet(pool)
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
// to a /16); it stops after maxFill addresses.
func FillBenchmark(prefix netip.Prefix) (time.Duration, int) {
	a := newAllocator(prefix.Masked(), netip.Prefix{})
	start := time.Now()
	n := 0
	for n < maxFill {
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

// chunkBits is how many addresses one chunk of a chunkSet covers: 128
// bytes of bitmap, so an address used alone costs little and a filled
// range about 1.3 bits per address.
const chunkBits = 1024

// chunk is the bitmap of chunkBits consecutive addresses.
type chunk struct {
	used int // bits set
	bits [chunkBits / 64]uint64
}

// chunkSet is a bitmap over a pool of at most 64 host bits, cut in chunks
// that exist only while one of their addresses is in use: its memory
// follows what is allocated, not the pool's size (a v6 /104 has 2^24
// addresses; a bitmap of all of them is 2 MiB).
type chunkSet struct {
	base    netip.Addr // the pool's first address
	baseLow uint64     // low64(base)
	chunks  map[uint64]*chunk
	// last and lastIdx cache the chunk used last: filling a pool, and
	// every lowest-first search, stays in one chunk for chunkBits steps.
	last    *chunk
	lastIdx uint64
}

func newChunkSet(pool netip.Prefix) *chunkSet {
	base := pool.Masked().Addr()
	return &chunkSet{base: base, baseLow: low64(base), chunks: map[uint64]*chunk{}}
}

// off is x's offset in the pool.
func (s *chunkSet) off(x netip.Addr) uint64 { return low64(x) - s.baseLow }

// at is the address at offset o.
func (s *chunkSet) at(o uint64) netip.Addr { return withLow64(s.base, s.baseLow+o) }

// chunk returns chunk idx, nil if none of its addresses is in use.
func (s *chunkSet) chunk(idx uint64) *chunk {
	if s.last != nil && s.lastIdx == idx {
		return s.last
	}
	c := s.chunks[idx]
	if c != nil {
		s.last, s.lastIdx = c, idx
	}
	return c
}

func (s *chunkSet) has(x netip.Addr) bool {
	o := s.off(x)
	c := s.chunk(o / chunkBits)
	return c != nil && c.bits[o%chunkBits/64]&(1<<(o%64)) != 0
}

func (s *chunkSet) add(x netip.Addr) {
	o := s.off(x)
	idx := o / chunkBits
	c := s.chunk(idx)
	if c == nil {
		c = &chunk{}
		s.chunks[idx] = c
		s.last, s.lastIdx = c, idx
	}
	w, bit := o%chunkBits/64, uint64(1)<<(o%64)
	if c.bits[w]&bit == 0 {
		c.bits[w] |= bit
		c.used++
	}
}

func (s *chunkSet) remove(x netip.Addr) {
	o := s.off(x)
	idx := o / chunkBits
	c := s.chunk(idx)
	if c == nil {
		return
	}
	w, bit := o%chunkBits/64, uint64(1)<<(o%64)
	if c.bits[w]&bit == 0 {
		return
	}
	c.bits[w] &^= bit
	if c.used--; c.used == 0 {
		delete(s.chunks, idx)
		if s.last == c {
			s.last = nil
		}
	}
}

func (s *chunkSet) firstFree(from, to netip.Addr) (netip.Addr, bool) {
	i, t := s.off(from), s.off(to)
	for i <= t {
		idx := i / chunkBits
		c := s.chunk(idx)
		if c == nil {
			return s.at(i), true // nothing of this chunk is in use
		}
		for w := i % chunkBits / 64; w < chunkBits/64; w++ {
			word := c.bits[w]
			if w == i%chunkBits/64 {
				word |= 1<<(i%64) - 1 // bits below i count as used
			}
			if word == ^uint64(0) {
				continue
			}
			free := idx*chunkBits + w*64 + uint64(bits.TrailingZeros64(^word))
			if free > t {
				return netip.Addr{}, false
			}
			return s.at(free), true
		}
		next := (idx + 1) * chunkBits
		if next == 0 { // past the end of a 64-bit pool
			break
		}
		i = next
	}
	return netip.Addr{}, false
}

// sparseSet holds the used addresses of a pool with more than 64 host bits,
// beyond what a chunkSet's offsets cover.
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
