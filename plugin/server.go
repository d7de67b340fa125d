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

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/ipam"
)

// contentType is what dockerd's plugin client expects.
const contentType = "application/vnd.docker.plugins.v1.1+json"

// NetworkDriver is what the server needs from the network driver.
type NetworkDriver interface {
	CreateNetwork(*network.CreateNetworkRequest) error
	DeleteNetwork(*network.DeleteNetworkRequest) error
	CreateEndpoint(*network.CreateEndpointRequest) (*network.CreateEndpointResponse, error)
	DeleteEndpoint(*network.DeleteEndpointRequest) error
	EndpointInfo(*network.InfoRequest) (map[string]any, error)
	Join(*network.JoinRequest) (*network.JoinResponse, error)
	Leave(*network.LeaveRequest) error
	ProgramExternalConnectivity(*network.ProgramExternalConnectivityRequest) error
	RevokeExternalConnectivity(*network.RevokeExternalConnectivityRequest) error
	Discover(node netip.Addr, self, joined bool) error
	AllocateNetwork(*network.AllocateNetworkRequest) (map[string]string, error)
	FreeNetwork(networkID string) error
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

// Listen creates the unix socket, replacing a stale one.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return net.Listen("unix", path)
}

// readyTimeout bounds how long a call waits for the restore to finish.
const readyTimeout = 60 * time.Second

// handle wraps a typed call: decode, wait for the backends, call, encode. The
// decoder ignores unknown fields: newer engines send more than 20.10 did.
func handle[Req any, Resp any](s *Server, name string, fn func(*Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req := new(Req)
		body, err := io.ReadAll(r.Body)
		if err == nil && len(body) > 0 {
			err = json.Unmarshal(body, req)
		}
		if err != nil {
			s.fail(w, name, nil, errdefs.Errorf(errdefs.Invalid, "cannot decode %s request: %v", name, err))
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

// idFields pulls the network and endpoint ids out of a request body so every
// log line names them (short).
func idFields(body []byte) logrus.Fields {
	var ids struct{ NetworkID, EndpointID, PoolID string }
	json.Unmarshal(body, &ids)
	f := logrus.Fields{}
	if ids.NetworkID != "" {
		f["network"] = shortID(ids.NetworkID)
	}
	if ids.EndpointID != "" {
		f["endpoint"] = shortID(ids.EndpointID)
	}
	if ids.PoolID != "" {
		f["pool"] = ids.PoolID
	}
	return f
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
