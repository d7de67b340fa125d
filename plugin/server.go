// Package plugin speaks Docker's remote plugin protocol: it serves both
// docker.networkdriver/1.0 and docker.ipamdriver/1.0 on one unix socket and
// turns each HTTP call into a typed call on the network driver or the IPAM.
package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/ipam"
)

// contentType is what dockerd's plugin client expects.
const contentType = "application/vnd.docker.plugins.v1.1+json"

// NetworkDriver is what the server needs from the network driver; it takes
// the driver's own request types, into which the server translates
// dockerd's (translate.go).
type NetworkDriver interface {
	CreateNetwork(*driver.NetworkRequest) error
	DeleteNetwork(networkID string) error
	CreateEndpoint(*driver.EndpointRequest) (*driver.EndpointReply, error)
	DeleteEndpoint(networkID, endpointID string) error
	EndpointInfo(networkID, endpointID string) (driver.EndpointInfo, error)
	Join(networkID, endpointID, sandbox string) (*driver.JoinReply, error)
	Leave(networkID, endpointID string) error
	// ProgramExternalConnectivity publishes ports; nil ports: dockerd
	// sent no port map.
	ProgramExternalConnectivity(networkID, endpointID string, c driver.Connectivity) error
	RevokeExternalConnectivity(networkID, endpointID string) error
	Discover(node netip.Addr, self, joined bool) error
	AllocateNetwork(*driver.AllocateRequest) (map[string]string, error)
	FreeNetwork(networkID string) error
	// SkipGateways answers GwAllocCheck: the families of a network with
	// these -o options that need no gateway address.
	SkipGateways(options map[string]string, internal bool) (v4, v6 bool)
}

// IPAM is what the server needs from the address manager.
type IPAM interface {
	RequestPool(ipam.PoolRequest) (ipam.Pool, error)
	ReleasePool(id string) error
	RequestAddress(ipam.AddressRequest) (netip.Prefix, error)
	ReleaseAddress(poolID, address string) error
}

// Server routes plugin calls. Until SetBackends is called it answers every
// driver call with "starting", which lets the socket listen at once while
// state is restored (dockerd gives a plugin under ten seconds to listen).
type Server struct {
	log    logrus.FieldLogger
	scope  string
	mux    *http.ServeMux
	ready  chan struct{}
	driver NetworkDriver
	ipam   IPAM
}

// Driver scopes. Docker 20.10 refuses `docker network create` for a global
// driver on a node outside a swarm, and a local driver's networks cannot
// carry swarm services: so the scope is the operator's choice (SCOPE).
const (
	ScopeLocal  = "local"
	ScopeGlobal = "global"
)

// NewServer builds the router; scope is ScopeLocal or ScopeGlobal.
func NewServer(log logrus.FieldLogger, scope string) *Server {
	s := &Server{log: log, scope: scope, mux: http.NewServeMux(), ready: make(chan struct{})}
	s.routes()
	return s
}

// SetBackends hands the server its driver and IPAM once they are restored.
func (s *Server) SetBackends(d NetworkDriver, a IPAM) {
	s.driver, s.ipam = d, a
	close(s.ready)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// socketMode is the socket's permission, whatever the umask: only its owner
// may connect. dockerd runs as root, as weft does, and nothing else has
// business driving weft's networks.
const socketMode os.FileMode = 0o600

// Listen creates the unix socket with socketMode, replacing a stale one.
//
// The socket is bound inside a fresh 0700 directory next to path, set to
// socketMode there and then renamed onto path. bind(2) gives the socket the
// mode the umask allows (0777 under umask 0), and a client that connects in
// that window stays queued until accepted, so a chmod after bind comes too
// late; no other user can reach the private directory, and the rename makes
// the socket appear at path with its final mode. (A umask set around bind
// would do the same, but the umask is per process, not per goroutine.)
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	private, err := os.MkdirTemp(dir, ".weft-")
	if err != nil {
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	// Close must remove path, not the temporary name.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, socketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set the mode of socket %s: %w", path, err)
	}
	// rename(2) replaces a stale socket in one step.
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: l, path: path}, nil
}

