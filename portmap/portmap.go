// Package portmap is weft's published ports (docker run -p): Docker's
// records of them, the checks a requested binding must pass, the families
// an endpoint publishes (publish.go, expand.go), the host port each one
// gets, the DNAT the firewall makes of it, and the proxy for a host IPv6
// port of a container without IPv6 (proxy.go).
package portmap

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/errdefs"
)

// Binding is Docker's port mapping record (types.PortBinding), kept in
// Docker's field names so EndpointOperInfo can hand it back as is.
type Binding struct {
	Proto       uint8  `json:"Proto"`
	IP          string `json:"IP"`
	Port        uint16 `json:"Port"`
	HostIP      string `json:"HostIP"`
	HostPort    uint16 `json:"HostPort"`
	HostPortEnd uint16 `json:"HostPortEnd"`
}

// Exposed is an exposed port: Docker's types.TransportPort.
type Exposed struct {
	Proto uint8  `json:"Proto"`
	Port  uint16 `json:"Port"`
}

// Protocols names the IP protocol numbers Docker uses in port bindings, the
// ones weft publishes.
var Protocols = map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}

func (b Binding) String() string {
	return fmt.Sprintf("%s:%d/%s", hostIPText(b.HostIP), b.HostPort, Protocols[b.Proto])
}

func hostIPText(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// HostAddr is the host address the binding publishes on; 0.0.0.0 when it
// names none.
func (b Binding) HostAddr() netip.Addr {
	a, _ := netip.ParseAddr(hostIPText(b.HostIP))
	return a.Unmap()
}

// Check refuses bindings weft cannot publish.
func Check(bindings []Binding) error {
	for _, b := range bindings {
		if _, ok := Protocols[b.Proto]; !ok {
			return errdefs.Errorf(errdefs.Invalid, "published port %d uses protocol %d; weft publishes tcp, udp and sctp", b.Port, b.Proto)
		}
		if b.HostIP != "" {
			if _, err := netip.ParseAddr(b.HostIP); err != nil {
				return errdefs.Errorf(errdefs.Invalid, "invalid host address %q in -p", b.HostIP)
			}
		}
	}
	return nil
}
