package plugin

import (
	"encoding/json"
	"strconv"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/netmode"
)

// Keys dockerd (libnetwork) puts in the Options of its requests.
const (
	keyGeneric      = "com.docker.network.generic" // the user's -o options
	keyEnableIPv6   = "com.docker.network.enable_ipv6"
	keyInternal     = "com.docker.network.internal"
	keyPortMap      = "com.docker.network.portmap"
	keyExposedPorts = "com.docker.network.endpoint.exposedports"
	keyIfName       = driver.OptIfName
	keyNoProxy6to4  = "com.docker.network.driver.private.no_proxy_6to4"
)

// routeConnected is libnetwork's RouteType for a route with no next hop.
const routeConnected = 1

// networkRequest translates CreateNetwork into the driver's request.
// checkRequest has already refused null pool entries.
func networkRequest(r *network.CreateNetworkRequest) (*driver.NetworkRequest, error) {
	req := &driver.NetworkRequest{NetworkID: r.NetworkID, IPv4Data: ipamData(r.IPv4Data), IPv6Data: ipamData(r.IPv6Data)}
	var err error
	if req.IPv6, err = boolOption(r.Options, keyEnableIPv6); err != nil {
		return nil, err
	}
	if req.Internal, err = boolOption(r.Options, keyInternal); err != nil {
		return nil, err
	}
	if req.Options, err = genericOptions(r.Options); err != nil {
		return nil, err
	}
	return req, nil
}

// gwAllocOptions reads GwAllocCheck's options, CreateNetwork's to come.
// ok is false for options CreateNetwork will refuse: they skip no gateway,
// and CreateNetwork, which comes next, says what is wrong with them.
func gwAllocOptions(opts map[string]any) (generic map[string]string, internal, ok bool) {
	internal, ierr := boolOption(opts, keyInternal)
	generic, gerr := genericOptions(opts)
	return generic, internal, ierr == nil && gerr == nil
}

// genericOptions flattens the user's -o options; dockerd sends them as a
// JSON object of strings.
func genericOptions(opts map[string]any) (map[string]string, error) {
	out := map[string]string{}
	raw, ok := opts[keyGeneric]
	if !ok || raw == nil {
		return out, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, errdefs.Errorf(errdefs.Invalid, "driver options arrived as %T, expected an object", raw)
	}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return nil, errdefs.Errorf(errdefs.Invalid, "option %s has a value of type %T, expected a string", k, v)
		}
	}
	return out, nil
}

// boolOption reads a top-level boolean dockerd sets (absent means false).
func boolOption(opts map[string]any, key string) (bool, error) {
	switch v := opts[key].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		return netmode.ParseBool(key, v)
	default:
		return false, errdefs.Errorf(errdefs.Invalid, "%s has a value of type %T, expected true or false", key, v)
	}
}

// ipamData copies CreateNetwork's pools.
func ipamData(data []*network.IPAMData) []driver.IPAMData {
	var out []driver.IPAMData
	for _, d := range data {
		out = append(out, ipamEntry(d))
	}
	return out
}

// ipamEntry copies one pool; AuxAddresses values other than strings (no
// dockerd sends them) are left out.
func ipamEntry(d *network.IPAMData) driver.IPAMData {
	c := driver.IPAMData{AddressSpace: d.AddressSpace, Pool: d.Pool, Gateway: d.Gateway}
	for name, v := range d.AuxAddresses {
		if s, ok := v.(string); ok {
			if c.AuxAddresses == nil {
				c.AuxAddresses = map[string]string{}
			}
			c.AuxAddresses[name] = s
		}
	}
	return c
}

// allocateRequest translates a swarm manager's AllocateNetwork.
func allocateRequest(r *network.AllocateNetworkRequest) *driver.AllocateRequest {
	req := &driver.AllocateRequest{NetworkID: r.NetworkID, Options: r.Options}
	for i := range r.IPv4Data {
		req.IPv4Data = append(req.IPv4Data, ipamEntry(&r.IPv4Data[i]))
	}
	for i := range r.IPv6Data {
		req.IPv6Data = append(req.IPv6Data, ipamEntry(&r.IPv6Data[i]))
	}
	return req
}

