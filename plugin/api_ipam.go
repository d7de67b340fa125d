package plugin

import (
	"net/http"

	"github.com/docker/go-plugins-helpers/ipam"

	weftipam "github.com/weftnet/weft/ipam"
)

// ipamCapabilities is IpamDriver.GetCapabilities' reply. weft keeps its own
// durable state, so it needs no replay of the allocations at dockerd start.
type ipamCapabilities struct {
	RequiresMACAddress    bool
	RequiresRequestReplay bool
}

func (s *Server) ipamRoutes() {
	route := func(method string, h http.HandlerFunc) { s.mux.HandleFunc("POST /IpamDriver."+method, h) }
	route("GetCapabilities", handle(s, "IpamGetCapabilities", func(*empty) (ipamCapabilities, error) {
		return ipamCapabilities{}, nil
	}))
	route("GetDefaultAddressSpaces", handle(s, "GetDefaultAddressSpaces", func(*empty) (ipam.AddressSpacesResponse, error) {
		return ipam.AddressSpacesResponse{
			LocalDefaultAddressSpace:  weftipam.LocalSpace,
			GlobalDefaultAddressSpace: weftipam.GlobalSpace,
		}, nil
	}))
	route("RequestPool", handle(s, "RequestPool", func(r *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
		p, err := s.ipam.RequestPool(weftipam.PoolRequest{
			AddressSpace: r.AddressSpace, Pool: r.Pool, SubPool: r.SubPool, Options: r.Options, V6: r.V6,
		})
		if err != nil {
			return nil, err
		}
		return &ipam.RequestPoolResponse{PoolID: p.ID, Pool: p.Prefix.String(), Data: p.Data}, nil
	}))
	route("ReleasePool", handle(s, "ReleasePool", func(r *ipam.ReleasePoolRequest) (empty, error) {
		return empty{}, s.ipam.ReleasePool(r.PoolID)
	}))
	route("RequestAddress", handle(s, "RequestAddress", func(r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
		addr, err := s.ipam.RequestAddress(weftipam.AddressRequest{PoolID: r.PoolID, Address: r.Address, Options: r.Options})
		if err != nil {
			return nil, err
		}
		return &ipam.RequestAddressResponse{Address: addr.String()}, nil
	}))
	route("ReleaseAddress", handle(s, "ReleaseAddress", func(r *ipam.ReleaseAddressRequest) (empty, error) {
		return empty{}, s.ipam.ReleaseAddress(r.PoolID, r.Address)
	}))
}
