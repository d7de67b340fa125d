package driver

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/firewall"
)

// TestParseGatewayOptions: the bridge options Docker added since 20.10
// are read with Docker's values, reach the firewall, and survive the
// network's record (a restart).
func TestParseGatewayOptions(t *testing.T) {
	req := createReq(map[string]string{
		bridge.OptGatewayModeIPv4: "routed", bridge.OptGatewayModeIPv6: "nat-unprotected",
		bridge.OptTrusted: "eth1:vxlan.1::eth1", bridge.OptInhibitIPv4: "true",
		bridge.OptHostIPv4: "198.18.0.50", bridge.OptHostIPv6: "2001:db8::50",
	}, pool24)
	n, err := parseNetwork(req)
	if err != nil {
		t.Fatal(err)
	}
	b := bridgeOf(n).Options
	want := bridge.Options{
		Bridge: b.Bridge, ICC: true, Masquerade: true,
		GatewayModeIPv4: firewall.GatewayRouted, GatewayModeIPv6: firewall.GatewayNATUnprotected,
		Trusted: []string{"eth1", "vxlan.1"}, InhibitIPv4: true,
		HostIPv4: netip.MustParseAddr("198.18.0.50"), HostIPv6: netip.MustParseAddr("2001:db8::50"),
	}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("options = %+v, want %+v", b, want)
	}
	fw := bridgeOf(n).Firewall()
	if fw.GatewayModeIPv4 != firewall.GatewayRouted || len(fw.TrustedInterfaces) != 2 || fw.HostIPv4 != want.HostIPv4 {
		t.Errorf("firewall view = %+v: want the modes, interfaces and SNAT address", fw)
	}

	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var back Network
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if got := bridgeOf(&back).Options; !reflect.DeepEqual(got, want) {
		t.Errorf("after the record: %+v, want %+v\n%s", got, want, raw)
	}
	// nat is the default, and stored as such.
	n, err = parseNetwork(createReq(map[string]string{bridge.OptGatewayModeIPv4: "nat"}, pool24))
	if err != nil || bridgeOf(n).Options.GatewayModeIPv4 != "" {
		t.Errorf("nat: %v %+v", err, n)
	}
}

func TestParseGatewayOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     map[string]string
		internal bool
		want     []string
	}{
		{"unknown mode", map[string]string{bridge.OptGatewayModeIPv4: "bridged"}, false,
			[]string{`invalid value "bridged" for option ` + bridge.OptGatewayModeIPv4, "nat, nat-unprotected, routed, isolated"}},
		{"mode case", map[string]string{bridge.OptGatewayModeIPv6: "NAT"}, false,
			[]string{bridge.OptGatewayModeIPv6, "use one of nat"}},
		{"isolated not internal", map[string]string{bridge.OptGatewayModeIPv4: "isolated"}, false,
			[]string{bridge.OptGatewayModeIPv4, "isolated needs an internal network", "--internal"}},
		{"isolated v6 not internal", map[string]string{bridge.OptGatewayModeIPv6: "isolated"}, false,
			[]string{bridge.OptGatewayModeIPv6, "isolated needs an internal network"}},
		{"trusted wildcard", map[string]string{bridge.OptTrusted: "eth+"}, false,
			[]string{bridge.OptTrusted, "interface names separated by ':'"}},
		{"trusted space", map[string]string{bridge.OptTrusted: "eth1:eth 2"}, false,
			[]string{bridge.OptTrusted, `"eth1:eth 2"`}},
		{"trusted too long", map[string]string{bridge.OptTrusted: "averyveryverylongname"}, false,
			[]string{bridge.OptTrusted, "at most 15"}},
		{"inhibit not bool", map[string]string{bridge.OptInhibitIPv4: "yes"}, false,
			[]string{bridge.OptInhibitIPv4, "use true or false"}},
		{"host_ipv4 v6", map[string]string{bridge.OptHostIPv4: "2001:db8::1"}, false,
			[]string{bridge.OptHostIPv4, "IPv4 address"}},
		{"host_ipv4 garbage", map[string]string{bridge.OptHostIPv4: "198.18.0"}, false,
			[]string{bridge.OptHostIPv4, "IPv4 address"}},
		{"host_ipv4 any", map[string]string{bridge.OptHostIPv4: "0.0.0.0"}, false,
			[]string{bridge.OptHostIPv4}},
		{"host_ipv6 v4", map[string]string{bridge.OptHostIPv6: "198.18.0.1"}, false,
			[]string{bridge.OptHostIPv6, "IPv6 address"}},
		{"host_ipv6 mapped", map[string]string{bridge.OptHostIPv6: "::ffff:198.18.0.1"}, false,
			[]string{bridge.OptHostIPv6, "IPv6 address"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := createReq(tt.opts, pool24)
			req.Internal = tt.internal
			_, err := parseNetwork(req)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an invalid-input error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	req := createReq(map[string]string{bridge.OptGatewayModeIPv4: "isolated", bridge.OptGatewayModeIPv6: "isolated"}, pool24)
	req.Internal = true
	if _, err := parseNetwork(req); err != nil {
		t.Errorf("isolated on an internal network: %v", err)
	}
}

// TestEndpointIfName: a name the kernel would refuse is refused at
// CreateEndpoint, naming the option; a good one is kept in the record.
func TestEndpointIfName(t *testing.T) {
	n, err := parseNetwork(createReq(nil, pool24))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"a-very-long-interface", "foo/0", "foo 0", ".", "..", "foo:0"} {
		_, err := newEndpoint(n, &EndpointRequest{EndpointID: "e1", Address: "10.1.0.2/24", IfName: bad})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), OptIfName) {
			t.Errorf("ifname %q: %v, want an invalid-input error naming %s", bad, err, OptIfName)
		}
	}
	ep, err := newEndpoint(n, &EndpointRequest{EndpointID: "e1", Address: "10.1.0.2/24", IfName: "foo0"})
	if err != nil || ep.IfName != "foo0" {
		t.Fatalf("ifname foo0: %+v %v", ep, err)
	}
	raw, _ := json.Marshal(ep)
	var back Endpoint
	if err := json.Unmarshal(raw, &back); err != nil || back.IfName != "foo0" {
		t.Errorf("ifname after the record: %q (%v) from %s", back.IfName, err, raw)
	}
}

// TestSkipGateways: GwAllocCheck's answer, as Docker's bridge gives it.
func TestSkipGateways(t *testing.T) {
	d := &Driver{}
	for _, tc := range []struct {
		opts     map[string]string
		internal bool
		v4, v6   bool
	}{
		{nil, false, false, false},
		{map[string]string{bridge.OptGatewayModeIPv4: "isolated"}, true, true, false},
		{map[string]string{bridge.OptGatewayModeIPv6: "isolated"}, true, false, true},
		{map[string]string{bridge.OptGatewayModeIPv4: "routed"}, false, false, false},
		{map[string]string{bridge.OptInhibitIPv4: "true"}, true, true, false},
		{map[string]string{bridge.OptInhibitIPv4: "true"}, false, false, false},
		{map[string]string{OptMode: "vxlan", bridge.OptGatewayModeIPv4: "isolated"}, true, true, false},
		{map[string]string{OptMode: "macvlan"}, true, false, false},
		// CreateNetwork refuses these, with the user's error.
		{map[string]string{bridge.OptGatewayModeIPv4: "bogus"}, true, false, false},
		{map[string]string{OptMode: "nosuchmode"}, true, false, false},
	} {
		if v4, v6 := d.SkipGateways(tc.opts, tc.internal); v4 != tc.v4 || v6 != tc.v6 {
			t.Errorf("%v internal=%v: skip %v %v, want %v %v", tc.opts, tc.internal, v4, v6, tc.v4, tc.v6)
		}
	}
}
