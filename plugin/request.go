package plugin

import (
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/errdefs"
)

// checkRequest refuses a decoded request that lacks what every engine sends:
// the ids a call is about, and objects where the protocol has objects. So
// the driver and the IPAM never act on an empty id or meet a nil where
// dockerd always puts a value. Other fields are theirs to check.
func checkRequest(call string, req any) error {
	need := func(pairs ...string) error {
		for i := 0; i < len(pairs); i += 2 {
			if pairs[i+1] == "" {
				return errdefs.Errorf(errdefs.Invalid, "%s request without %s", call, pairs[i])
			}
		}
		return nil
	}
	switch r := req.(type) {
	case *network.CreateNetworkRequest:
		if err := need("NetworkID", r.NetworkID); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			data []*network.IPAMData
		}{{"IPv4Data", r.IPv4Data}, {"IPv6Data", r.IPv6Data}} {
			for i, d := range f.data {
				if d == nil {
					return errdefs.Errorf(errdefs.Invalid, "%s request with a null entry in %s (entry %d)", call, f.name, i+1)
				}
			}
		}
	case *network.CreateEndpointRequest:
		if err := need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID); err != nil {
			return err
		}
		if r.Interface == nil {
			return errdefs.Errorf(errdefs.Invalid, "%s request without Interface", call)
		}
	case *network.DeleteNetworkRequest:
		return need("NetworkID", r.NetworkID)
	case *network.AllocateNetworkRequest:
		return need("NetworkID", r.NetworkID)
	case *network.FreeNetworkRequest:
		return need("NetworkID", r.NetworkID)
	case *network.DeleteEndpointRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.InfoRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.JoinRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.LeaveRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.ProgramExternalConnectivityRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.RevokeExternalConnectivityRequest:
		return need("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *ipam.ReleasePoolRequest:
		return need("PoolID", r.PoolID)
	case *ipam.RequestAddressRequest:
		return need("PoolID", r.PoolID)
	case *ipam.ReleaseAddressRequest:
		return need("PoolID", r.PoolID, "Address", r.Address)
	}
	return nil
}
