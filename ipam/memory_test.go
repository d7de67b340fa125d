package ipam

import (
	"fmt"
	"runtime"
	"testing"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestMemoryFollowsAllocation: 100 IPv6 /104 pools (2^24 addresses each)
// with a gateway and two containers each cost what those 300 addresses
// need, not what the pools could hold: each used to take a 2 MiB bitmap up
// front, 200 MiB in all, and again after a restart.
func TestMemoryFollowsAllocation(t *testing.T) {
	const pools, limit = 100, 1 << 20
	e := newEnv(t)
	base := heapInUse()
	for i := range pools {
		p := e.pool(PoolRequest{Pool: fmt.Sprintf("fd00:%x::/104", i+1), V6: true})
		e.addr(AddressRequest{PoolID: p.ID, Options: gwOpts})
		e.addr(AddressRequest{PoolID: p.ID})
		e.addr(AddressRequest{PoolID: p.ID})
	}
	grown := heapInUse() - base
	t.Logf("%d /104 pools: heap grew by %d KiB", pools, grown>>10)
	if grown > limit {
		t.Errorf("%d /104 pools with 3 addresses each take %d KiB of heap, want at most %d KiB", pools, grown>>10, limit>>10)
	}
	e.reopen()
	grown = heapInUse() - base
	t.Logf("after a restore: heap grew by %d KiB", grown>>10)
	if grown > limit {
		t.Errorf("restored, the %d pools take %d KiB of heap, want at most %d KiB", pools, grown>>10, limit>>10)
	}
	// The restored state is the state: the next address follows the two.
	if got := e.addr(AddressRequest{PoolID: "LocalDefault/fd00:1::/104"}); got != "fd00:1::4/104" {
		t.Errorf("next address after the restore %s, want fd00:1::4/104", got)
	}
	runtime.KeepAlive(e.s)
}