// endpointRequest translates CreateEndpoint; checkRequest has already
// refused one without Interface.
func endpointRequest(r *network.CreateEndpointRequest) (*driver.EndpointRequest, error) {
	req := &driver.EndpointRequest{
		NetworkID: r.NetworkID, EndpointID: r.EndpointID,
		Address: r.Interface.Address, AddressIPv6: r.Interface.AddressIPv6, MAC: r.Interface.MacAddress,
	}
	if raw, ok := r.Options[keyExposedPorts]; ok {
		if err := decodeLabel(raw, &req.Exposed); err != nil {
			return nil, errdefs.Errorf(errdefs.Invalid, "unreadable %s: %v", keyExposedPorts, err)
		}
	}
	if raw, ok := r.Options[keyIfName]; ok && raw != nil {
		s, ok := raw.(string)
		if !ok {
			return nil, errdefs.Errorf(errdefs.Invalid, "invalid value for endpoint option %s: want an interface name, got %v", keyIfName, raw)
		}
		req.IfName = s
	}
	return req, nil
}

// endpointResponse answers CreateEndpoint with only what dockerd left empty.
func endpointResponse(reply *driver.EndpointReply) *network.CreateEndpointResponse {
	if reply.MAC == "" {
		return &network.CreateEndpointResponse{}
	}
	return &network.CreateEndpointResponse{Interface: &network.EndpointInterface{MacAddress: reply.MAC}}
}

// connectivity reads ProgramExternalConnectivity's options: the port map
// (nil when dockerd sent none, an empty list when it sent an empty one) and
// no_proxy_6to4 (Docker 28+, a JSON true when set).
func connectivity(opts map[string]any) (driver.Connectivity, error) {
	c := driver.Connectivity{NoProxy6to4: opts[keyNoProxy6to4] == true}
	raw, ok := opts[keyPortMap]
	if !ok || raw == nil {
		return c, nil
	}
	c.Ports = []driver.PortBinding{}
	if err := decodeLabel(raw, &c.Ports); err != nil {
		return c, errdefs.Errorf(errdefs.Invalid, "unreadable %s: %v", keyPortMap, err)
	}
	return c, nil
}

// endpointInfo is EndpointOperInfo's map, with Docker's bridge's keys.
func endpointInfo(info driver.EndpointInfo) map[string]any {
	out := map[string]any{}
	if len(info.Ports) > 0 {
		out[keyPortMap] = info.Ports
	}
	if len(info.Exposed) > 0 {
		out[keyExposedPorts] = info.Exposed
	}
	return out
}

// joinReply is Join's answer: go-plugins-helpers' JoinResponse, whose
// InterfaceName lacks DstName (read by dockerd since 29).
type joinReply struct {
	network.JoinResponse
	InterfaceName interfaceName // shadows JoinResponse's in JSON
}

// interfaceName names the link dockerd moves into the container: SrcName,
// renamed to DstName, or to DstPrefix and an index when DstName is empty
// (and by dockerd before 29, which ignores DstName).
type interfaceName struct {
	SrcName   string
	DstPrefix string
	DstName   string `json:",omitempty"`
}

// joinResponse answers Join.
func joinResponse(reply *driver.JoinReply) *joinReply {
	resp := &joinReply{
		JoinResponse: network.JoinResponse{
			// weft gives every non-internal endpoint a way out of its own;
			// this also keeps dockerd from adding a docker_gwbridge
			// interface.
			DisableGatewayService: true,
		},
		InterfaceName: interfaceName{SrcName: reply.Link, DstPrefix: reply.IfacePrefix, DstName: reply.IfName},
	}
	if reply.Gateway.IsValid() {
		resp.Gateway = reply.Gateway.String()
	}
	if reply.GatewayIPv6.IsValid() {
		resp.GatewayIPv6 = reply.GatewayIPv6.String()
	}
	for _, r := range reply.Routes {
		resp.StaticRoutes = append(resp.StaticRoutes, &network.StaticRoute{Destination: r.Destination.String(), RouteType: routeConnected})
	}
	return resp
}

// decodeLabel re-encodes a JSON value dockerd sent inside Options into v.
func decodeLabel(raw any, v any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
