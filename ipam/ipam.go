// Package ipam is weft's IP address management: address pools (docker
// network create --subnet/--ip-range) and the addresses handed out from them
// (gateways, --aux-address, container --ip).
//
// The bookkeeping lives in memory (see allocator.go) and every change is
// first committed to the project's store in one durable transaction, so a
// process killed at any moment restarts with consistent state, and a request
// that fails leaves nothing behind.
//
// The two address spaces dockerd knows, LocalDefault and GlobalDefault (the
// swarm allocator's), are kept completely apart: the same subnet may exist in
// both, because on a swarm manager one weft process sees both kinds of calls.
package ipam

import (
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/store"
)

// Address space names, as returned to dockerd's GetDefaultAddressSpaces.
const (
	// LocalSpace is the address space of networks local to one engine.
	LocalSpace = "LocalDefault"
	// GlobalSpace is the address space the swarm allocator uses.
	GlobalSpace = "GlobalDefault"
)

// Option keys dockerd and swarm send.
const (
	// SerialOption set to "true" (in RequestPool or RequestAddress options)
	// hands out addresses serially: the next address after the last one
	// handed out, wrapping, instead of the lowest free one.
	SerialOption = "com.docker.network.ipam.serial"
	// RequestTypeOption is the RequestAddress option naming the request type.
	RequestTypeOption = "RequestAddressType"
	// GatewayRequest is the RequestTypeOption value of a gateway request.
	GatewayRequest = "com.docker.network.gateway"
)

// Store kinds used by this package.
const (
	poolKind    = "ipam-pools"
	addressKind = "ipam-addresses"
)

// Error classes. Every error this package returns for a bad or impossible
// request matches one of them with errors.Is, so the plugin layer can map it
// to an HTTP status; the error text itself is meant for the docker user and
// does not repeat the class.
var (
	// ErrInvalid marks a malformed request (bad CIDR, address outside the
	// subnet, unknown address space...).
	ErrInvalid = errdefs.Invalid
	// ErrConflict marks a request that clashes with existing state
	// (overlapping subnet, address already in use).
	ErrConflict = errdefs.Conflict
	// ErrExhausted marks a request that cannot be met because everything
	// is in use (no free default pool, no free address).
	ErrExhausted = errdefs.Exhausted
	// ErrNotFound marks a request naming a pool weft does not know.
	ErrNotFound = errdefs.NotFound
)

// errorf makes an error of one class; see internal/errdefs.
var errorf = errdefs.Errorf

// Service allocates pools and addresses. It is safe for concurrent use.
type Service struct {
	st  *store.Store
	log logrus.FieldLogger

	// mu protects pools and every allocator in it. It is held across the
	// store transaction of a change, so memory and disk change together.
	mu    sync.Mutex
	pools map[string]*pool
}

// pool is one allocated address pool.
type pool struct {
	id     string
	space  string
	prefix netip.Prefix
	sub    netip.Prefix // zero when the whole pool is the dynamic range
	serial bool
	// swarmCopy marks the pool of a swarm network's copy on this node;
	// see MarkSwarmCopy.
	swarmCopy bool
	alloc     *allocator
}

// repeatable reports whether dockerd may ask for this pool and its
// addresses again without releasing them first: the swarm allocator
// replays its requests, and a node's dockerd forgets its swarm copies.
// Such repeats get what weft already holds.
func (p *pool) repeatable() bool { return p.space == GlobalSpace || p.swarmCopy }

// record is the pool's stored form; last is the address last handed out
// dynamically, if any.
func (p *pool) record(last netip.Addr) poolRecord {
	r := poolRecord{Serial: p.serial, SwarmCopy: p.swarmCopy}
	if last.IsValid() {
		r.Last = last.String()
	}
	return r
}

// poolRecord is the stored form of a pool; the pool's space, prefix and
// sub-range are its key (the pool id).
type poolRecord struct {
	Serial    bool `json:"serial,omitempty"`
	SwarmCopy bool `json:"swarm_copy,omitempty"`
	// Last is the last address handed out dynamically, so serial
	// allocation continues after a restart where it would have.
	Last string `json:"last,omitempty"`
}

// addressRecord is the stored form of one allocated address; the key is
// poolID|address.
type addressRecord struct {
	Gateway bool `json:"gateway,omitempty"`
}

// New returns a Service holding the state stored in st.
func New(st *store.Store, log logrus.FieldLogger) (*Service, error) {
	s := &Service{st: st, log: log, pools: map[string]*pool{}}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultAddressSpaces returns the local and the global address space names,
// the answer to dockerd's GetDefaultAddressSpaces.
func (s *Service) DefaultAddressSpaces() (string, string) {
	return LocalSpace, GlobalSpace
}

func addressKey(poolID string, a netip.Addr) string {
	return poolID + "|" + a.String()
}
