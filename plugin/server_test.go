package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/sysctl"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/store"
)

// client talks to a Server over a real unix socket, as dockerd does.
type client struct {
	t    *testing.T
	http *http.Client
}

// call posts body (JSON-encoded unless it is a string, sent as is) and
// returns the status and the decoded JSON answer. Every answer but a 404
// must be a JSON object: a dropped connection or a body dockerd cannot read
// fails the test.
func (c *client) call(method string, body any) (int, map[string]any) {
	c.t.Helper()
	raw, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		raw = string(b)
	}
	resp, err := c.http.Post("http://plugin/"+method, contentType, strings.NewReader(raw))
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s: read the answer: %v", method, err)
	}
	out := map[string]any{}
	if resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode, out
	}
	if err := json.Unmarshal(data, &out); err != nil {
		c.t.Fatalf("%s: answer %q is not a JSON object: %v", method, data, err)
	}
	if resp.StatusCode != http.StatusOK && out["Err"] == nil {
		c.t.Errorf("%s: status %d without Err: %s", method, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

// newServer serves a real driver and IPAM on a socket; the driver works in
// a throwaway namespace.
func newServer(t *testing.T) *client {
	ns := testlab.NewNS(t)
	testlab.RequireCommand(t, "iptables")
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	addrs, err := ipam.New(st, log)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := driver.New(driver.Config{
		Store: st, Netlink: ns.NL, Log: log,
		Firewall: firewall.New(firewall.Config{Prefix: []string{"ip", "netns", "exec", ns.Name}, Log: log}),
		Sysctls:  sysctl.NamespaceWriter{NS: ns.Handle()},
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "weft.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(log, ScopeLocal)
	srv.SetBackends(drv, addrs)
	hs := NewHTTPServer(srv)
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return &client{t: t, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

func TestProtocol(t *testing.T) {
	c := newServer(t)

	if code, out := c.call("Plugin.Activate", nil); code != 200 || !strings.Contains(toJSON(out), "IpamDriver") {
		t.Errorf("Activate: %d %v", code, out)
	}
	if code, out := c.call("NetworkDriver.GetCapabilities", nil); code != 200 || out["Scope"] != "local" {
		t.Errorf("GetCapabilities: %d %v", code, out)
	}
	if code, out := c.call("IpamDriver.GetDefaultAddressSpaces", nil); code != 200 || out["LocalDefaultAddressSpace"] != "LocalDefault" {
		t.Errorf("GetDefaultAddressSpaces: %d %v", code, out)
	}
	// A call weft does not implement answers 404, which dockerd reads as "not supported".
	if code, _ := c.call("NetworkDriver.SomethingNew", map[string]any{}); code != http.StatusNotFound {
		t.Errorf("unknown call answered %d, want 404", code)
	}
	// Newer engines send fields 20.10 did not: they are ignored, not refused.
	code, out := c.call("IpamDriver.RequestPool", map[string]any{"AddressSpace": "LocalDefault", "Pool": "10.5.0.0/24", "FutureField": 1})
	if code != 200 || out["PoolID"] == nil {
		t.Fatalf("RequestPool: %d %v", code, out)
	}
	poolID := out["PoolID"].(string)
	// IPAM errors must be non-200: a 200 with an error counts as success.
	code, out = c.call("IpamDriver.RequestPool", map[string]any{"AddressSpace": "LocalDefault", "Pool": "10.5.0.0/16"})
	if code == 200 || !strings.Contains(toJSON(out["Err"]), "10.5.0.0/16") {
		t.Errorf("overlapping pool: %d %v", code, out)
	}
	code, out = c.call("IpamDriver.RequestAddress", map[string]any{"PoolID": poolID, "Address": "10.6.0.1"})
	if code == 200 || !strings.Contains(toJSON(out["Err"]), "10.6.0.1") {
		t.Errorf("address outside pool: %d %v", code, out)
	}
	// Driver errors carry Err with the option named.
	code, out = c.call("NetworkDriver.CreateNetwork", map[string]any{
		"NetworkID": "n1", "Options": map[string]any{"com.docker.network.generic": map[string]any{"com.docker.network.bridge.enable_icc": "flase"}},
		"IPv4Data": []any{map[string]any{"Pool": "10.5.0.0/24", "Gateway": "10.5.0.1/24"}},
	})
	if code != http.StatusBadRequest || !strings.Contains(toJSON(out["Err"]), "enable_icc") {
		t.Errorf("bad option: %d %v", code, out)
	}
	// A null subnet of a macvlan network with a host shim is refused with
	// an answer; it used to crash the handler and drop the connection.
	code, out = c.call("NetworkDriver.CreateNetwork", `{"NetworkID":"n2","Options":{"com.docker.network.generic":{"mode":"macvlan","host_shim":"10.7.0.250"}},
		"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.7.0.0/24","Gateway":"10.7.0.1/24"},null]}`)
	if e := toJSON(out["Err"]); code != http.StatusBadRequest || !strings.Contains(e, "IPv4Data") || !strings.Contains(e, "null") {
		t.Errorf("null IPv4Data: %d %v", code, out)
	}
	// Deleting and releasing what weft does not know succeeds, with an
	// empty answer.
	for method, body := range map[string]any{
		"NetworkDriver.DeleteNetwork":  map[string]any{"NetworkID": "nope"},
		"NetworkDriver.DeleteEndpoint": map[string]any{"NetworkID": "nope", "EndpointID": "nope"},
		"NetworkDriver.Leave":          map[string]any{"NetworkID": "nope", "EndpointID": "nope"},
		"IpamDriver.ReleasePool":       map[string]any{"PoolID": "LocalDefault/10.250.0.0/24"},
		"IpamDriver.ReleaseAddress":    map[string]any{"PoolID": poolID, "Address": "10.5.0.77"},
	} {
		if code, out := c.call(method, body); code != 200 || len(out) != 0 {
			t.Errorf("%s of an unknown id: %d %v, want 200 {}", method, code, out)
		}
	}
	// The server still answers after all of the above.
	if code, out := c.call("Plugin.Activate", nil); code != 200 || !strings.Contains(toJSON(out), "NetworkDriver") {
		t.Errorf("Activate at the end: %d %v", code, out)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
