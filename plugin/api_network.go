package plugin

import (
	"net/http"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/errdefs"
)

// empty is the reply of calls that return nothing.
type empty struct{}

// capabilities is GetCapabilities' reply. GwAllocChecker asks a v28+
// engine for a GwAllocCheck before each CreateNetwork: isolated networks
// have no gateway address.
type capabilities struct {
	Scope             string
	ConnectivityScope string
	GwAllocChecker    bool
}

// gwAllocCheck is GwAllocCheck's body: CreateNetwork's Options, to come.
type gwAllocCheck struct {
	Options map[string]any
}

// gwAllocCheckReply tells a v28+ engine which gateways not to allocate.
type gwAllocCheckReply struct {
	SkipIPv4 bool
	SkipIPv6 bool
}

// operInfoReply carries EndpointOperInfo's free-form map.
type operInfoReply struct {
	Value map[string]any
}

// nodeDiscovery is libnetwork's DiscoveryType for swarm nodes (the others,
// encryption keys, never reach remote drivers).
const nodeDiscovery = 1

// discovery is DiscoverNew/DiscoverDelete's body (Self, not the documented self).
type discovery struct {
	DiscoveryType int
	DiscoveryData struct {
		Address     string
		BindAddress string
		Self        bool
	}
}

func (s *Server) routes() {
	s.mux.HandleFunc("POST /Plugin.Activate", handle(s, "Activate", func(*empty) (any, error) {
		return map[string][]string{"Implements": {"NetworkDriver", "IpamDriver"}}, nil
	}))
	s.networkRoutes()
	s.ipamRoutes()
	// Anything else is a call this weft does not implement: 404 is how the
	// protocol says so.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.log.WithField("path", r.URL.Path).Debug("unknown call")
		http.NotFound(w, r)
	})
}

func (s *Server) networkRoutes() {
	route := func(method string, h http.HandlerFunc) { s.mux.HandleFunc("POST /NetworkDriver."+method, h) }
	route("GetCapabilities", handle(s, "GetCapabilities", func(*empty) (capabilities, error) {
		return capabilities{Scope: s.scope, ConnectivityScope: s.scope, GwAllocChecker: true}, nil
	}))
	route("GwAllocCheck", handle(s, "GwAllocCheck", func(r *gwAllocCheck) (gwAllocCheckReply, error) {
		var reply gwAllocCheckReply
		if generic, internal, ok := gwAllocOptions(r.Options); ok {
			reply.SkipIPv4, reply.SkipIPv6 = s.driver.SkipGateways(generic, internal)
		}
		return reply, nil
	}))
	route("CreateNetwork", handle(s, "CreateNetwork", func(r *network.CreateNetworkRequest) (empty, error) {
		req, err := networkRequest(r)
		if err != nil {
			return empty{}, err
		}
		return empty{}, s.driver.CreateNetwork(req)
	}))
	route("DeleteNetwork", handle(s, "DeleteNetwork", func(r *network.DeleteNetworkRequest) (empty, error) {
		return empty{}, s.driver.DeleteNetwork(r.NetworkID)
	}))
	route("CreateEndpoint", handle(s, "CreateEndpoint", func(r *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
		req, err := endpointRequest(r)
		if err != nil {
			return nil, err
		}
		reply, err := s.driver.CreateEndpoint(req)
		if err != nil {
			return nil, err
		}
		return endpointResponse(reply), nil
	}))
	route("DeleteEndpoint", handle(s, "DeleteEndpoint", func(r *network.DeleteEndpointRequest) (empty, error) {
		return empty{}, s.driver.DeleteEndpoint(r.NetworkID, r.EndpointID)
	}))
	route("EndpointOperInfo", handle(s, "EndpointOperInfo", func(r *network.InfoRequest) (operInfoReply, error) {
		info, err := s.driver.EndpointInfo(r.NetworkID, r.EndpointID)
		return operInfoReply{Value: endpointInfo(info)}, err
	}))
	route("Join", handle(s, "Join", func(r *network.JoinRequest) (*joinReply, error) {
		reply, err := s.driver.Join(r.NetworkID, r.EndpointID, r.SandboxKey)
		if err != nil {
			return nil, err
		}
		return joinResponse(reply), nil
	}))
	route("Leave", handle(s, "Leave", func(r *network.LeaveRequest) (empty, error) {
		return empty{}, s.driver.Leave(r.NetworkID, r.EndpointID)
	}))
	route("ProgramExternalConnectivity", handle(s, "ProgramExternalConnectivity", func(r *network.ProgramExternalConnectivityRequest) (empty, error) {
		c, err := connectivity(r.Options)
		if err != nil {
			return empty{}, err
		}
		return empty{}, s.driver.ProgramExternalConnectivity(r.NetworkID, r.EndpointID, c)
	}))
	route("RevokeExternalConnectivity", handle(s, "RevokeExternalConnectivity", func(r *network.RevokeExternalConnectivityRequest) (empty, error) {
		return empty{}, s.driver.RevokeExternalConnectivity(r.NetworkID, r.EndpointID)
	}))
	s.swarmRoutes(route)
}

// swarmRoutes serves the calls only swarms make.
func (s *Server) swarmRoutes(route func(method string, h http.HandlerFunc)) {
	// Swarm node discovery feeds the flood lists of swarm vxlan networks.
	for m, joined := range map[string]bool{"DiscoverNew": true, "DiscoverDelete": false} {
		route(m, handle(s, m, func(r *discovery) (empty, error) {
			if r.DiscoveryType != nodeDiscovery {
				return empty{}, nil
			}
			addr, err := netip.ParseAddr(r.DiscoveryData.Address)
			if err != nil {
				return empty{}, errdefs.Errorf(errdefs.Invalid, "node discovery with address %q: %v", r.DiscoveryData.Address, err)
			}
			return empty{}, s.driver.Discover(addr.Unmap(), r.DiscoveryData.Self, joined)
		}))
	}
	// A swarm manager asks for the options to ship to every node.
	route("AllocateNetwork", handle(s, "AllocateNetwork", func(r *network.AllocateNetworkRequest) (network.AllocateNetworkResponse, error) {
		opts, err := s.driver.AllocateNetwork(allocateRequest(r))
		return network.AllocateNetworkResponse{Options: opts}, err
	}))
	route("FreeNetwork", handle(s, "FreeNetwork", func(r *network.FreeNetworkRequest) (empty, error) {
		return empty{}, s.driver.FreeNetwork(r.NetworkID)
	}))
}
