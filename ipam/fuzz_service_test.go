package ipam

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/store"
)

// fuzzPoolRequests are the pool requests FuzzService makes: defaults of
// both spaces and families, overlapping subnets, sub-ranges, serial pools,
// /31 and /32, the issue's /104, and malformed ones.
var fuzzPoolRequests = []PoolRequest{
	{},
	{V6: true},
	{AddressSpace: GlobalSpace},
	{AddressSpace: GlobalSpace, V6: true},
	{Pool: "10.1.0.0/24"},
	{Pool: "10.1.0.0/16"},
	{Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25"},
	{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24"},
	{AddressSpace: GlobalSpace, Pool: "10.1.0.0/24", SubPool: "10.1.0.0/30"},
	{Pool: "10.2.0.0/29", Options: map[string]string{SerialOption: "true"}},
	{Pool: "10.3.0.0/31"},
	{Pool: "10.3.0.9/32"},
	{Pool: "172.17.0.0/16"},
	{AddressSpace: GlobalSpace, Pool: "10.0.0.0/23"},
	{Pool: "fd00:1::/104", V6: true},
	{Pool: "fd00:2::/104", SubPool: "fd00:2::ff:ff00/120", V6: true},
	{Pool: "fd77:6566:7400::/64", V6: true},
	{AddressSpace: GlobalSpace, Pool: "fd77:6566:7400::/64", V6: true},
	{Pool: "fd77:6566:7401::/63", V6: true},
	{Pool: "fd00:3::/48", V6: true},
	{Pool: "10.4.0.5/24"},
	{Pool: "10.5.0.0/24", SubPool: "10.6.0.0/25"},
	{AddressSpace: "Elsewhere", Pool: "10.7.0.0/24"},
	{Pool: "fd00:4::/64"},
	{SubPool: "10.8.0.0/24"},
}

// fuzzStoreDir is a directory for a fuzzed store: on tmpfs when there is
// one, as every change is an fsync.
func fuzzStoreDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "weft-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// snapshot describes every pool as a restart must find it again: its
// request, options, how many addresses it holds and whether it holds
// those the fuzzer was given, its cursor, and what a lowest-first and a
// serial request would get next.
func snapshot(s *Service, held map[string]map[netip.Addr]bool) map[string]string {
	out := map[string]string{}
	for id, p := range s.pools {
		next, ok := p.alloc.next(false)
		nextSerial, serialOK := p.alloc.next(true)
		missing := 0
		for x := range held[id] {
			if !p.alloc.has(x) {
				missing++
			}
		}
		out[id] = fmt.Sprintf("space=%s prefix=%s sub=%s serial=%v swarmCopy=%v used=%d missing=%d cursor=%s next=%s,%v nextSerial=%s,%v",
			p.space, p.prefix, p.sub, p.serial, p.swarmCopy, usedCount(p.alloc.used), missing, p.alloc.cursor, next, ok, nextSerial, serialOK)
	}
	return out
}

// FuzzService drives the whole IPAM, on a store in a temporary directory,
// with a stream of requests (2 bytes each) and restarts. It checks that
// every error has a class, that an address is inside its pool, never
// handed out twice and never given to two callers unless the pool may be
// asked again (swarm), that a default pool overlaps no other pool, and
// that a restart restores exactly the state it left.
func FuzzService(f *testing.F) {
	// The cases: v6 defaults of both spaces, /104 pools and a
	// restart; serial pools across a restart; swarm copies.
	f.Add([]byte{0, 1, 0, 3, 2, 0, 2, 1, 6, 0, 2, 0, 2, 1})
	f.Add([]byte{0, 14, 0, 15, 2, 0, 2, 1, 2, 1, 3, 0x80, 6, 0, 2, 0, 2, 1})
	f.Add([]byte{0, 9, 2, 2, 2, 2, 2, 2, 4, 0, 6, 0, 2, 2, 6, 0, 2, 2})
	f.Add([]byte{0, 4, 2, 0, 3, 5, 5, 0, 6, 0, 3, 5, 0, 4, 1, 0, 0, 4})
	f.Add([]byte{0, 7, 0, 8, 3, 1, 3, 1, 2, 0, 6, 0, 3, 1, 1, 0, 0, 7})
	f.Add([]byte{0, 16, 0, 17, 0, 18, 0, 1, 0, 3, 6, 0, 0, 1, 0, 3})
	f.Add([]byte{0, 10, 0, 11, 2, 0, 2, 0, 2, 0, 2, 1, 2, 1, 6, 0})
	f.Add([]byte{0, 20, 0, 21, 0, 22, 0, 23, 0, 24, 0, 5, 0, 4, 0, 12, 0, 0})
	f.Add([]byte{0, 4, 2, 3, 2, 7, 4, 0, 2, 3, 6, 0, 2, 3, 2, 0, 1, 0, 0, 4, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400] // every step is a durable write
		}
		path := filepath.Join(fuzzStoreDir(t), "weft.db")
		log := logrus.New()
		log.SetOutput(io.Discard)
		open := func() (*store.Store, *Service) {
			st, err := store.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(st, log)
			if err != nil {
				t.Fatal(err)
			}
			return st, s
		}
		st, s := open()
		defer func() { st.Close() }()

		var pools []string                       // ids of pools held, in order
		held := map[string]map[netip.Addr]bool{} // addresses handed out, per pool
		classed := func(op string, err error) {
			for _, c := range []error{errdefs.Invalid, errdefs.Conflict, errdefs.Exhausted, errdefs.NotFound} {
				if errors.Is(err, c) {
					return
				}
			}
			t.Fatalf("%s: error %q has no class", op, err)
		}
		pick := func(b byte) (string, *pool) {
			if len(pools) == 0 {
				return "", nil
			}
			id := pools[int(b)%len(pools)]
			return id, s.pools[id]
		}
		for ops := data; len(ops) >= 2; ops = ops[2:] {
			op, arg := ops[0]%7, ops[1]
			switch op {
			case 0: // RequestPool
				req := fuzzPoolRequests[int(arg)%len(fuzzPoolRequests)]
				before := map[string]bool{}
				for id := range s.pools {
					before[id] = true
				}
				p, err := s.RequestPool(req)
				if err != nil {
					classed(fmt.Sprintf("RequestPool(%+v)", req), err)
					if len(s.pools) != len(before) {
						t.Fatalf("a failed RequestPool(%+v) left a pool", req)
					}
					continue
				}
				np := s.pools[p.ID]
				if np == nil || np.prefix != p.Prefix {
					t.Fatalf("RequestPool(%+v) = %+v, not held", req, p)
				}
				for id, o := range s.pools {
					if id == p.ID || !o.prefix.Overlaps(p.Prefix) {
						continue
					}
					if o.space == np.space {
						t.Fatalf("pool %s overlaps %s in the same space", p.ID, id)
					}
					if req.Pool == "" {
						t.Fatalf("default pool %s overlaps %s", p.ID, id)
					}
				}
				if before[p.ID] {
					if !np.repeatable() {
						t.Fatalf("local pool %s handed out twice", p.ID)
					}
					continue
				}
				pools = append(pools, p.ID)
				held[p.ID] = map[netip.Addr]bool{}
			case 1: // ReleasePool
				id, p := pick(arg)
				if p == nil {
					continue
				}
				if err := s.ReleasePool(id); err != nil {
					t.Fatalf("ReleasePool(%s): %v", id, err)
				}
				if _, ok := s.pools[id]; ok {
					t.Fatalf("pool %s still held after its release", id)
				}
				for i, x := range pools {
					if x == id {
						pools = append(pools[:i], pools[i+1:]...)
						break
					}
				}
				delete(held, id)
			case 2, 3: // RequestAddress: dynamic (gateway, serial) or specific
				id, p := pick(arg >> 3)
				if p == nil {
					continue
				}
				req := AddressRequest{PoolID: id, Options: map[string]string{}}
				if arg&1 != 0 {
					req.Options[RequestTypeOption] = GatewayRequest
				}
				if arg&2 != 0 {
					req.Options[SerialOption] = "true"
				}
				if op == 3 {
					hi := arg >> 2
					x := fuzzOffset(p.prefix, hi&0x80|hi&0x3f, arg)
					req.Address = x.String()
					if arg&4 != 0 {
						req.Address = netip.PrefixFrom(x, p.prefix.Bits()).String()
					}
				}
				got, err := s.RequestAddress(req)
				if err != nil {
					classed(fmt.Sprintf("RequestAddress(%+v)", req), err)
					continue
				}
				x := got.Addr()
				if got.Bits() != p.prefix.Bits() || !p.prefix.Contains(x) {
					t.Fatalf("RequestAddress(%+v) = %s, outside pool %s", req, got, p.prefix)
				}
				if p.alloc.reserved(x) != "" {
					t.Fatalf("RequestAddress(%+v) = %s, a reserved address", req, got)
				}
				if req.Address == "" {
					rng := p.prefix
					if p.sub.IsValid() {
						rng = p.sub
					}
					if !rng.Contains(x) {
						t.Fatalf("dynamic address %s outside the range %s", x, rng)
					}
				}
				if held[id][x] && (req.Address == "" || !p.repeatable()) {
					t.Fatalf("%s of pool %s handed out twice", x, id)
				}
				held[id][x] = true
			case 4: // ReleaseAddress
				id, p := pick(arg)
				if p == nil {
					continue
				}
				var x netip.Addr
				for a := range held[id] {
					if !x.IsValid() || a.Less(x) {
						x = a
					}
				}
				addr := "garbage"
				if x.IsValid() {
					addr = x.String()
				}
				err := s.ReleaseAddress(id, addr)
				if !x.IsValid() {
					if !errors.Is(err, errdefs.Invalid) {
						t.Fatalf("ReleaseAddress(%s, garbage): %v", id, err)
					}
					continue
				}
				if err != nil || p.alloc.has(x) {
					t.Fatalf("ReleaseAddress(%s, %s): %v, still used %v", id, x, err, p.alloc.has(x))
				}
				delete(held[id], x)
			case 5: // MarkSwarmCopy
				_, p := pick(arg)
				if p == nil {
					continue
				}
				if err := s.MarkSwarmCopy(p.space, p.prefix); err != nil {
					t.Fatalf("MarkSwarmCopy(%s, %s): %v", p.space, p.prefix, err)
				}
			case 6: // restart
				before := snapshot(s, held)
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				st, s = open()
				after := snapshot(s, held)
				if len(after) != len(before) {
					t.Fatalf("restart: %d pools, want %d", len(after), len(before))
				}
				for id, b := range before {
					a, ok := after[id]
					if !ok {
						t.Fatalf("restart lost pool %s", id)
					}
					if a != b {
						t.Fatalf("restart changed pool %s:\nbefore %+v\nafter  %+v", id, b, a)
					}
				}
			}
			for id, addrs := range held {
				p := s.pools[id]
				for x := range addrs {
					if !p.alloc.has(x) {
						t.Fatalf("%s of pool %s handed out but not in use", x, id)
					}
				}
				if n := usedCount(p.alloc.used); n != len(addrs) {
					t.Fatalf("pool %s holds %d addresses, %d were handed out", id, n, len(addrs))
				}
			}
		}
	})
}