// socketListener removes its socket file when closed.
type socketListener struct {
	*net.UnixListener
	path string
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// maxBody caps a request body. dockerd's largest request, CreateNetwork
// with every option and a few subnets and aux addresses, is a few KiB; a
// cap 200 times that never refuses a real engine, and bounds what one
// connection makes weft hold in memory.
const maxBody = 1 << 20

// errTooLarge is the class of a body over maxBody (HTTP 413).
var errTooLarge = errors.New("request too large")

// Server timeouts; see NewHTTPServer.
type timeouts struct {
	readHeader, read, idle time.Duration
}

var serverTimeouts = timeouts{
	// dockerd writes a request in one go: a client that takes seconds to
	// send a header or a body at most maxBody long is stalling.
	readHeader: 10 * time.Second,
	read:       30 * time.Second,
	// dockerd keeps connections to plugins open between calls.
	idle: 5 * time.Minute,
}

// NewHTTPServer returns the http.Server to serve h (a *Server) with: bounded
// header size and read and idle times, so a stalled or hostile client
// cannot hold connections or memory for ever.
//
// There is no WriteTimeout: in net/http it runs from the end of the request
// header to the end of the response, so it would bound the call itself, and
// a legitimate CreateNetwork can wait for the restore (readyTimeout) and
// then take seconds of kernel work; cutting it would lose the answer to a
// change that was made. Answers are a few hundred bytes, which the socket
// buffer takes whether or not the client reads. ReadTimeout does not cut a
// slow call either: net/http only cancels the request's context then,
// which the handlers do not use, and still writes the answer.
func NewHTTPServer(h http.Handler) *http.Server { return newHTTPServer(h, serverTimeouts) }

func newHTTPServer(h http.Handler, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// readyTimeout bounds how long a call waits for the restore to finish.
const readyTimeout = 60 * time.Second

// handle wraps a typed call: read the body (at most maxBody), decode, check
// the fields no call can do without, wait for the backends, call, encode.
// The decoder ignores unknown fields: newer engines send more than 20.10 did.
func handle[Req any, Resp any](s *Server, name string, fn func(*Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req := new(Req)
		body, err := readBody(w, r, name)
		if err != nil {
			s.fail(w, name, nil, err)
			return
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, req); err != nil {
				s.fail(w, name, nil, errdefs.Errorf(errdefs.Invalid, "cannot decode %s request: %v", name, err))
				return
			}
		}
		if err := checkRequest(name, req); err != nil {
			s.fail(w, name, nil, err)
			return
		}
		log := s.log.WithFields(idFields(body)).WithField("call", name)
		select {
		case <-s.ready:
		case <-time.After(readyTimeout):
			s.fail(w, name, log, errors.New("weft is still restoring its state; try again"))
			return
		}
		resp, err := fn(req)
		if err != nil {
			s.fail(w, name, log, err)
			return
		}
		w.Header().Set("Content-Type", contentType)
		json.NewEncoder(w).Encode(resp)
		log.WithField("took", time.Since(start).Round(time.Microsecond)).Debug("ok")
	}
}

// fail answers with a non-200 status and {"Err": ...}: dockerd shows Err to
// the user, and the IPAM protocol treats any 200 as success.
func (s *Server) fail(w http.ResponseWriter, name string, log logrus.FieldLogger, err error) {
	if log == nil {
		log = s.log.WithField("call", name)
	}
	status := statusOf(err)
	if status >= 500 {
		log.WithError(err).Error("failed")
	} else {
		log.WithError(err).Info("refused")
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Err": err.Error()})
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request, name string) ([]byte, error) {
	tooLarge := errdefs.Errorf(errTooLarge, "%s request body is larger than %d bytes, the most weft accepts (dockerd's requests are a few KiB)", name, maxBody)
	// A declared length over the cap is refused before reading anything.
	if r.ContentLength > maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, errdefs.Errorf(errdefs.Invalid, "cannot read %s request: %v", name, err)
	}
	return body, nil
}

// idFields pulls the network and endpoint ids out of a request body so every
// log line names them (short).
func idFields(body []byte) logrus.Fields {
	var ids struct{ NetworkID, EndpointID, PoolID string }
	json.Unmarshal(body, &ids)
	f := logrus.Fields{}
	if ids.NetworkID != "" {
		f["network"] = ifname.ShortID(ids.NetworkID)
	}
	if ids.EndpointID != "" {
		f["endpoint"] = ifname.ShortID(ids.EndpointID)
	}
	if ids.PoolID != "" {
		f["pool"] = ids.PoolID
	}
	return f
}
