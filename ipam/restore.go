package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/store"
)

// restore loads every stored pool and address into memory. Records that
// cannot be understood are logged and skipped rather than failing start-up:
// one bad record must not take every weft network down.
func (s *Service) restore() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addresses := 0
	err := s.st.View(func(tx *store.Tx) error {
		err := tx.ForEach(poolKind, func(id string, raw []byte) error {
			s.restorePool(id, raw)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.ForEach(addressKind, func(key string, _ []byte) error {
			if s.restoreAddress(key) {
				addresses++
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load IPAM state: %w", err)
	}
	s.log.WithFields(logrus.Fields{"pools": len(s.pools), "addresses": addresses}).Debug("ipam: state restored")
	return nil
}

func (s *Service) restorePool(id string, raw []byte) {
	log := s.log.WithField("pool", id)
	space, prefix, sub, err := parsePoolID(id)
	if err != nil {
		log.WithError(err).Warn("ipam: skipping unreadable stored pool")
		return
	}
	var rec poolRecord
	if err := store.Decode(raw, &rec); err != nil {
		log.WithError(err).Warn("ipam: skipping unreadable stored pool")
		return
	}
	p := &pool{id: id, space: space, prefix: prefix, sub: sub, serial: rec.Serial, swarmCopy: rec.SwarmCopy, alloc: newAllocator(prefix, sub)}
	if last, err := netip.ParseAddr(rec.Last); err == nil && prefix.Contains(last) {
		p.alloc.cursor = last
	}
	s.pools[id] = p
}

// restoreAddress marks the address stored under key in use; it reports
// whether the record was usable.
func (s *Service) restoreAddress(key string) bool {
	log := s.log.WithField("key", key)
	i := strings.LastIndex(key, "|")
	if i < 0 {
		log.Warn("ipam: skipping unreadable stored address")
		return false
	}
	p, ok := s.pools[key[:i]]
	if !ok {
		log.Warn("ipam: skipping stored address of an unknown pool")
		return false
	}
	x, err := netip.ParseAddr(key[i+1:])
	if err != nil || !p.prefix.Contains(x) {
		log.Warn("ipam: skipping unreadable stored address")
		return false
	}
	p.alloc.take(x, false)
	return true
}
