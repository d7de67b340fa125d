package portmap

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/internal/errdefs"
)

// FuzzCheck decodes any body as the bindings dockerd asks to publish and
// checks that Check never panics, refuses with invalid-input errors only,
// and accepts only protocols weft publishes and host addresses that are
// addresses.
func FuzzCheck(f *testing.F) {
	for _, body := range []string{
		`[{"Proto":6,"Port":80,"HostPort":8080,"HostIP":"127.0.0.1"}]`,
		`[{"Proto":17,"Port":53,"HostIP":"::1","HostPort":5353,"HostPortEnd":5353}]`,
		`[{"Proto":99,"Port":80}]`,
		`[{"Proto":6,"HostIP":"localhost"}]`,
		`[]`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var bindings []Binding
		if json.Unmarshal(body, &bindings) != nil {
			return // plugin refuses what does not decode
		}
		if err := Check(bindings); err != nil {
			if !errors.Is(err, errdefs.Invalid) {
				t.Fatalf("error %q is not an invalid-input error", err)
			}
			return
		}
		for _, b := range bindings {
			if _, ok := Protocols[b.Proto]; !ok {
				t.Fatalf("protocol %d accepted", b.Proto)
			}
			if _, err := netip.ParseAddr(b.HostIP); b.HostIP != "" && err != nil {
				t.Fatalf("host address %q accepted", b.HostIP)
			}
			_ = b.String()
		}
	})
}
