package driver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/ifname"
)

// Ephemeral host ports for `-p 80` (no host port given), as Docker uses.
const (
	ephemeralFirst = 49153
	ephemeralLast  = 65535
)

// PortBinding is Docker's port mapping record (types.PortBinding), kept in
// Docker's field names so EndpointOperInfo can hand it back as is.
type PortBinding struct {
	Proto       uint8  `json:"Proto"`
	IP          string `json:"IP"`
	Port        uint16 `json:"Port"`
	HostIP      string `json:"HostIP"`
	HostPort    uint16 `json:"HostPort"`
	HostPortEnd uint16 `json:"HostPortEnd"`
}

// ExposedPort is Docker's types.TransportPort.
type ExposedPort struct {
	Proto uint8  `json:"Proto"`
	Port  uint16 `json:"Port"`
}

// IP protocol numbers Docker uses in port bindings.
var protoNames = map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}

func (p PortBinding) String() string {
	return fmt.Sprintf("%s:%d/%s", hostIPText(p.HostIP), p.HostPort, protoNames[p.Proto])
}

func hostIPText(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// mapping turns a binding into the firewall's DNAT description.
func (p PortBinding) mapping(bridge string, ep *Endpoint) firewall.PortMapping {
	m := firewall.PortMapping{
		Bridge: bridge, Proto: protoNames[p.Proto], HostPort: p.HostPort, ContainerPort: p.Port,
		ContainerIP: ep.IPv4.Addr(),
	}
	if ip, err := netip.ParseAddr(p.HostIP); err == nil && !ip.IsUnspecified() {
		m.HostIP = ip
	}
	if m.HostIP.Is6() {
		m.ContainerIP = ep.IPv6.Addr()
	}
	return m
}

// checkPortBindings refuses bindings weft cannot publish.
func checkPortBindings(bindings []PortBinding) error {
	for _, b := range bindings {
		if _, ok := protoNames[b.Proto]; !ok {
			return errdefs.Errorf(ErrInvalid, "published port %d uses protocol %d; weft publishes tcp, udp and sctp", b.Port, b.Proto)
		}
		if b.HostIP != "" {
			if _, err := netip.ParseAddr(b.HostIP); err != nil {
				return errdefs.Errorf(ErrInvalid, "invalid host address %q in -p", b.HostIP)
			}
		}
	}
	return nil
}

// ProgramExternalConnectivity publishes the container's ports (docker run
// -p). dockerd calls it for the endpoint that is the container's gateway.
// requested is nil when dockerd sent no port map, which changes nothing; an
// empty list withdraws what the endpoint published.
func (d *Driver) ProgramExternalConnectivity(_, endpointID string, requested []PortBinding) error {
	if requested == nil {
		return nil
	}
	if err := checkPortBindings(requested); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(requested) == 0 {
		// dockerd sends an empty list for every container without -p: with
		// nothing published before either, there is nothing to change, and
		// skipping the rule check and the store write saves ~5 ms per start.
		if ep := d.endpoints[endpointID]; ep == nil || len(ep.Ports) == 0 {
			return nil
		}
	}
	ep, ok := d.endpoints[endpointID]
	if !ok {
		return errdefs.Errorf(ErrNotFound, "endpoint %s is not known to weft", ifname.ShortID(endpointID))
	}
	n := d.networks[ep.NetworkID]
	log := d.epLog(ep.NetworkID, ep.ID)
	if n == nil || n.Config.Internal || bridgeOf(n) == nil {
		// Docker publishes nothing from internal networks, nor from macvlan
		// and ipvlan ones, whose containers are on the LAN themselves.
		return nil
	}
	binding := bridgeOf(n).Options.HostBindingIPv4
	var bound []PortBinding
	for _, b := range requested {
		if b.HostIP == "" && binding.IsValid() {
			b.HostIP = binding.String()
		}
		hostIP, _ := netip.ParseAddr(hostIPText(b.HostIP))
		if hostIP.Is6() && !ep.IPv6.IsValid() || hostIP.Is4() && !ep.IPv4.IsValid() {
			log.WithField("port", b.String()).Info("skipping a published port of an address family the container does not have")
			continue
		}
		if err := d.choosePort(&b, append(bound, d.boundPorts(ep.ID)...)); err != nil {
			return err
		}
		bound = append(bound, b)
	}
	previous := ep.Ports
	ep.Ports = bound
	if err := d.applyFirewall(); err != nil {
		ep.Ports = previous
		return err
	}
	if err := d.saveEndpoint(ep); err != nil {
		ep.Ports = previous
		if fwErr := d.applyFirewall(); fwErr != nil {
			log.WithError(fwErr).Warn("could not withdraw the ports that failed to store")
		}
		return err
	}
	for _, b := range bound {
		log.WithField("port", b.String()).Infof("published to %s:%d", ep.IPv4.Addr(), b.Port)
	}
	return nil
}

// RevokeExternalConnectivity withdraws the container's published ports.
func (d *Driver) RevokeExternalConnectivity(_, endpointID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unpublish(endpointID)
}

// unpublish drops an endpoint's ports. Callers hold d.mu.
func (d *Driver) unpublish(endpointID string) error {
	ep, ok := d.endpoints[endpointID]
	if !ok || len(ep.Ports) == 0 {
		return nil
	}
	ep.Ports = nil
	if err := d.applyFirewall(); err != nil {
		return err
	}
	return d.saveEndpoint(ep)
}

// boundPorts lists the bindings of every endpoint but except.
func (d *Driver) boundPorts(except string) []PortBinding {
	var all []PortBinding
	for id, ep := range d.endpoints {
		if id != except {
			all = append(all, ep.Ports...)
		}
	}
	return all
}

// choosePort fixes b.HostPort: the requested one, or the first free one of
// the requested range, or an ephemeral one. A port is free when no weft
// container publishes it and no socket on this host holds it.
func (d *Driver) choosePort(b *PortBinding, taken []PortBinding) error {
	first, last := b.HostPort, b.HostPortEnd
	if first == 0 {
		first, last = ephemeralFirst, ephemeralLast
	}
	if last < first {
		last = first
	}
	var lastErr error
	for port := int(first); port <= int(last); port++ {
		candidate := *b
		candidate.HostPort, candidate.HostPortEnd = uint16(port), uint16(port)
		if err := portFree(candidate, taken); err != nil {
			lastErr = err
			continue
		}
		*b = candidate
		return nil
	}
	if first == last {
		return lastErr
	}
	return errdefs.Errorf(ErrConflict, "no free host port in %d-%d for %s: %v", first, last, protoNames[b.Proto], lastErr)
}

func portFree(b PortBinding, taken []PortBinding) error {
	for _, t := range taken {
		if t.Proto == b.Proto && t.HostPort == b.HostPort && hostIPsOverlap(t.HostIP, b.HostIP) {
			return errdefs.Errorf(ErrConflict, "cannot publish %s: another weft container already publishes it", b)
		}
	}
	if err := probeSocket(b); err != nil {
		return errdefs.Errorf(ErrConflict, "cannot publish %s: %v", b, err)
	}
	return nil
}

func hostIPsOverlap(a, b string) bool {
	ua, ub := a == "" || a == "0.0.0.0" || a == "::", b == "" || b == "0.0.0.0" || b == "::"
	return ua || ub || a == b
}

// probeSocket fails when a process on this host already listens on the port,
// as Docker's own bridge would fail to bind it.
func probeSocket(b PortBinding) error {
	addr := net.JoinHostPort(b.HostIP, strconv.Itoa(int(b.HostPort)))
	var err error
	switch b.Proto {
	case 6:
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	case 17:
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("the port is already in use on this host")
	}
	// Other errors (a host address that is not local yet, say) do not make
	// the port busy: DNAT works without a socket.
	return nil
}
