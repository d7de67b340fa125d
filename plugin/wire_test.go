package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/ipam"
)

// answer is a reply as dockerd reads it.
type answer struct {
	status int
	raw    []byte
	body   any // raw decoded, nil if not JSON
}

// errText is the reply's {"Err": ...}, or "" if it has none.
func (a answer) errText() string {
	if m, ok := a.body.(map[string]any); ok {
		if e, ok := m["Err"].(string); ok {
			return e
		}
	}
	return ""
}

// serve sends one request to s in process. length is the Content-Length
// header (-1: none, as with a chunked body).
func serve(s *Server, method, path string, body io.Reader, length int64) answer {
	req := httptest.NewRequest(method, path, body)
	req.ContentLength = length
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	a := answer{status: w.Code, raw: w.Body.Bytes()}
	if json.Unmarshal(a.raw, &a.body) != nil {
		a.body = nil
	}
	return a
}

func post(s *Server, path, body string) answer {
	return serve(s, http.MethodPost, path, strings.NewReader(body), int64(len(body)))
}

// route describes one call of the protocol.
type route struct {
	path string
	name string // the call's name in Err texts
	// valid is a body as an engine sends it, got what the backends then
	// receive and resp the answer (JSON).
	valid string
	got   []recorded
	resp  string
	// future is valid with fields a newer engine might add, nested too.
	future string
	// emptyErr is the Err of an empty body; "" if an empty body is fine.
	emptyErr string
	// wrongType is a body with a field of the wrong JSON type, and wrongErr
	// what its Err names.
	wrongType string
	wrongErr  []string
}

const createNetworkBody = `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"},"com.docker.network.enable_ipv6":false},
	"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24","AuxAddresses":{"host":"10.1.0.250"}}],"IPv6Data":[]}`

