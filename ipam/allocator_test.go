package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// fill hands out every dynamic address of a and returns them in order.
func fill(t testing.TB, a *allocator, serial bool) []netip.Addr {
	t.Helper()
	var got []netip.Addr
	for {
		x, ok := a.next(serial)
		if !ok {
			return got
		}
		if a.has(x) {
			t.Fatalf("next returned %s, which is in use", x)
		}
		a.take(x, true)
		got = append(got, x)
	}
}

func TestAllocatorRanges(t *testing.T) {
	tests := []struct {
		pool, sub   string
		first, last string
		count       int
	}{
		{"10.1.0.0/24", "", "10.1.0.1", "10.1.0.254", 254},
		{"10.1.0.0/30", "", "10.1.0.1", "10.1.0.2", 2},
		{"10.1.0.0/31", "", "10.1.0.0", "10.1.0.1", 2},
		{"10.1.0.7/32", "", "10.1.0.7", "10.1.0.7", 1},
		{"10.1.0.0/24", "10.1.0.128/25", "10.1.0.128", "10.1.0.254", 127},
		{"10.1.0.0/24", "10.1.0.0/25", "10.1.0.1", "10.1.0.127", 127},
		{"10.1.0.0/24", "10.1.0.255/32", "", "", 0},
		{"10.1.0.0/24", "10.1.0.254/31", "10.1.0.254", "10.1.0.254", 1},
		{"fd00::/120", "", "fd00::1", "fd00::ff", 255},
		{"fd00::/127", "", "fd00::1", "fd00::1", 1},
		{"fd00::/128", "", "", "", 0},
		{"10.0.0.0/16", "", "10.0.0.1", "10.0.255.254", 65534},
	}
	for _, tt := range tests {
		t.Run(tt.pool+" "+tt.sub, func(t *testing.T) {
			var sub netip.Prefix
			if tt.sub != "" {
				sub = netip.MustParsePrefix(tt.sub)
			}
			got := fill(t, newAllocator(netip.MustParsePrefix(tt.pool), sub), false)
			if len(got) != tt.count {
				t.Fatalf("got %d addresses, want %d", len(got), tt.count)
			}
			if tt.count == 0 {
				return
			}
			if got[0].String() != tt.first || got[len(got)-1].String() != tt.last {
				t.Errorf("range %s..%s, want %s..%s", got[0], got[len(got)-1], tt.first, tt.last)
			}
		})
	}
}

func TestAllocatorLowestFirstAndSerial(t *testing.T) {
	pool := netip.MustParsePrefix("10.1.0.0/29") // usable .1 to .6
	for _, serial := range []bool{false, true} {
		a := newAllocator(pool, netip.Prefix{})
		fill(t, a, serial)
		a.release(netip.MustParseAddr("10.1.0.4"))
		a.release(netip.MustParseAddr("10.1.0.2"))
		// Lowest-first takes .2; serial continues after .6, wraps, finds .2 too.
		x, _ := a.next(serial)
		if x.String() != "10.1.0.2" {
			t.Fatalf("serial=%v: got %s, want 10.1.0.2", serial, x)
		}
		a.take(x, true)
		// With .1 free again, lowest-first takes it; serial continues after .2.
		a.release(netip.MustParseAddr("10.1.0.1"))
		x, _ = a.next(serial)
		want := map[bool]string{false: "10.1.0.1", true: "10.1.0.4"}[serial]
		if x.String() != want {
			t.Fatalf("serial=%v: got %s, want %s", serial, x, want)
		}
	}
}

// TestSetsAgree runs the same random operations on a chunk-backed and a
// map-backed allocator and expects identical answers; the pools span
// several chunks.
func TestSetsAgree(t *testing.T) {
	for _, c := range []struct{ pool, sub string }{
		{"10.1.0.0/22", "10.1.1.0/24"},
		{"10.1.0.0/20", ""},
		{"fd00::/116", "fd00::400/118"},
	} {
		pool := netip.MustParsePrefix(c.pool)
		var sub netip.Prefix
		if c.sub != "" {
			sub = netip.MustParsePrefix(c.sub)
		}
		for _, serial := range []bool{false, true} {
			chunked := newAllocator(pool, sub)
			if _, ok := chunked.used.(*chunkSet); !ok {
				t.Fatalf("%s uses %T", pool, chunked.used)
			}
			sparse := newAllocator(pool, sub)
			sparse.used = sparseSet{}
			rng := rand.New(rand.NewPCG(1, 2))
			var held []netip.Addr
			for i := 0; i < 20000; i++ {
				if len(held) > 0 && rng.IntN(3) == 0 {
					j := rng.IntN(len(held))
					chunked.release(held[j])
					sparse.release(held[j])
					held = append(held[:j], held[j+1:]...)
					continue
				}
				x1, ok1 := chunked.next(serial)
				x2, ok2 := sparse.next(serial)
				if x1 != x2 || ok1 != ok2 {
					t.Fatalf("%s serial=%v step %d: chunks %s %v, map %s %v", pool, serial, i, x1, ok1, x2, ok2)
				}
				if ok1 {
					chunked.take(x1, true)
					sparse.take(x2, true)
					held = append(held, x1)
				}
			}
		}
	}
}

