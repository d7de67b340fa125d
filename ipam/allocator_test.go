package ipam

import (
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

// TestDenseSparseAgree runs the same random operations on a bitmap-backed and
// a map-backed allocator and expects identical answers.
func TestDenseSparseAgree(t *testing.T) {
	pool := netip.MustParsePrefix("10.1.0.0/22")
	sub := netip.MustParsePrefix("10.1.1.0/24")
	for _, serial := range []bool{false, true} {
		dense := newAllocator(pool, sub)
		sparse := newAllocator(pool, sub)
		sparse.used = sparseSet{}
		rng := rand.New(rand.NewPCG(1, 2))
		var held []netip.Addr
		for i := 0; i < 5000; i++ {
			if len(held) > 0 && rng.IntN(3) == 0 {
				j := rng.IntN(len(held))
				dense.release(held[j])
				sparse.release(held[j])
				held = append(held[:j], held[j+1:]...)
				continue
			}
			x1, ok1 := dense.next(serial)
			x2, ok2 := sparse.next(serial)
			if x1 != x2 || ok1 != ok2 {
				t.Fatalf("step %d: dense %s %v, sparse %s %v", i, x1, ok1, x2, ok2)
			}
			if ok1 {
				dense.take(x1, true)
				sparse.take(x2, true)
				held = append(held, x1)
			}
		}
	}
}

func TestSparseV6Fill(t *testing.T) {
	a := newAllocator(netip.MustParsePrefix("fd00::/64"), netip.Prefix{})
	if _, ok := a.used.(sparseSet); !ok {
		t.Fatalf("a /64 must use the sparse set, got %T", a.used)
	}
	for i := 1; i <= 1000; i++ {
		x, ok := a.next(false)
		if !ok {
			t.Fatal("exhausted")
		}
		if want := withLow64(netip.MustParseAddr("fd00::"), uint64(i)); x != want {
			t.Fatalf("got %s, want %s", x, want)
		}
		a.take(x, true)
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
