package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/errdefs"
)

// fuzzErrors are the answers FuzzServer's backends give (second input).
var fuzzErrors = []error{
	nil,
	errdefs.Errorf(errdefs.Invalid, "bad option"),
	errdefs.Errorf(errdefs.Conflict, "in use"),
	errdefs.Errorf(errdefs.Exhausted, "full"),
	errdefs.Errorf(errdefs.NotFound, "no such pool"),
	errors.New("disk full"),
}

// FuzzServer sends any body to any route (and paths off the routes) with
// backends that answer with any error class, through the HTTP mux and the
// wire decoders. It checks that the server never panics, that every answer
// but a 404 is JSON, every refusal carries Err and the status of its class
// (a malformed request is 400, never 500), that a body over the cap is 413
// and one under it never is, and that what reaches the backends has its ids
// and no nil where dockerd always sends a value.
func FuzzServer(f *testing.F) {
	for i, r := range routes {
		for _, body := range []string{r.valid, r.future, "", "null", "{}", `{"NetworkID":`, r.wrongType} {
			f.Add(uint8(i), uint8(0), uint32(0), []byte(body))
		}
		f.Add(uint8(i), uint8(i%len(fuzzErrors)), uint32(0), []byte(r.valid))
	}
	// Bodies of exactly the cap and one byte more.
	f.Add(uint8(3), uint8(0), uint32(1<<20-len(routes[3].valid)), []byte(routes[3].valid))
	f.Add(uint8(3), uint8(0), uint32(1<<20-len(routes[3].valid)+1), []byte(routes[3].valid))
	// The cases: null subnets of a host_shim network, a body over
	// the cap.
	f.Add(uint8(3), uint8(0), uint32(0), []byte(`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.1.0.250"}},"IPv4Data":[{"Pool":"10.1.0.0/24"},null]}`))
	f.Add(uint8(3), uint8(0), uint32(0), []byte(`{"NetworkID":"n1","IPv6Data":[null]}`))
	f.Add(uint8(5), uint8(0), uint32(0), []byte(`{"NetworkID":"n1","EndpointID":"e1","Interface":null}`))
	f.Add(uint8(12), uint8(0), uint32(0), []byte(`{"DiscoveryType":1,"DiscoveryData":null}`))
	f.Add(uint8(3), uint8(0), uint32(64<<20), []byte(`{"NetworkID":"`))
	f.Add(uint8(len(routes)), uint8(0), uint32(0), []byte(`{}`))
	// Option maps the translation to the driver's requests refuses or
	// flattens (once FuzzNetworkOptions' and FuzzEndpointOptions' seeds).
	for _, body := range []string{
		`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.driver.mtu":1400,"com.docker.network.bridge.enable_icc":false}}}`,
		`{"NetworkID":"n1","Options":{"com.docker.network.generic":"mode=vxlan"}}`,
		`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"mode":["vxlan"]}}}`,
		`{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":1}}`,
	} {
		f.Add(uint8(3), uint8(0), uint32(0), []byte(body))
	}
	f.Add(uint8(5), uint8(0), uint32(0), []byte(`{"NetworkID":"n1","EndpointID":"e1","Interface":{},"Options":{"com.docker.network.endpoint.exposedports":"80/tcp"}}`))
	for _, portmap := range []string{`[{"Proto":99,"Port":80}]`, `[{"Proto":6,"HostIP":"localhost"}]`, `{"Proto":6}`, `null`, `[]`} {
		f.Add(uint8(10), uint8(0), uint32(0), []byte(`{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":`+portmap+`}}`))
	}
	f.Fuzz(func(t *testing.T, route, errIdx uint8, pad uint32, body []byte) {
		path := "/NetworkDriver.Unknown"
		if int(route) < len(routes) {
			path = routes[route].path
		}
		backendErr := fuzzErrors[int(errIdx)%len(fuzzErrors)]
		// The body goes on with pad spaces (up to 64 MiB), read lazily:
		// huge bodies without huge inputs.
		n := int64(len(body)) + int64(pad%(64<<20+1))
		s, rec := newRecorded()
		rec.err = backendErr
		a := serve(s, http.MethodPost, path, io.MultiReader(bytes.NewReader(body), &endless{fill: ' ', n: n - int64(len(body))}), n)
		reached := len(rec.take()) > 0

		if len(rec.malformed) > 0 {
			t.Fatalf("malformed requests reached the backends: %v", rec.malformed)
		}
		if a.status == http.StatusNotFound {
			if int(route) < len(routes) {
				t.Fatalf("%s answered 404: dockerd would take the call as unsupported", path)
			}
			return
		}
		if a.body == nil {
			t.Fatalf("%s: answer %q is not JSON", path, a.raw)
		}
		tooLarge := n > 1<<20
		if tooLarge != (a.status == http.StatusRequestEntityTooLarge) {
			t.Fatalf("%s: a %d-byte body answered %d", path, n, a.status)
		}
		if a.status == http.StatusOK {
			if m, ok := a.body.(map[string]any); ok && m["Err"] != nil {
				t.Fatalf("%s: 200 with Err %v", path, m["Err"])
			}
			if reached && backendErr != nil {
				t.Fatalf("%s: the backend failed with %q but the answer is 200", path, backendErr)
			}
			return
		}
		if strings.TrimSpace(a.errText()) == "" {
			t.Fatalf("%s: status %d without Err: %s", path, a.status, a.raw)
		}
		if reached {
			// The backend's error: its class decides the status, its
			// message is Err as is.
			if backendErr == nil || a.status != statusOf(backendErr) || a.errText() != backendErr.Error() {
				t.Fatalf("%s: backend error %v answered %d %s", path, backendErr, a.status, a.raw)
			}
			return
		}
		// Refused by the server itself: the request is at fault.
		if a.status != http.StatusBadRequest && a.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: a request refused before the backends answered %d %s", path, a.status, a.raw)
		}
		var e struct{ Err string }
		if err := json.Unmarshal(a.raw, &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	})
}