// TestChunkSetMemory: a chunk exists only while one of its addresses is in
// use.
func TestChunkSetMemory(t *testing.T) {
	a := newAllocator(netip.MustParsePrefix("fd00::/104"), netip.Prefix{})
	set := a.used.(*chunkSet)
	if len(set.chunks) != 0 {
		t.Fatalf("an empty pool holds %d chunks", len(set.chunks))
	}
	far := netip.MustParseAddr("fd00::ff:fffe")
	for range 3000 {
		x, _ := a.next(false)
		a.take(x, true)
	}
	a.take(far, false)
	if len(set.chunks) != 4 { // 3000 from the start, and one far away
		t.Fatalf("%d chunks for 3000 consecutive addresses and one more", len(set.chunks))
	}
	for i := 1; i <= 3000; i++ {
		a.release(withLow64(netip.MustParseAddr("fd00::"), uint64(i)))
	}
	if len(set.chunks) != 1 || !a.has(far) {
		t.Fatalf("after releasing: %d chunks, far in use %v", len(set.chunks), a.has(far))
	}
	a.release(far)
	a.release(far) // twice: nothing to do
	if len(set.chunks) != 0 || a.has(far) {
		t.Fatalf("an emptied pool holds %d chunks", len(set.chunks))
	}
}

// TestChunkSetEnd: searches at the very end of a 64-bit pool stop there.
func TestChunkSetEnd(t *testing.T) {
	pool := netip.MustParsePrefix("fd00::/64")
	set := newChunkSet(pool)
	last := lastAddr(pool)
	from := withLow64(last, ^uint64(0)-2*chunkBits+1) // the last two chunks
	for x := from; ; x = x.Next() {
		set.add(x)
		if x == last {
			break
		}
	}
	if x, ok := set.firstFree(from, last); ok {
		t.Fatalf("found %s free in a full range", x)
	}
	set.remove(last)
	if x, ok := set.firstFree(from, last); !ok || x != last {
		t.Fatalf("got %s %v, want %s", x, ok, last)
	}
	if x, ok := set.firstFree(last, last); !ok || x != last {
		t.Fatalf("got %s %v, want %s", x, ok, last)
	}
}

func TestSetKinds(t *testing.T) {
	for prefix, want := range map[string]string{
		"10.0.0.0/8": "*ipam.chunkSet", "0.0.0.0/0": "*ipam.chunkSet", "fd00::/104": "*ipam.chunkSet",
		"fd00::/64": "*ipam.chunkSet", "fd00::/63": "ipam.sparseSet", "fd00::/48": "ipam.sparseSet",
	} {
		if got := fmt.Sprintf("%T", newAllocator(netip.MustParsePrefix(prefix), netip.Prefix{}).used); got != want {
			t.Errorf("%s uses %s, want %s", prefix, got, want)
		}
	}
}

func TestV6Fill(t *testing.T) {
	for _, prefix := range []string{"fd00::/64", "fd00::/48"} {
		a := newAllocator(netip.MustParsePrefix(prefix), netip.Prefix{})
		for i := 1; i <= 3000; i++ {
			x, ok := a.next(false)
			if !ok {
				t.Fatal("exhausted")
			}
			if want := withLow64(netip.MustParseAddr("fd00::"), uint64(i)); x != want {
				t.Fatalf("%s: got %s, want %s", prefix, x, want)
			}
			a.take(x, true)
		}
	}
}

func TestFillBenchmarkCount(t *testing.T) {
	for prefix, want := range map[string]int{"10.0.0.0/16": 65534, "10.0.0.0/24": 254, "fd00::/112": 65535} {
		if _, n := FillBenchmark(netip.MustParsePrefix(prefix)); n != want {
			t.Errorf("%s: filled %d, want %d", prefix, n, want)
		}
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.0.0/24": "10.1.0.255", "10.1.0.0/32": "10.1.0.0", "0.0.0.0/0": "255.255.255.255",
		"fd00::/64": "fd00::ffff:ffff:ffff:ffff", "fd00::/127": "fd00::1",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

// BenchmarkFill16 fills a v4 /16 with the in-memory allocator.
func BenchmarkFill16(b *testing.B) {
	prefix := netip.MustParsePrefix("10.0.0.0/16")
	for b.Loop() {
		if _, n := FillBenchmark(prefix); n != 65534 {
			b.Fatalf("filled %d", n)
		}
	}
}
