package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/weftnet/weft/driver"
)

// TestTranslateIfName: com.docker.network.endpoint.ifname in CreateEndpoint
// becomes the request's IfName, and the Join answer's InterfaceName.DstName
// (which Docker 29 renames the link to); without it DstName is left out
// and DstPrefix names the link, as before.
func TestTranslateIfName(t *testing.T) {
	req, err := endpointRequest(&network.CreateEndpointRequest{
		NetworkID: "n", EndpointID: "e", Interface: &network.EndpointInterface{},
		Options: map[string]any{keyIfName: "foo0"},
	})
	if err != nil || req.IfName != "foo0" {
		t.Fatalf("endpoint request %+v, %v: want IfName foo0", req, err)
	}
	_, err = endpointRequest(&network.CreateEndpointRequest{
		NetworkID: "n", EndpointID: "e", Interface: &network.EndpointInterface{},
		Options: map[string]any{keyIfName: 7.0},
	})
	if err == nil || !strings.Contains(err.Error(), keyIfName) {
		t.Errorf("a number as the interface name: %v, want an error naming %s", err, keyIfName)
	}

	for _, tc := range []struct{ ifname, want string }{
		{"foo0", `"InterfaceName":{"SrcName":"wv1","DstPrefix":"eth","DstName":"foo0"}`},
		{"", `"InterfaceName":{"SrcName":"wv1","DstPrefix":"eth"}`},
	} {
		b, err := json.Marshal(joinResponse(&driver.JoinReply{Link: "wv1", IfacePrefix: "eth", IfName: tc.ifname}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || strings.Count(string(b), "InterfaceName") != 1 {
			t.Errorf("ifname %q: Join answer %s, want %s", tc.ifname, b, tc.want)
		}
	}
}
