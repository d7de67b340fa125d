package plugin

import (
	"net/http"
	"net/netip"
	"reflect"
	"testing"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/internal/netmode"
)

// TestTranslateOptions: dockerd's option maps become the driver's typed
// requests: -o values of any JSON scalar as strings, the top-level
// booleans, and a clear refusal of what no dockerd sends.
func TestTranslateOptions(t *testing.T) {
	tests := []struct {
		body string
		want *driver.NetworkRequest // nil: refused with err
		err  []string
	}{
		{`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.driver.mtu":1400,"com.docker.network.bridge.enable_icc":false,"mode":"bridge"},"com.docker.network.enable_ipv6":"true","com.docker.network.internal":true}}`,
			&driver.NetworkRequest{NetworkID: "n1", IPv6: true, Internal: true,
				Options: map[string]string{"com.docker.network.driver.mtu": "1400", "com.docker.network.bridge.enable_icc": "false", "mode": "bridge"}}, nil},
		{`{"NetworkID":"n1","Options":{"com.docker.network.generic":"mode=vxlan"}}`, nil,
			[]string{"driver options arrived as string, expected an object"}},
		{`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":["vxlan"]}}}`, nil,
			[]string{"option mode has a value of type []interface {}, expected a string"}},
		{`{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":1}}`, nil,
			[]string{"com.docker.network.enable_ipv6 has a value of type float64, expected true or false"}},
		{`{"NetworkID":"n1","Options":{"com.docker.network.internal":"yes please"}}`, nil,
			[]string{`invalid value "yes please" for option com.docker.network.internal`, "use true or false"}},
		{`{"NetworkID":"n1","IPv4Data":[{"Pool":"10.1.0.0/24","AuxAddresses":{"host":"10.1.0.250","odd":7}}]}`,
			&driver.NetworkRequest{NetworkID: "n1", Options: map[string]string{},
				IPv4Data: []driver.IPAMData{{Pool: "10.1.0.0/24", AuxAddresses: map[string]string{"host": "10.1.0.250"}}}}, nil},
	}
	for _, tt := range tests {
		s, f := newRecorded()
		a := post(s, "/NetworkDriver.CreateNetwork", tt.body)
		got := f.take()
		if tt.want == nil {
			wantErrReply(t, a, http.StatusBadRequest, tt.err...)
			if len(got) > 0 {
				t.Errorf("%s reached the driver", tt.body)
			}
			continue
		}
		if want := []recorded{{"CreateNetwork", tt.want}}; a.status != http.StatusOK || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d, driver got %#v, want %#v", tt.body, a.status, got, want)
		}
	}
}

// TestTranslatePorts: the port labels of CreateEndpoint and
// ProgramExternalConnectivity, and an empty port map, which withdraws the
// ports the endpoint published, unlike a missing one.
func TestTranslatePorts(t *testing.T) {
	s, f := newRecorded()
	a := post(s, "/NetworkDriver.CreateEndpoint", `{"NetworkID":"n1","EndpointID":"e1","Interface":{},"Options":{"com.docker.network.endpoint.exposedports":"80/tcp"}}`)
	wantErrReply(t, a, http.StatusBadRequest, "unreadable com.docker.network.endpoint.exposedports")
	a = post(s, "/NetworkDriver.ProgramExternalConnectivity", `{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":{"Proto":6}}}`)
	wantErrReply(t, a, http.StatusBadRequest, "unreadable com.docker.network.portmap")
	if got := f.take(); len(got) > 0 {
		t.Errorf("unreadable ports reached the driver: %v", got)
	}
	for _, c := range []struct {
		options string
		want    []driver.PortBinding
		noProxy bool
	}{
		{`{}`, nil, false},
		{`{"com.docker.network.portmap":[]}`, []driver.PortBinding{}, false},
		{`{"com.docker.network.portmap":[{"Proto":17,"Port":53,"HostIP":"::1","HostPort":5353,"HostPortEnd":5353}]}`,
			[]driver.PortBinding{{Proto: 17, Port: 53, HostIP: "::1", HostPort: 5353, HostPortEnd: 5353}}, false},
		// Docker 28+: another endpoint is the container's IPv6 gateway.
		{`{"com.docker.network.portmap":[],"com.docker.network.driver.private.no_proxy_6to4":true}`, []driver.PortBinding{}, true},
		{`{"com.docker.network.portmap":[],"com.docker.network.driver.private.no_proxy_6to4":"yes"}`, []driver.PortBinding{}, false},
	} {
		post(s, "/NetworkDriver.ProgramExternalConnectivity", `{"NetworkID":"n1","EndpointID":"e1","Options":`+c.options+`}`)
		got := f.take()
		if len(got) != 1 || !reflect.DeepEqual(got[0].req, programCall{"n1", "e1", c.want, c.noProxy}) || (got[0].req.(programCall).Ports == nil) != (c.want == nil) {
			t.Errorf("port map %s: driver got %#v, want %#v", c.options, got, c.want)
		}
	}
}

// TestTranslateReplies: the driver's answers in dockerd's terms: ipvlan
// l3's connected default routes, and no Interface in CreateEndpoint's
// answer when weft chose no MAC (echoing dockerd's fields fails it).
func TestTranslateReplies(t *testing.T) {
	resp := joinResponse(&driver.JoinReply{Link: "wi1", IfacePrefix: "eth", JoinInfo: netmode.JoinInfo{Routes: []netmode.Route{
		{Destination: netip.MustParsePrefix("0.0.0.0/0")}, {Destination: netip.MustParsePrefix("::/0")},
	}}})
	if resp.Gateway != "" || resp.GatewayIPv6 != "" || len(resp.StaticRoutes) != 2 || !resp.DisableGatewayService ||
		resp.StaticRoutes[0].Destination != "0.0.0.0/0" || resp.StaticRoutes[0].RouteType != 1 || resp.StaticRoutes[1].Destination != "::/0" {
		t.Errorf("join answer %+v", resp)
	}
	if r := endpointResponse(&driver.EndpointReply{}); r.Interface != nil {
		t.Errorf("CreateEndpoint answer without a MAC: %+v", r.Interface)
	}
}
