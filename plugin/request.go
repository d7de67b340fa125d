package plugin

import (
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// checkRequest refuses a decoded request that lacks what every engine sends:
// the ids a call is about, in the form dockerd makes them (links are named
// after them), and objects where the protocol has objects. So the driver
// and the IPAM never act on an empty or odd id or meet a nil where dockerd
// always puts a value. Other fields are theirs to check.
func checkRequest(call string, req any) error {
	// need requires non-empty values: pairs of field name and value.
	need := func(pairs ...string) error {
		for i := 0; i < len(pairs); i += 2 {
			if pairs[i+1] == "" {
				return errdefs.Errorf(errdefs.Invalid, "%s request without %s", call, pairs[i])
			}
		}
		return nil
	}
	// ids requires network and endpoint ids in dockerd's form.
	ids := func(pairs ...string) error {
		if err := need(pairs...); err != nil {
			return err
		}
		for i := 0; i < len(pairs); i += 2 {
			if !ifname.ValidID(pairs[i+1]) {
				return errdefs.Errorf(errdefs.Invalid, "%s request with %s %q: dockerd's ids are up to %d letters, digits, '-', '_' or '.'", call, pairs[i], pairs[i+1], ifname.MaxIDLen)
			}
		}
		return nil
	}
	switch r := req.(type) {
	case *network.CreateNetworkRequest:
		if err := ids("NetworkID", r.NetworkID); err != nil {
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
		if err := ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID); err != nil {
			return err
		}
		if r.Interface == nil {
			return errdefs.Errorf(errdefs.Invalid, "%s request without Interface", call)
		}
	case *network.DeleteNetworkRequest:
		return ids("NetworkID", r.NetworkID)
	case *network.AllocateNetworkRequest:
		return ids("NetworkID", r.NetworkID)
	case *network.FreeNetworkRequest:
		return ids("NetworkID", r.NetworkID)
	case *network.DeleteEndpointRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.InfoRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.JoinRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.LeaveRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.ProgramExternalConnectivityRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *network.RevokeExternalConnectivityRequest:
		return ids("NetworkID", r.NetworkID, "EndpointID", r.EndpointID)
	case *ipam.ReleasePoolRequest:
		return need("PoolID", r.PoolID)
	case *ipam.RequestAddressRequest:
		return need("PoolID", r.PoolID)
	case *ipam.ReleaseAddressRequest:
		return need("PoolID", r.PoolID, "Address", r.Address)
	}
	return nil
}