var createNetworkGot = &driver.NetworkRequest{
	NetworkID: "n1",
	Options:   map[string]string{"mode": "macvlan", "host_shim": "10.1.0.250"},
	IPv4Data:  []driver.IPAMData{{AddressSpace: "LocalDefault", Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24", AuxAddresses: map[string]string{"host": "10.1.0.250"}}},
}

// routes lists every call weft serves.
var routes = []route{
	{path: "/Plugin.Activate", name: "Activate",
		resp: `{"Implements":["NetworkDriver","IpamDriver"]}`, future: `{"Future":{"x":[1]}}`,
		wrongType: `[1]`, wrongErr: []string{"cannot decode Activate request", "array"}},
	{path: "/NetworkDriver.GetCapabilities", name: "GetCapabilities",
		resp: `{"Scope":"local","ConnectivityScope":"local","GwAllocChecker":true}`, future: `{"Future":1}`,
		wrongType: `"x"`, wrongErr: []string{"cannot decode GetCapabilities request", "string"}},
	{path: "/NetworkDriver.GwAllocCheck", name: "GwAllocCheck",
		valid: `{"Options":{"com.docker.network.generic":{"skip6":"true"}}}`, resp: `{"SkipIPv4":false,"SkipIPv6":true}`,
		future:    `{"Options":{"com.docker.network.generic":{"skip6":"true"},"Future":2},"Future":1}`,
		wrongType: `7`, wrongErr: []string{"cannot decode GwAllocCheck request", "number"}},
	{path: "/NetworkDriver.CreateNetwork", name: "CreateNetwork",
		valid: createNetworkBody, got: []recorded{{"CreateNetwork", createNetworkGot}}, resp: `{}`,
		future: `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"},"com.docker.network.enable_ipv6":false},
			"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","Gateway":"10.1.0.1/24","AuxAddresses":{"host":"10.1.0.250"},"Future":true}],"IPv6Data":[],"Future":{"a":[null]}}`,
		emptyErr:  "CreateNetwork request without NetworkID",
		wrongType: `{"NetworkID":"n1","IPv4Data":{"Pool":"10.1.0.0/24"}}`, wrongErr: []string{"cannot decode CreateNetwork request", "IPv4Data"}},
	{path: "/NetworkDriver.DeleteNetwork", name: "DeleteNetwork",
		valid: `{"NetworkID":"n1"}`, got: []recorded{{"DeleteNetwork", "n1"}}, resp: `{}`,
		future: `{"NetworkID":"n1","Force":true}`, emptyErr: "DeleteNetwork request without NetworkID",
		wrongType: `{"NetworkID":["n1"]}`, wrongErr: []string{"cannot decode DeleteNetwork request", "NetworkID"}},
	{path: "/NetworkDriver.CreateEndpoint", name: "CreateEndpoint",
		valid: `{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.1.0.2/24","AddressIPv6":"","MacAddress":""},"Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}]}}`,
		got: []recorded{{"CreateEndpoint", &driver.EndpointRequest{NetworkID: "n1", EndpointID: "e1",
			Address: "10.1.0.2/24", Exposed: []driver.ExposedPort{{Proto: 6, Port: 80}}}}},
		resp:      `{"Interface":{"Address":"","AddressIPv6":"","MacAddress":"02:42:0a:01:00:02"}}`,
		future:    `{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.1.0.2/24","AddressIPv6":"","MacAddress":"","Future":1},"Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}]},"Future":1}`,
		emptyErr:  "CreateEndpoint request without NetworkID",
		wrongType: `{"NetworkID":"n1","EndpointID":"e1","Interface":"eth0"}`, wrongErr: []string{"cannot decode CreateEndpoint request", "Interface"}},
	{path: "/NetworkDriver.DeleteEndpoint", name: "DeleteEndpoint",
		valid: `{"NetworkID":"n1","EndpointID":"e1"}`, got: []recorded{{"DeleteEndpoint", endpointCall{"n1", "e1"}}}, resp: `{}`,
		future: `{"NetworkID":"n1","EndpointID":"e1","Future":1}`, emptyErr: "DeleteEndpoint request without NetworkID",
		wrongType: `{"NetworkID":"n1","EndpointID":1}`, wrongErr: []string{"cannot decode DeleteEndpoint request", "EndpointID"}},
	{path: "/NetworkDriver.EndpointOperInfo", name: "EndpointOperInfo",
		valid: `{"NetworkID":"n1","EndpointID":"e1"}`, got: []recorded{{"EndpointOperInfo", endpointCall{"n1", "e1"}}},
		resp: `{"Value":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}]}}`, future: `{"NetworkID":"n1","EndpointID":"e1","Future":1}`, emptyErr: "EndpointOperInfo request without NetworkID",
		wrongType: `{"NetworkID":true,"EndpointID":"e1"}`, wrongErr: []string{"cannot decode EndpointOperInfo request", "NetworkID"}},
	{path: "/NetworkDriver.Join", name: "Join",
		valid:     `{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/x","Options":{"com.docker.network.portmap":[]}}`,
		got:       []recorded{{"Join", joinCall{"n1", "e1", "/var/run/docker/netns/x"}}},
		resp:      `{"InterfaceName":{"SrcName":"wv-1","DstPrefix":"eth"},"Gateway":"10.1.0.1","GatewayIPv6":"","StaticRoutes":null,"DisableGatewayService":true}`,
		future:    `{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/x","Options":{"com.docker.network.portmap":[]},"Future":[{}]}`,
		emptyErr:  "Join request without NetworkID",
		wrongType: `{"NetworkID":"n1","EndpointID":"e1","Options":[]}`, wrongErr: []string{"cannot decode Join request", "Options"}},
	{path: "/NetworkDriver.Leave", name: "Leave",
		valid: `{"NetworkID":"n1","EndpointID":"e1"}`, got: []recorded{{"Leave", endpointCall{"n1", "e1"}}}, resp: `{}`,
		future: `{"NetworkID":"n1","EndpointID":"e1","Future":1}`, emptyErr: "Leave request without NetworkID",
		wrongType: `{"NetworkID":"n1","EndpointID":{}}`, wrongErr: []string{"cannot decode Leave request", "EndpointID"}},
	{path: "/NetworkDriver.ProgramExternalConnectivity", name: "ProgramExternalConnectivity",
		valid:     `{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080}]}}`,
		got:       []recorded{{"ProgramExternalConnectivity", programCall{"n1", "e1", []driver.PortBinding{{Proto: 6, Port: 80, HostPort: 8080}}, false}}},
		resp:      `{}`,
		future:    `{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080}]},"Future":1}`,
		emptyErr:  "ProgramExternalConnectivity request without NetworkID",
		wrongType: `{"NetworkID":"n1","EndpointID":"e1","Options":"x"}`, wrongErr: []string{"cannot decode ProgramExternalConnectivity request", "Options"}},
	{path: "/NetworkDriver.RevokeExternalConnectivity", name: "RevokeExternalConnectivity",
		valid: `{"NetworkID":"n1","EndpointID":"e1"}`, got: []recorded{{"RevokeExternalConnectivity", endpointCall{"n1", "e1"}}},
		resp: `{}`, future: `{"NetworkID":"n1","EndpointID":"e1","Future":1}`, emptyErr: "RevokeExternalConnectivity request without NetworkID",
		wrongType: `{"NetworkID":1.5,"EndpointID":"e1"}`, wrongErr: []string{"cannot decode RevokeExternalConnectivity request", "NetworkID"}},
	{path: "/NetworkDriver.DiscoverNew", name: "DiscoverNew",
		valid: `{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.11","BindAddress":"0.0.0.0","Self":false}}`,
		got:   []recorded{{"Discover", discoverCall{netip.MustParseAddr("192.0.2.11"), false, true}}}, resp: `{}`,
		future:    `{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.11","BindAddress":"0.0.0.0","Self":false,"Future":1},"Future":1}`,
		wrongType: `{"DiscoveryType":"1"}`, wrongErr: []string{"cannot decode DiscoverNew request", "DiscoveryType"}},
	{path: "/NetworkDriver.DiscoverDelete", name: "DiscoverDelete",
		valid: `{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.11","BindAddress":"0.0.0.0","Self":false}}`,
		got:   []recorded{{"Discover", discoverCall{netip.MustParseAddr("192.0.2.11"), false, false}}}, resp: `{}`,
		future:    `{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.11","BindAddress":"0.0.0.0","Self":false,"Future":1},"Future":1}`,
		wrongType: `{"DiscoveryType":1,"DiscoveryData":"192.0.2.11"}`, wrongErr: []string{"cannot decode DiscoverDelete request", "DiscoveryData"}},
	{path: "/NetworkDriver.AllocateNetwork", name: "AllocateNetwork",
		valid: `{"NetworkID":"n1","Options":{"mode":"vxlan"},"IPv4Data":[{"AddressSpace":"GlobalDefault","Pool":"10.0.0.0/24","Gateway":"10.0.0.1/24"}],"IPv6Data":null}`,
		got: []recorded{{"AllocateNetwork", &driver.AllocateRequest{NetworkID: "n1", Options: map[string]string{"mode": "vxlan"},
			IPv4Data: []driver.IPAMData{{AddressSpace: "GlobalDefault", Pool: "10.0.0.0/24", Gateway: "10.0.0.1/24"}}}}},
		resp:      `{"Options":{"vni":"42"}}`,
		future:    `{"NetworkID":"n1","Options":{"mode":"vxlan"},"IPv4Data":[{"AddressSpace":"GlobalDefault","Pool":"10.0.0.0/24","Gateway":"10.0.0.1/24","Future":1}],"IPv6Data":null,"Future":1}`,
		emptyErr:  "AllocateNetwork request without NetworkID",
		wrongType: `{"NetworkID":"n1","Options":{"vni":5000}}`, wrongErr: []string{"cannot decode AllocateNetwork request", "Options"}},
	{path: "/NetworkDriver.FreeNetwork", name: "FreeNetwork",
		valid: `{"NetworkID":"n1"}`, got: []recorded{{"FreeNetwork", "n1"}}, resp: `{}`,
		future: `{"NetworkID":"n1","Future":1}`, emptyErr: "FreeNetwork request without NetworkID",
		wrongType: `{"NetworkID":null,"Other":1,"NetworkID":2}`, wrongErr: []string{"cannot decode FreeNetwork request", "NetworkID"}},
	{path: "/IpamDriver.GetCapabilities", name: "IpamGetCapabilities",
		resp: `{"RequiresMACAddress":false,"RequiresRequestReplay":false}`, future: `{"Future":1}`,
		wrongType: `[]`, wrongErr: []string{"cannot decode IpamGetCapabilities request", "array"}},
	{path: "/IpamDriver.GetDefaultAddressSpaces", name: "GetDefaultAddressSpaces",
		resp: `{"LocalDefaultAddressSpace":"LocalDefault","GlobalDefaultAddressSpace":"GlobalDefault"}`, future: `{"Future":1}`,
		wrongType: `false`, wrongErr: []string{"cannot decode GetDefaultAddressSpaces request", "bool"}},
	{path: "/IpamDriver.RequestPool", name: "RequestPool",
		valid: `{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","SubPool":"10.1.0.128/25","Options":{"com.docker.network.ipam.serial":"true"},"V6":false}`,
		got: []recorded{{"RequestPool", ipam.PoolRequest{AddressSpace: "LocalDefault", Pool: "10.1.0.0/24", SubPool: "10.1.0.128/25",
			Options: map[string]string{"com.docker.network.ipam.serial": "true"}}}},
		resp:      `{"PoolID":"LocalDefault/10.1.0.0/24","Pool":"10.1.0.0/24","Data":{}}`,
		future:    `{"AddressSpace":"LocalDefault","Pool":"10.1.0.0/24","SubPool":"10.1.0.128/25","Options":{"com.docker.network.ipam.serial":"true"},"V6":false,"Future":1}`,
		wrongType: `{"V6":"yes"}`, wrongErr: []string{"cannot decode RequestPool request", "V6"}},
	{path: "/IpamDriver.ReleasePool", name: "ReleasePool",
		valid: `{"PoolID":"LocalDefault/10.1.0.0/24"}`, got: []recorded{{"ReleasePool", "LocalDefault/10.1.0.0/24"}}, resp: `{}`,
		future: `{"PoolID":"LocalDefault/10.1.0.0/24","Future":1}`, emptyErr: "ReleasePool request without PoolID",
		wrongType: `{"PoolID":{"id":1}}`, wrongErr: []string{"cannot decode ReleasePool request", "PoolID"}},
	{path: "/IpamDriver.RequestAddress", name: "RequestAddress",
		valid: `{"PoolID":"LocalDefault/10.1.0.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}`,
		got: []recorded{{"RequestAddress", ipam.AddressRequest{PoolID: "LocalDefault/10.1.0.0/24",
			Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}}}},
		resp:      `{"Address":"10.1.0.2/24","Data":null}`,
		future:    `{"PoolID":"LocalDefault/10.1.0.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"},"Future":1}`,
		emptyErr:  "RequestAddress request without PoolID",
		wrongType: `{"PoolID":"p","Options":{"a":1}}`, wrongErr: []string{"cannot decode RequestAddress request", "Options"}},
	{path: "/IpamDriver.ReleaseAddress", name: "ReleaseAddress",
		valid: `{"PoolID":"LocalDefault/10.1.0.0/24","Address":"10.1.0.2"}`,
		got:   []recorded{{"ReleaseAddress", releaseAddressCall{"LocalDefault/10.1.0.0/24", "10.1.0.2"}}}, resp: `{}`,
		future: `{"PoolID":"LocalDefault/10.1.0.0/24","Address":"10.1.0.2","Future":1}`, emptyErr: "ReleaseAddress request without PoolID",
		wrongType: `{"PoolID":"p","Address":10}`, wrongErr: []string{"cannot decode ReleaseAddress request", "Address"}},
}

// TestRoutes sends every call a valid body, the same with fields from the
// future, an empty body, null, malformed JSON and a field of the wrong type,
// and checks the status, the Err text and what reached the backends.
func TestRoutes(t *testing.T) {
	for _, r := range routes {
		t.Run(r.name, func(t *testing.T) {
			s, f := newRecorded()
			for _, body := range []string{r.valid, r.future} {
				a := post(s, r.path, body)
				if a.status != http.StatusOK {
					t.Fatalf("%s: %d %s", body, a.status, a.raw)
				}
				wantJSON(t, a, r.resp)
				if got := f.take(); !reflect.DeepEqual(got, r.got) {
					t.Errorf("%s: backends got %#v, want %#v", body, got, r.got)
				}
			}
			for _, body := range []string{"", "null", "{}"} {
				a := post(s, r.path, body)
				f.take()
				if r.emptyErr == "" {
					if a.status != http.StatusOK {
						t.Errorf("body %q: %d %s, want 200", body, a.status, a.raw)
					}
					continue
				}
				wantErrReply(t, a, http.StatusBadRequest, r.emptyErr)
			}
			for _, c := range []struct {
				body string
				subs []string
			}{
				{`{"NetworkID":`, []string{"cannot decode " + r.name + " request", "unexpected end of JSON input"}},
				{`not json`, []string{"cannot decode " + r.name + " request", "invalid character"}},
				{`{} {}`, []string{"cannot decode " + r.name + " request", "after top-level value"}},
				{r.wrongType, r.wrongErr},
			} {
				a := post(s, r.path, c.body)
				wantErrReply(t, a, http.StatusBadRequest, c.subs...)
				if got := f.take(); len(got) > 0 {
					t.Errorf("body %q reached the backends: %v", c.body, got)
				}
			}
			if len(f.malformed) > 0 {
				t.Errorf("backends got malformed requests: %v", f.malformed)
			}
		})
	}
}

// TestNulls: null where dockerd sends an object or a string is refused
// (or, where the field is optional, read as absent) and never reaches the
// backends as a nil they would have to check.
func TestNulls(t *testing.T) {
	tests := []struct {
		path, body string
		status     int
		err        string     // Err text, for a refusal
		got        []recorded // what the backends get, for a 200
	}{
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[null]}`, 400,
			"CreateNetwork request with a null entry in IPv4Data (entry 1)", nil},
		// With host_shim, the null subnets once reached three places
		// that dereferenced them.
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"}},"IPv4Data":[null]}`, 400,
			"CreateNetwork request with a null entry in IPv4Data (entry 1)", nil},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"}},"IPv4Data":[{"Pool":"10.1.0.0/24"},null]}`, 400,
			"CreateNetwork request with a null entry in IPv4Data (entry 2)", nil},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"}},"IPv4Data":[{"Pool":"10.1.0.0/24"}],"IPv6Data":[{"Pool":"fd00::/64"},null]}`, 400,
			"CreateNetwork request with a null entry in IPv6Data (entry 2)", nil},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":null}`, 400, "CreateNetwork request without NetworkID", nil},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":null,"IPv4Data":null,"IPv6Data":null}`, 200, "",
			[]recorded{{"CreateNetwork", &driver.NetworkRequest{NetworkID: "n1", Options: map[string]string{}}}}},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[{"Pool":null,"AuxAddresses":null}]}`, 200, "",
			[]recorded{{"CreateNetwork", &driver.NetworkRequest{NetworkID: "n1", Options: map[string]string{}, IPv4Data: []driver.IPAMData{{}}}}}},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1","Interface":null}`, 400, "CreateEndpoint request without Interface", nil},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1"}`, 400, "CreateEndpoint request without Interface", nil},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":null,"Interface":{}}`, 400, "CreateEndpoint request without EndpointID", nil},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":null},"Options":null}`, 200, "",
			[]recorded{{"CreateEndpoint", &driver.EndpointRequest{NetworkID: "n1", EndpointID: "e1"}}}},
		{"/NetworkDriver.Join", `{"NetworkID":"n1","EndpointID":"e1","Options":null}`, 200, "",
			[]recorded{{"Join", joinCall{"n1", "e1", ""}}}},
		{"/NetworkDriver.ProgramExternalConnectivity", `{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":null}}`, 200, "",
			[]recorded{{"ProgramExternalConnectivity", programCall{"n1", "e1", nil, false}}}},
		{"/NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":null}`, 400, `node discovery with address ""`, nil},
		{"/NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":{"Address":"nope"}}`, 400, `node discovery with address "nope"`, nil},
		{"/NetworkDriver.DiscoverNew", `{"DiscoveryType":1,"DiscoveryData":{"Address":"::ffff:192.0.2.11","Self":true}}`, 200, "",
			[]recorded{{"Discover", discoverCall{netip.MustParseAddr("192.0.2.11"), true, true}}}},
		// Other discovery types (encryption keys) never reach remote drivers.
		{"/NetworkDriver.DiscoverDelete", `{"DiscoveryType":2,"DiscoveryData":null}`, 200, "", nil},
		{"/NetworkDriver.AllocateNetwork", `{"NetworkID":"n1","Options":null,"IPv4Data":[null]}`, 200, "",
			[]recorded{{"AllocateNetwork", &driver.AllocateRequest{NetworkID: "n1", IPv4Data: []driver.IPAMData{{}}}}}},
		{"/IpamDriver.RequestPool", `{"AddressSpace":null,"Pool":null,"Options":null}`, 200, "",
			[]recorded{{"RequestPool", ipam.PoolRequest{}}}},
		{"/IpamDriver.RequestAddress", `{"PoolID":"p","Address":null,"Options":null}`, 200, "",
			[]recorded{{"RequestAddress", ipam.AddressRequest{PoolID: "p"}}}},
		{"/IpamDriver.ReleaseAddress", `{"PoolID":"p","Address":null}`, 400, "ReleaseAddress request without Address", nil},
	}
	for _, tt := range tests {
		s, f := newRecorded()
		a := post(s, tt.path, tt.body)
		if tt.status != http.StatusOK {
			wantErrReply(t, a, tt.status, tt.err)
		} else if a.status != http.StatusOK {
			t.Errorf("%s %s: %d %s, want 200", tt.path, tt.body, a.status, a.raw)
		}
		if got := f.take(); !reflect.DeepEqual(got, tt.got) {
			t.Errorf("%s %s: backends got %#v, want %#v", tt.path, tt.body, got, tt.got)
		}
		if len(f.malformed) > 0 {
			t.Errorf("%s %s: backends got malformed requests: %v", tt.path, tt.body, f.malformed)
		}
	}
}

