package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftnet/weft/store"
)

// PoolRequest is dockerd's RequestPool: Pool is --subnet, SubPool --ip-range,
// Options the --ipam-opt map (plus keys dockerd and swarm add).
type PoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

// Pool is an allocated pool. ID is deterministic: the same request always
// gets the same id, and the id alone identifies the pool.
type Pool struct {
	ID     string
	Prefix netip.Prefix
	Data   map[string]string
}

// defaultRange is a block the default pools are cut from.
type defaultRange struct {
	base netip.Prefix
	bits int // prefix length of each pool cut from base
}

// Default pools, as in Docker's default IPAM, plus a fixed ULA /48 per
// space for v6. The spaces' blocks are disjoint: a swarm node holds
// networks of both, and two bridges with one prefix break routing. (Up to
// now both spaces took v6 defaults from the local block; pools cut from it
// then stay valid, and pickDefault goes around them.)
var (
	localV4Defaults = func() []defaultRange {
		var r []defaultRange
		for i := 17; i <= 31; i++ {
			r = append(r, defaultRange{netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16), 16})
		}
		return append(r, defaultRange{netip.MustParsePrefix("192.168.0.0/16"), 20})
	}()
	globalV4Defaults = []defaultRange{{netip.MustParsePrefix("10.0.0.0/8"), 24}}
	localV6Defaults  = []defaultRange{{netip.MustParsePrefix("fd77:6566:7400::/48"), 64}}
	globalV6Defaults = []defaultRange{{netip.MustParsePrefix("fd77:6566:7401::/48"), 64}}
)

func defaultRanges(space string, v6 bool) ([]defaultRange, string) {
	switch {
	case v6 && space == GlobalSpace:
		return globalV6Defaults, "fd77:6566:7401::/48 (as /64s)"
	case v6:
		return localV6Defaults, "fd77:6566:7400::/48 (as /64s)"
	case space == GlobalSpace:
		return globalV4Defaults, "10.0.0.0/8 (as /24s)"
	default:
		return localV4Defaults, "172.17.0.0/16 to 172.31.0.0/16 and 192.168.0.0/16 (as /20s)"
	}
}

// poolID returns the deterministic id of a pool, e.g.
// "LocalDefault/10.1.0.0/24" or "LocalDefault/10.1.0.0/24/10.1.0.128/25".
func poolID(space string, prefix, sub netip.Prefix) string {
	id := space + "/" + prefix.String()
	if sub.IsValid() {
		id += "/" + sub.String()
	}
	return id
}

// parsePoolID is the inverse of poolID.
func parsePoolID(id string) (string, netip.Prefix, netip.Prefix, error) {
	bad := fmt.Errorf("malformed pool id %q", id)
	parts := strings.Split(id, "/")
	if len(parts) != 3 && len(parts) != 5 {
		return "", netip.Prefix{}, netip.Prefix{}, bad
	}
	if parts[0] != LocalSpace && parts[0] != GlobalSpace {
		return "", netip.Prefix{}, netip.Prefix{}, bad
	}
	prefix, err := netip.ParsePrefix(parts[1] + "/" + parts[2])
	if err != nil || prefix != prefix.Masked() {
		return "", netip.Prefix{}, netip.Prefix{}, bad
	}
	var sub netip.Prefix
	if len(parts) == 5 {
		sub, err = netip.ParsePrefix(parts[3] + "/" + parts[4])
		if err != nil || sub != sub.Masked() || !within(sub, prefix) {
			return "", netip.Prefix{}, netip.Prefix{}, bad
		}
	}
	return parts[0], prefix, sub, nil
}

