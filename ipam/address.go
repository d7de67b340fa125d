package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/store"
)

// AddressRequest is dockerd's RequestAddress. Address is empty for "any free
// address", else a plain IP or an IP/len (--ip, --ip6, --gateway,
// --aux-address); Options may mark a gateway request (RequestTypeOption).
type AddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

// RequestAddress allocates an address of the pool and returns it with the
// pool's prefix length, e.g. 10.1.0.5/24.
//
// An empty request gets the next free address of the --ip-range (or of the
// pool); an empty gateway request gets the lowest free one. A specific
// address may lie anywhere in the pool. Asking again for an address in use is
// a conflict in the local space and succeeds in the global one (the swarm
// leader replays its allocations).
func (s *Service) RequestAddress(req AddressRequest) (netip.Prefix, error) {
	gateway := req.Options[RequestTypeOption] == GatewayRequest

	s.mu.Lock()
	defer s.mu.Unlock()

	p, ok := s.pools[req.PoolID]
	if !ok {
		return netip.Prefix{}, errorf(ErrNotFound, "unknown address pool %q: weft has no such pool; remove and recreate the network", req.PoolID)
	}
	serial := p.serial || req.Options[SerialOption] == "true"

	var x netip.Addr
	dynamic := req.Address == ""
	if dynamic {
		if x, ok = p.alloc.next(serial && !gateway); !ok {
			return netip.Prefix{}, p.exhausted()
		}
	} else {
		var err error
		if x, err = p.checkSpecific(req.Address, gateway); err != nil {
			return netip.Prefix{}, err
		}
		if p.alloc.has(x) {
			if p.repeatable() {
				s.log.WithFields(logrus.Fields{"pool": p.id, "address": x}).Debug("ipam: address requested again")
				return netip.PrefixFrom(x, p.prefix.Bits()), nil
			}
			return netip.Prefix{}, errorf(ErrConflict, "address %s is already in use on this network", x)
		}
	}

	err := s.st.Update(func(tx *store.Tx) error {
		// Every dynamic allocation moves the cursor serial requests
		// continue from, also in a pool that is not serial itself: store
		// it, so a restart continues where this process would have.
		if dynamic {
			if err := tx.Put(poolKind, p.id, p.record(x)); err != nil {
				return err
			}
		}
		return tx.Put(addressKind, addressKey(p.id, x), addressRecord{Gateway: gateway})
	})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("store address %s of pool %s: %w", x, p.id, err)
	}
	p.alloc.take(x, dynamic)
	s.log.WithFields(logrus.Fields{"pool": p.id, "address": x, "gateway": gateway}).Debug("ipam: address allocated")
	return netip.PrefixFrom(x, p.prefix.Bits()), nil
}

// checkSpecific parses and validates a requested address of p.
func (p *pool) checkSpecific(text string, gateway bool) (netip.Addr, error) {
	flag := "--ip"
	switch {
	case gateway:
		flag = "--gateway"
	case p.prefix.Addr().Is6():
		flag = "--ip6"
	}
	x, err := parseAddr(text)
	if err != nil {
		return netip.Addr{}, errorf(ErrInvalid, "invalid %s %q: not an IP address", flag, text)
	}
	if !p.prefix.Contains(x) {
		if gateway {
			return netip.Addr{}, errorf(ErrInvalid, "gateway %s is outside --subnet %s", x, p.prefix)
		}
		return netip.Addr{}, errorf(ErrInvalid, "%s %s is outside the network's subnet %s", flag, x, p.prefix)
	}
	if what := p.alloc.reserved(x); what != "" {
		return netip.Addr{}, errorf(ErrInvalid, "%s %s is %s of %s and cannot be assigned", flag, x, what, p.prefix)
	}
	return x, nil
}

func (p *pool) exhausted() error {
	where := p.prefix.String()
	if p.sub.IsValid() {
		where += " (sub-range " + p.sub.String() + ")"
	}
	return errorf(ErrExhausted, "no free address left in %s; widen --subnet or --ip-range, or remove containers", where)
}

// parseAddr accepts "10.1.0.5" or "10.1.0.5/24" (the length is ignored).
func parseAddr(text string) (netip.Addr, error) {
	if strings.Contains(text, "/") {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			return netip.Addr{}, err
		}
		return p.Addr().Unmap(), nil
	}
	x, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Addr{}, err
	}
	if x.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("zone not allowed")
	}
	return x.Unmap(), nil
}

// ReleaseAddress frees address (a plain IP or IP/len) of pool poolID.
// Releasing an unknown pool or an address not in use succeeds.
func (s *Service) ReleaseAddress(poolID, address string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pools[poolID]
	if !ok {
		s.log.WithFields(logrus.Fields{"pool": poolID, "address": address}).Debug("ipam: release in unknown pool ignored")
		return nil
	}
	x, err := parseAddr(address)
	if err != nil {
		return errorf(ErrInvalid, "invalid address %q to release: not an IP address", address)
	}
	if !p.prefix.Contains(x) || !p.alloc.has(x) {
		s.log.WithFields(logrus.Fields{"pool": poolID, "address": x}).Debug("ipam: release of free address ignored")
		return nil
	}
	err = s.st.Update(func(tx *store.Tx) error {
		return tx.Delete(addressKind, addressKey(p.id, x))
	})
	if err != nil {
		return fmt.Errorf("remove address %s of pool %s from the store: %w", x, p.id, err)
	}
	p.alloc.release(x)
	s.log.WithFields(logrus.Fields{"pool": p.id, "address": x}).Debug("ipam: address released")
	return nil
}