// TestOddIDs: network and endpoint ids name links; one no dockerd makes is
// refused before it reaches the driver.
func TestOddIDs(t *testing.T) {
	long := strings.Repeat("a", 129)
	for _, c := range []struct{ path, body, err string }{
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"0000000 0"}`, `CreateNetwork request with NetworkID "0000000 0"`},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"../../x"}`, `CreateNetwork request with NetworkID "../../x"`},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e:1","Interface":{}}`, `CreateEndpoint request with EndpointID "e:1"`},
		{"/NetworkDriver.Join", `{"NetworkID":"n1","EndpointID":"é1"}`, `Join request with EndpointID "é1"`},
		{"/NetworkDriver.DeleteNetwork", `{"NetworkID":"` + long + `"}`, "DeleteNetwork request with NetworkID"},
		{"/NetworkDriver.AllocateNetwork", `{"NetworkID":"a\nb"}`, `AllocateNetwork request with NetworkID "a\nb"`},
	} {
		s, f := newRecorded()
		wantErrReply(t, post(s, c.path, c.body), http.StatusBadRequest, c.err, "dockerd's ids are")
		if got := f.take(); len(got) > 0 {
			t.Errorf("%s %s reached the backends", c.path, c.body)
		}
	}
	// Swarm network ids (base 36) and weft's tests' ids pass.
	s, f := newRecorded()
	for _, id := range []string{"ko1m1zcvtgr5k8lyqqde2f2lk", "net-a", strings.Repeat("0f", 32)} {
		if a := post(s, "/NetworkDriver.DeleteNetwork", `{"NetworkID":"`+id+`"}`); a.status != http.StatusOK {
			t.Errorf("id %s: %d %s", id, a.status, a.raw)
		}
	}
	if len(f.malformed) > 0 {
		t.Errorf("malformed: %v", f.malformed)
	}
}