// within reports whether inner lies entirely inside outer.
func within(inner, outer netip.Prefix) bool {
	return inner.Addr().BitLen() == outer.Addr().BitLen() &&
		inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

// checkSpace normalizes an address space name ("" is local).
func checkSpace(space string) (string, error) {
	switch space {
	case "", LocalSpace:
		return LocalSpace, nil
	case GlobalSpace:
		return GlobalSpace, nil
	}
	return "", errorf(ErrInvalid, "unknown address space %q; expected %s or %s", space, LocalSpace, GlobalSpace)
}

// parseCIDR parses the value of a CIDR option; flag names it for the user.
func parseCIDR(flag, value string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(value)
	if err != nil || p.Addr().Is4In6() {
		return netip.Prefix{}, errorf(ErrInvalid, "invalid %s %q: not an IPv4 or IPv6 CIDR such as 10.1.0.0/24", flag, value)
	}
	if p != p.Masked() {
		return netip.Prefix{}, errorf(ErrInvalid, "invalid %s %q: host bits are set; use %s", flag, value, p.Masked())
	}
	return p, nil
}

// RequestPool allocates a pool: the requested --subnet (and --ip-range), or
// a free default pool when req.Pool is empty.
func (s *Service) RequestPool(req PoolRequest) (Pool, error) {
	space, err := checkSpace(req.AddressSpace)
	if err != nil {
		return Pool{}, err
	}
	var prefix, sub netip.Prefix
	if req.Pool != "" {
		if prefix, sub, err = parsePoolRequest(req); err != nil {
			return Pool{}, err
		}
	} else if req.SubPool != "" {
		return Pool{}, errorf(ErrInvalid, "--ip-range %s needs --subnet", req.SubPool)
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if !prefix.IsValid() {
		if prefix, err = s.pickDefault(space, req.V6); err != nil {
			return Pool{}, err
		}
	}
	id := poolID(space, prefix, sub)
	if p, ok := s.pools[id]; ok && p.repeatable() {
		s.log.WithField("pool", id).Debug("ipam: pool requested again")
		return p.public(), nil
	}
	if other := s.overlapping(space, prefix); other != nil {
		return Pool{}, errorf(ErrConflict, "--subnet %s overlaps %s, already used by another weft network", prefix, other.prefix)
	}

	p := &pool{
		id: id, space: space, prefix: prefix, sub: sub,
		serial: req.Options[SerialOption] == "true",
		alloc:  newAllocator(prefix, sub),
	}
	err = s.st.Update(func(tx *store.Tx) error {
		return tx.Put(poolKind, id, p.record(netip.Addr{}))
	})
	if err != nil {
		return Pool{}, fmt.Errorf("store pool %s: %w", id, err)
	}
	s.pools[id] = p
	s.log.WithField("pool", id).Debug("ipam: pool allocated")
	return p.public(), nil
}

// parsePoolRequest validates an explicit --subnet and --ip-range.
func parsePoolRequest(req PoolRequest) (netip.Prefix, netip.Prefix, error) {
	prefix, err := parseCIDR("--subnet", req.Pool)
	if err != nil {
		return netip.Prefix{}, netip.Prefix{}, err
	}
	if prefix.Addr().Is6() != req.V6 {
		want := "IPv4"
		if req.V6 {
			want = "IPv6"
		}
		return netip.Prefix{}, netip.Prefix{}, errorf(ErrInvalid, "--subnet %s given where an %s subnet was expected", prefix, want)
	}
	var sub netip.Prefix
	if req.SubPool != "" {
		if sub, err = parseCIDR("--ip-range", req.SubPool); err != nil {
			return netip.Prefix{}, netip.Prefix{}, err
		}
		if !within(sub, prefix) {
			return netip.Prefix{}, netip.Prefix{}, errorf(ErrInvalid, "--ip-range %s is not inside --subnet %s", sub, prefix)
		}
	}
	return prefix, sub, nil
}

// overlapping returns the lowest pool of space ("": any space) overlapping
// prefix, or nil.
func (s *Service) overlapping(space string, prefix netip.Prefix) *pool {
	var found *pool
	for _, p := range s.pools {
		if (space == "" || p.space == space) && p.prefix.Overlaps(prefix) &&
			(found == nil || p.prefix.Addr().Less(found.prefix.Addr())) {
			found = p
		}
	}
	return found
}

// pickDefault returns the first default pool of space and family that
// overlaps no pool weft holds, in either space: a swarm node has bridges
// of both, and a default is weft's choice, so it never picks a clash.
func (s *Service) pickDefault(space string, v6 bool) (netip.Prefix, error) {
	ranges, desc := defaultRanges(space, v6)
	for _, r := range ranges {
		for c := netip.PrefixFrom(r.base.Addr(), r.bits); c.IsValid() && r.base.Contains(c.Addr()); {
			other := s.overlapping("", c)
			if other == nil {
				return c, nil
			}
			// Skip the candidate, or the whole pool in the way if larger.
			end := lastAddr(c)
			if other.prefix.Bits() < c.Bits() {
				end = lastAddr(other.prefix)
			}
			c = netip.PrefixFrom(end.Next(), r.bits)
		}
	}
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	return netip.Prefix{}, errorf(ErrExhausted, "no free default %s subnet left in %s: all of %s are in use; choose one with --subnet", family, space, desc)
}

// ReleasePool drops the pool id and every address allocated from it.
// Releasing an unknown pool succeeds.
func (s *Service) ReleasePool(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pools[id]
	if !ok {
		s.log.WithField("pool", id).Debug("ipam: release of unknown pool ignored")
		return nil
	}
	err := s.st.Update(func(tx *store.Tx) error {
		var keys []string
		err := tx.ForEachPrefix(addressKind, id+"|", func(key string, _ []byte) error {
			keys = append(keys, key)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(addressKind, k); err != nil {
				return err
			}
		}
		return tx.Delete(poolKind, id)
	})
	if err != nil {
		return fmt.Errorf("remove pool %s from the store: %w", id, err)
	}
	delete(s.pools, p.id)
	s.log.WithField("pool", id).Debug("ipam: pool released")
	return nil
}

func (p *pool) public() Pool {
	return Pool{ID: p.id, Prefix: p.prefix, Data: map[string]string{}}
}

// DynamicRange is the range dockerd draws container addresses from in
// weft's pool prefix of space: the --ip-range, or the whole pool. ok is
// false when weft holds no such pool (the network uses another IPAM).
func (s *Service) DynamicRange(space string, prefix netip.Prefix) (r netip.Prefix, ok bool) {
	space, err := checkSpace(space)
	if err != nil {
		return netip.Prefix{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		if p.space == space && p.prefix == prefix {
			if p.sub.IsValid() {
				return p.sub, true
			}
			return p.prefix, true
		}
	}
	return netip.Prefix{}, false
}

// MarkSwarmCopy marks weft's pool prefix of space as the pool of a swarm
// network's copy on this node. dockerd does not persist those copies: when
// it dies it forgets them without releasing their pools, and when it
// creates the network again it asks for the same pool, gateway and task
// addresses anew. A marked pool answers those repeats with what it holds
// instead of refusing them as clashes. Marking a pool weft does not hold
// (another IPAM's) does nothing.
func (s *Service) MarkSwarmCopy(space string, prefix netip.Prefix) error {
	space, err := checkSpace(space)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		if p.space != space || p.prefix != prefix || p.swarmCopy {
			continue
		}
		rec := p.record(p.alloc.cursor) // the cursor the store already has
		rec.SwarmCopy = true
		if err := s.st.Update(func(tx *store.Tx) error { return tx.Put(poolKind, p.id, rec) }); err != nil {
			return fmt.Errorf("store pool %s: %w", p.id, err)
		}
		p.swarmCopy = true
	}
	return nil
}

// ClaimInUse marks addr in use in every pool of prefix that weft holds,
// where it is free. The driver calls it at start for each running
// container's address: records salvaged from a damaged state database may
// have kept a container but lost its address, which IPAM would otherwise
// hand to the next container. It reports whether any pool changed.
func (s *Service) ClaimInUse(prefix netip.Prefix, addr netip.Addr) (bool, error) {
	addr = addr.Unmap()
	if !prefix.Contains(addr) {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	claimed := false
	for _, p := range s.pools {
		if p.prefix != prefix || p.alloc.has(addr) {
			continue
		}
		if err := s.st.Update(func(tx *store.Tx) error { return tx.Put(addressKind, addressKey(p.id, addr), addressRecord{}) }); err != nil {
			return claimed, fmt.Errorf("store address %s of pool %s: %w", addr, p.id, err)
		}
		p.alloc.take(addr, false)
		claimed = true
	}
	return claimed, nil
}
