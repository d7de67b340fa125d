package portmap

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/weftnet/weft/internal/errdefs"
)

func tcp(host string, port uint16) Binding {
	return Binding{Proto: 6, Port: 80, HostIP: host, HostPort: port, HostPortEnd: port}
}

// TestPublish: the families an endpoint serves and the bindings it
// publishes for them, as Docker 28+'s bridge does for its gateway roles.
func TestPublish(t *testing.T) {
	dual := Endpoint{IPv4: true, IPv6: true, Proxy6to4: true}
	v4only := Endpoint{IPv4: true, Proxy6to4: true}
	req := []Binding{tcp("", 18431)}
	for _, c := range []struct {
		name         string
		r            Request
		want         []Binding
		wantSiblings [][]Binding
	}{
		{"dual-stack: both families", Request{Ports: req, Endpoint: dual},
			[]Binding{tcp("0.0.0.0", 18431), tcp("::", 18431)}, nil},
		{"IPv6 only", Request{Ports: req, Endpoint: Endpoint{IPv6: true, Proxy6to4: true}},
			[]Binding{tcp("::", 18431)}, nil},
		{"IPv4 only: IPv6 proxied", Request{Ports: req, Endpoint: v4only},
			[]Binding{tcp("0.0.0.0", 18431), tcp("::", 18431)}, nil},
		{"IPv4 only, no proxy", Request{Ports: req, Endpoint: Endpoint{IPv4: true}},
			[]Binding{tcp("0.0.0.0", 18431)}, nil},
		{"IPv4 only, no_proxy_6to4", Request{Ports: req, Endpoint: v4only, NoProxy6to4: true},
			[]Binding{tcp("0.0.0.0", 18431)}, nil},
		{"udp proxied, sctp not", Request{Ports: []Binding{{Proto: 17, Port: 53, HostPort: 18432}, {Proto: 132, Port: 9, HostPort: 18433}}, Endpoint: v4only},
			[]Binding{{Proto: 17, Port: 53, HostIP: "0.0.0.0", HostPort: 18432, HostPortEnd: 18432}, {Proto: 17, Port: 53, HostIP: "::", HostPort: 18432, HostPortEnd: 18432},
				{Proto: 132, Port: 9, HostIP: "0.0.0.0", HostPort: 18433, HostPortEnd: 18433}}, nil},
		{"explicit host addresses", Request{Ports: []Binding{tcp("127.0.0.1", 18434), tcp("::1", 18434)}, Endpoint: dual},
			[]Binding{tcp("127.0.0.1", 18434), tcp("::1", 18434)}, nil},
		{"host_binding_ipv4", Request{Ports: req, Endpoint: Endpoint{IPv4: true, IPv6: true, Default: netip.MustParseAddr("127.0.0.1")}},
			[]Binding{tcp("127.0.0.1", 18431)}, nil},
		// Docker's bridge's split gateways: the IPv4 gateway told so...
		{"no_proxy_6to4 takes IPv4 from the container's other endpoint",
			Request{Ports: req, Endpoint: v4only, NoProxy6to4: true, Siblings: [][]Binding{{tcp("0.0.0.0", 18431), tcp("::", 18431)}}},
			[]Binding{tcp("0.0.0.0", 18431)}, [][]Binding{{tcp("::", 18431)}}},
		// ... and the IPv6 gateway while another endpoint holds IPv4.
		{"a dual-stack endpoint beside the IPv4 gateway serves IPv6",
			Request{Ports: req, Endpoint: dual, Siblings: [][]Binding{{tcp("0.0.0.0", 18431), tcp("::", 18431)}}},
			[]Binding{tcp("::", 18431)}, [][]Binding{{tcp("0.0.0.0", 18431)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan, err := Publish(c.r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan.Ports, c.want) || !reflect.DeepEqual(plan.Siblings, c.wantSiblings) {
				t.Errorf("got %v, siblings %v; want %v, siblings %v", plan.Ports, plan.Siblings, c.want, c.wantSiblings)
			}
		})
	}
}

// TestPublishOwnPort: a port the container's other endpoint holds, with a
// socket open on it (its proxy), is the container's own and no conflict;
// the same port held by another container is one.
func TestPublishOwnPort(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	held := tcp("::1", port)
	r := Request{Ports: []Binding{held}, Endpoint: Endpoint{IPv6: true}}

	r.Siblings = [][]Binding{{held}}
	plan, err := Publish(r)
	if err != nil || len(plan.Ports) != 1 || plan.Ports[0].HostPort != port {
		t.Errorf("the container's own port: %v %v", plan.Ports, err)
	}
	r.Siblings, r.Taken = nil, []Binding{held}
	if _, err := Publish(r); !errors.Is(err, errdefs.Conflict) {
		t.Errorf("another container's port: %v, want a conflict", err)
	}
	r.Taken = []Binding{tcp("127.0.0.1", port)}
	r.Ports = []Binding{tcp("::", port)}
	r.Siblings = [][]Binding{{held}}
	if _, err := Publish(r); err != nil {
		t.Errorf("IPv6 port beside another container's IPv4 one: %v", err)
	}
	r.Siblings = nil
	if _, err := Publish(r); !errors.Is(err, errdefs.Conflict) {
		t.Errorf("[::]:%d while a socket listens on [::1]:%d: %v, want a conflict", port, port, err)
	}
}

// TestPublishEphemeral: without a host port both families get the same one.
func TestPublishEphemeral(t *testing.T) {
	plan, err := Publish(Request{Ports: []Binding{{Proto: 6, Port: 80}}, Endpoint: Endpoint{IPv4: true, IPv6: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Ports) != 2 || plan.Ports[0].HostPort != plan.Ports[1].HostPort || plan.Ports[0].HostPort < ephemeralFirst {
		t.Errorf("got %v, want one ephemeral port on both families", plan.Ports)
	}
}