// endless is a body of n bytes, prefix then fill ('a' if zero), made as
// it is read; read counts what was.
type endless struct {
	prefix []byte
	fill   byte
	n      int64
	read   int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.n {
		return 0, io.EOF
	}
	fill := e.fill
	if fill == 0 {
		fill = 'a'
	}
	p = p[:min(int64(len(p)), e.n-e.read)]
	done := 0
	if e.read < int64(len(e.prefix)) {
		done = copy(p, e.prefix[e.read:])
	}
	for i := done; i < len(p); i++ {
		p[i] = fill
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestHugeBody: a 64 MiB body is refused with 413 on every route, having
// read no more than the cap; a declared length over the cap is refused
// before reading anything. A body just under the cap is still decoded.
func TestHugeBody(t *testing.T) {
	const huge, bodyCap = 64 << 20, 1 << 20
	for _, r := range routes {
		for _, declared := range []bool{true, false} {
			s, f := newRecorded()
			body := &endless{prefix: []byte(`{"NetworkID":"`), n: huge}
			length := int64(-1)
			if declared {
				length = huge
			}
			a := serve(s, http.MethodPost, r.path, body, length)
			wantErrReply(t, a, http.StatusRequestEntityTooLarge, r.name+" request body is larger than 1048576 bytes")
			if limit := int64(bodyCap + 1); body.read > limit || declared && body.read > 0 {
				t.Errorf("%s (length declared: %v): read %d bytes of the body", r.path, declared, body.read)
			}
			if got := f.take(); len(got) > 0 {
				t.Errorf("%s: a huge body reached the backends", r.path)
			}
		}
	}
	// Just under the cap: decoded, and refused for what it says.
	s, _ := newRecorded()
	pad := strings.Repeat(" ", bodyCap-len(`{"NetworkID":""}`))
	wantErrReply(t, post(s, "/NetworkDriver.CreateNetwork", `{"NetworkID":""}`+pad), http.StatusBadRequest, "CreateNetwork request without NetworkID")
}

// TestBackendErrors: each error class of the driver and the IPAM becomes
// its status, with the message as Err exactly; dockerd shows it verbatim.
func TestBackendErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
	}{
		{errdefs.Errorf(errdefs.Invalid, "invalid value \"x\" for option mode"), http.StatusBadRequest},
		{errdefs.Errorf(errdefs.Conflict, "--subnet 10.1.0.0/24 overlaps 10.1.0.0/16"), http.StatusConflict},
		{errdefs.Errorf(errdefs.Exhausted, "no free address left in 10.1.0.0/30"), http.StatusConflict},
		{errdefs.Errorf(errdefs.NotFound, "unknown address pool"), http.StatusGone},
		{errors.New("store network n1: disk full"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		for _, r := range routes {
			if r.got == nil {
				continue // a call that reaches no backend
			}
			s, f := newRecorded()
			f.err = tt.err
			a := post(s, r.path, r.valid)
			if a.status != tt.status || a.errText() != tt.err.Error() {
				t.Errorf("%s with error %q: %d %s, want %d and the message as Err", r.path, tt.err, a.status, a.raw, tt.status)
			}
		}
	}
}

// TestUnknownCalls: a call weft does not implement is 404, which dockerd
// reads as "not supported"; so is anything but POST, the only method the
// protocol uses.
func TestUnknownCalls(t *testing.T) {
	s, f := newRecorded()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/NetworkDriver.SomethingNew", http.StatusNotFound},
		{http.MethodPost, "/VolumeDriver.Create", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
		{http.MethodGet, "/NetworkDriver.CreateNetwork", http.StatusNotFound},
	} {
		a := serve(s, c.method, c.path, bytes.NewReader([]byte(createNetworkBody)), int64(len(createNetworkBody)))
		if a.status != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, a.status, c.status)
		}
	}
	if got := f.take(); len(got) > 0 {
		t.Errorf("unknown calls reached the backends: %v", got)
	}
}

// TestNotReady: before the backends are set, a call with a malformed body
// is refused at once rather than waiting for the restore.
func TestNotReady(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewServer(log, ScopeLocal)
	done := make(chan answer, 1)
	go func() { done <- post(s, "/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[null]}`) }()
	select {
	case a := <-done:
		wantErrReply(t, a, http.StatusBadRequest, "null entry in IPv4Data")
	case <-time.After(5 * time.Second):
		t.Fatal("a malformed call waited for the restore")
	}
}

func wantJSON(t *testing.T, a answer, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(a.body, w) {
		t.Errorf("answer %s, want %s", a.raw, want)
	}
}

// wantErrReply checks the status and that the reply is {"Err": ...} with
// every substring in it.
func wantErrReply(t *testing.T, a answer, status int, subs ...string) {
	t.Helper()
	if a.status != status {
		t.Errorf("status %d (%s), want %d", a.status, a.raw, status)
	}
	e := a.errText()
	if e == "" {
		t.Errorf("reply %s has no Err", a.raw)
		return
	}
	for _, s := range subs {
		if !strings.Contains(e, s) {
			t.Errorf("Err %q does not contain %q", e, s)
		}
	}
}
