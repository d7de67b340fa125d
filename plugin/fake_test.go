package plugin

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/ipam"
)

// recorder is a NetworkDriver and IPAM that records what reaches it and
// answers with fixed values (or err). It stands in for the backends only
// where the server's decoding and encoding is under test.
type recorder struct {
	mu    sync.Mutex
	calls []recorded
	// err, when set, is every call's answer.
	err error
	// delay makes every call take that long.
	delay time.Duration
	// malformed lists requests that broke a promise checkRequest makes
	// (an id missing or not in dockerd's form).
	malformed []string
}

// recorded is one call: its name and the request as the backend got it.
type recorded struct {
	method string
	req    any
}

// endpointCall is what the calls about one endpoint receive.
type endpointCall struct{ NetworkID, EndpointID string }

// joinCall is what Join receives.
type joinCall struct{ NetworkID, EndpointID, Sandbox string }

// programCall is what ProgramExternalConnectivity receives.
type programCall struct {
	NetworkID, EndpointID string
	Ports                 []driver.PortBinding
	NoProxy6to4           bool
}

// discoverCall is what Discover receives.
type discoverCall struct {
	Node         netip.Addr
	Self, Joined bool
}

// releaseAddressCall is what ReleaseAddress receives.
type releaseAddressCall struct{ PoolID, Address string }

// Fixed answers of the recorder.
var (
	fakeMAC     = "02:42:0a:01:00:02"
	fakePool    = ipam.Pool{ID: "LocalDefault/10.1.0.0/24", Prefix: netip.MustParsePrefix("10.1.0.0/24"), Data: map[string]string{}}
	fakeAddress = netip.MustParsePrefix("10.1.0.2/24")
	fakeInfo    = driver.EndpointInfo{Exposed: []driver.ExposedPort{{Proto: 6, Port: 80}}}
)

// idForm is dockerd's network and endpoint ids, with room to spare.
var idForm = regexp.MustCompile(`^[0-9A-Za-z._-]{1,128}$`)

// record notes a call whose network and endpoint ids are ids.
func (f *recorder) record(method string, req any, ids ...string) error {
	for _, id := range ids {
		if !idForm.MatchString(id) {
			f.broken(fmt.Sprintf("%s with id %q", method, id))
		}
	}
	return f.recordIPAM(method, req)
}

// recordIPAM notes a call whose required values are need.
func (f *recorder) recordIPAM(method string, req any, need ...string) error {
	time.Sleep(f.delay)
	for _, v := range need {
		if v == "" {
			f.broken(method + " without a required value")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, recorded{method, req})
	return f.err
}

func (f *recorder) broken(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.malformed = append(f.malformed, what)
}

// last returns the calls recorded so far and forgets them.
func (f *recorder) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *recorder) CreateNetwork(r *driver.NetworkRequest) error {
	return f.record("CreateNetwork", r, r.NetworkID)
}

func (f *recorder) DeleteNetwork(id string) error { return f.record("DeleteNetwork", id, id) }

func (f *recorder) CreateEndpoint(r *driver.EndpointRequest) (*driver.EndpointReply, error) {
	if err := f.record("CreateEndpoint", r, r.NetworkID, r.EndpointID); err != nil {
		return nil, err
	}
	return &driver.EndpointReply{MAC: fakeMAC}, nil
}

func (f *recorder) DeleteEndpoint(networkID, endpointID string) error {
	return f.record("DeleteEndpoint", endpointCall{networkID, endpointID}, networkID, endpointID)
}

func (f *recorder) EndpointInfo(networkID, endpointID string) (driver.EndpointInfo, error) {
	if err := f.record("EndpointOperInfo", endpointCall{networkID, endpointID}, networkID, endpointID); err != nil {
		return driver.EndpointInfo{}, err
	}
	return fakeInfo, nil
}

func (f *recorder) Join(networkID, endpointID, sandbox string) (*driver.JoinReply, error) {
	if err := f.record("Join", joinCall{networkID, endpointID, sandbox}, networkID, endpointID); err != nil {
		return nil, err
	}
	return &driver.JoinReply{Link: "wv-1", IfacePrefix: "eth", JoinInfo: netmode.JoinInfo{Gateway: netip.MustParseAddr("10.1.0.1")}}, nil
}

func (f *recorder) Leave(networkID, endpointID string) error {
	return f.record("Leave", endpointCall{networkID, endpointID}, networkID, endpointID)
}

func (f *recorder) ProgramExternalConnectivity(networkID, endpointID string, c driver.Connectivity) error {
	return f.record("ProgramExternalConnectivity", programCall{networkID, endpointID, c.Ports, c.NoProxy6to4}, networkID, endpointID)
}

func (f *recorder) RevokeExternalConnectivity(networkID, endpointID string) error {
	return f.record("RevokeExternalConnectivity", endpointCall{networkID, endpointID}, networkID, endpointID)
}

func (f *recorder) Discover(node netip.Addr, self, joined bool) error {
	return f.record("Discover", discoverCall{node, self, joined})
}

func (f *recorder) AllocateNetwork(r *driver.AllocateRequest) (map[string]string, error) {
	if err := f.record("AllocateNetwork", r, r.NetworkID); err != nil {
		return nil, err
	}
	return map[string]string{"vni": "42"}, nil
}

func (f *recorder) FreeNetwork(id string) error { return f.record("FreeNetwork", id, id) }

// SkipGateways skips the families the options name ("skip4", "skip6"),
// recording nothing: GwAllocCheck has no error to give.
func (f *recorder) SkipGateways(opts map[string]string, _ bool) (v4, v6 bool) {
	return opts["skip4"] == "true", opts["skip6"] == "true"
}

func (f *recorder) RequestPool(r ipam.PoolRequest) (ipam.Pool, error) {
	if err := f.recordIPAM("RequestPool", r); err != nil {
		return ipam.Pool{}, err
	}
	return fakePool, nil
}

func (f *recorder) ReleasePool(id string) error { return f.recordIPAM("ReleasePool", id, id) }

func (f *recorder) RequestAddress(r ipam.AddressRequest) (netip.Prefix, error) {
	if err := f.recordIPAM("RequestAddress", r, r.PoolID); err != nil {
		return netip.Prefix{}, err
	}
	return fakeAddress, nil
}

func (f *recorder) ReleaseAddress(poolID, address string) error {
	return f.recordIPAM("ReleaseAddress", releaseAddressCall{poolID, address}, poolID, address)
}

// newRecorded returns a Server whose backends are a recorder.
func newRecorded() (*Server, *recorder) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel) // run the logging code paths too
	f := &recorder{}
	s := NewServer(log, ScopeLocal)
	s.SetBackends(f, f)
	return s, f
}
