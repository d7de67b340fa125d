package driver

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/weftnet/weft/internal/netmode"
	"github.com/weftnet/weft/store"
)

// Store kinds of the driver's records.
const (
	kindNetwork  = "networks"
	kindEndpoint = "endpoints"
)

// Network is a stored network: what every network has, and its mode's part.
//
// Its record is the one weft has always written (schema 2): the id, a flat
// "config" object holding the common options and the mode's, and the
// mode's state beside it, e.g.
//
//	{"id":"…","config":{"mode":"macvlan","mtu":1400,…,"parent":"eth1.10"},"owns_parent":true}
//
// weft up to a8e0de5 also wrote bridge mode's options ("bridge", "icc",
// "masquerade") into macvlan and ipvlan networks' config, where they mean
// nothing: they are read past, and no longer written there.
type Network struct {
	netmode.Network // ID and the configuration every mode shares
	mode            network
}

// newNetwork returns a network of cfg.Mode with the defaults of the mode's
// options; ok is false for a mode weft does not have.
func newNetwork(id string, cfg netmode.Config) (n *Network, ok bool) {
	n = &Network{Network: netmode.Network{ID: id, Config: cfg}}
	return n, n.makeMode()
}

// makeMode gives n the part of its mode, with the defaults of the mode's
// options; it points to n's common part.
func (n *Network) makeMode() bool {
	m, ok := modes[n.Config.Mode]
	if ok {
		n.mode = m.new(&n.Network)
	}
	return ok
}

// networkRecord is a network's record with the parts of "config" joined.
type networkRecord struct {
	ID     string          `json:"id"`
	Config json.RawMessage `json:"config"`
}

// MarshalJSON writes the network's record.
func (n *Network) MarshalJSON() ([]byte, error) {
	options, state := n.mode.Record()
	config, err := joinObjects(append([]any{&n.Config}, options...)...)
	if err != nil {
		return nil, err
	}
	return joinObjects(networkRecord{ID: n.ID, Config: config}, state)
}

// UnmarshalJSON reads a network's record: the common configuration says
// the mode, whose parts are then read from the same objects.
func (n *Network) UnmarshalJSON(raw []byte) error {
	var rec networkRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return err
	}
	var cfg netmode.Config
	if err := json.Unmarshal(rec.Config, &cfg); err != nil {
		return err
	}
	*n = Network{Network: netmode.Network{ID: rec.ID, Config: cfg}}
	if !n.makeMode() {
		return fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	options, state := n.mode.Record()
	for _, o := range options {
		if err := json.Unmarshal(rec.Config, o); err != nil {
			return err
		}
	}
	if state != nil {
		return json.Unmarshal(raw, state)
	}
	return nil
}

// joinObjects writes values that encode as JSON objects (nil ones are left
// out) as one object holding all their members, in order.
func joinObjects(values ...any) ([]byte, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	for _, v := range values {
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		members := bytes.TrimSpace(b)
		if len(members) < 2 || members[0] != '{' || members[len(members)-1] != '}' {
			return nil, fmt.Errorf("%T does not encode as a JSON object", v)
		}
		members = members[1 : len(members)-1]
		if len(members) == 0 {
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		out.Write(members)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// Endpoint is a stored endpoint: one container's attachment to a network,
// and the ports it publishes.
type Endpoint struct {
	netmode.Endpoint
	Ports   []PortBinding `json:"ports,omitempty"`
	Exposed []ExposedPort `json:"exposed,omitempty"`
	Sandbox string        `json:"sandbox,omitempty"` // Join's SandboxKey, stored with the ports
}

// hostLinks names the endpoint's link still in the host namespace: the
// bridge side of its veth, or its macvlan/ipvlan child until dockerd moves
// it into the container.
func (ep *Endpoint) hostLinks() []string {
	if ep.HostVeth != "" {
		return []string{ep.HostVeth}
	}
	return []string{ep.Link}
}

func (d *Driver) saveNetwork(n *Network) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Put(kindNetwork, n.ID, n) })
}

func (d *Driver) deleteNetworkRecord(id string) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Delete(kindNetwork, id) })
}

func (d *Driver) saveEndpoint(ep *Endpoint) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Put(kindEndpoint, ep.ID, ep) })
}

func (d *Driver) deleteEndpointRecord(id string) error {
	return d.store.Update(func(tx *store.Tx) error { return tx.Delete(kindEndpoint, id) })
}
