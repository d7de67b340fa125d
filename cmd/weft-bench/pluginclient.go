package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	weftipam "github.com/weftnet/weft/ipam"
)

// pluginClient speaks Docker's remote plugin protocol to a weft socket, the
// way dockerd does: JSON POSTs to /NetworkDriver.* and /IpamDriver.*.
type pluginClient struct {
	hc *http.Client
}

// newPluginClient returns a client for the unix socket at path. Connections
// are kept alive, enough for 64 concurrent callers.
func newPluginClient(path string) *pluginClient {
	return &pluginClient{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 64,
	}}}
}

// call POSTs req to method (e.g. "NetworkDriver.Join") and decodes the reply
// into resp (if not nil). A non-200 answer is an error carrying the
// plugin's Err text.
func (c *pluginClient) call(ctx context.Context, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://weft/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/vnd.docker.plugins.v1.1+json")
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(hresp.Body)
	if err != nil {
		return fmt.Errorf("%s: reading the reply: %w", method, err)
	}
	if hresp.StatusCode != http.StatusOK {
		var e struct{ Err string }
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("%s: %s: %s", method, hresp.Status, e.Err)
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("%s: decoding %q: %w", method, raw, err)
	}
	return nil
}

// randomID returns a 64-hex id like dockerd's network and endpoint ids.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// benchNetwork is a weft network created through the protocol.
type benchNetwork struct {
	id      string
	poolID  string
	pool    string
	gateway string // with prefix length, as IPAM returned it
}

// createNetwork does what dockerd does for `docker network create -d weft
// --ipam-driver weft --subnet SUBNET`: RequestPool, RequestAddress of the
// gateway, CreateNetwork.
func (c *pluginClient) createNetwork(ctx context.Context, subnet string) (*benchNetwork, error) {
	var pool ipam.RequestPoolResponse
	if err := c.call(ctx, "IpamDriver.RequestPool", ipam.RequestPoolRequest{
		AddressSpace: weftipam.LocalSpace, Pool: subnet,
	}, &pool); err != nil {
		return nil, err
	}
	var gw ipam.RequestAddressResponse
	if err := c.call(ctx, "IpamDriver.RequestAddress", ipam.RequestAddressRequest{
		PoolID:  pool.PoolID,
		Options: map[string]string{weftipam.RequestTypeOption: weftipam.GatewayRequest},
	}, &gw); err != nil {
		return nil, err
	}
	n := &benchNetwork{id: randomID(), poolID: pool.PoolID, pool: pool.Pool, gateway: gw.Address}
	err := c.call(ctx, "NetworkDriver.CreateNetwork", network.CreateNetworkRequest{
		NetworkID: n.id,
		Options: map[string]any{
			"com.docker.network.enable_ipv6": false,
			"com.docker.network.generic":     map[string]any{},
		},
		IPv4Data: []*network.IPAMData{{AddressSpace: weftipam.LocalSpace, Pool: n.pool, Gateway: n.gateway}},
	}, nil)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// deleteNetwork undoes createNetwork (the network must have no endpoints).
func (c *pluginClient) deleteNetwork(ctx context.Context, n *benchNetwork) error {
	if err := c.call(ctx, "NetworkDriver.DeleteNetwork", network.DeleteNetworkRequest{NetworkID: n.id}, nil); err != nil {
		return err
	}
	if err := c.call(ctx, "IpamDriver.ReleaseAddress", ipam.ReleaseAddressRequest{PoolID: n.poolID, Address: n.gateway}, nil); err != nil {
		return err
	}
	return c.call(ctx, "IpamDriver.ReleasePool", ipam.ReleasePoolRequest{PoolID: n.poolID}, nil)
}

// attachment is one container's endpoint on a benchNetwork.
type attachment struct {
	net        *benchNetwork
	endpointID string
	address    string // with prefix length
}

// newAttachment allocates the endpoint's address (IpamDriver.RequestAddress),
// the first step of a container joining a network.
func (c *pluginClient) newAttachment(ctx context.Context, n *benchNetwork) (*attachment, error) {
	var addr ipam.RequestAddressResponse
	if err := c.call(ctx, "IpamDriver.RequestAddress", ipam.RequestAddressRequest{PoolID: n.poolID}, &addr); err != nil {
		return nil, err
	}
	return &attachment{net: n, endpointID: randomID(), address: addr.Address}, nil
}

// attach is the driver part of a container joining: CreateEndpoint (weft
// stores the endpoint and makes the veth pair on the bridge) and Join. It
// returns how long each call took.
func (c *pluginClient) attach(ctx context.Context, a *attachment) (create, join time.Duration, err error) {
	t0 := time.Now()
	var ep network.CreateEndpointResponse
	if err := c.call(ctx, "NetworkDriver.CreateEndpoint", network.CreateEndpointRequest{
		NetworkID:  a.net.id,
		EndpointID: a.endpointID,
		Interface:  &network.EndpointInterface{Address: a.address},
		Options:    map[string]any{},
	}, &ep); err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	var jr network.JoinResponse
	err = c.call(ctx, "NetworkDriver.Join", network.JoinRequest{
		NetworkID:  a.net.id,
		EndpointID: a.endpointID,
		SandboxKey: "/var/run/docker/netns/" + a.endpointID[:12],
		Options:    map[string]any{},
	}, &jr)
	return t1.Sub(t0), time.Since(t1), err
}

// detach undoes newAttachment and attach as dockerd does when a container
// goes away: Leave, DeleteEndpoint, ReleaseAddress.
func (c *pluginClient) detach(ctx context.Context, a *attachment) error {
	ids := network.LeaveRequest{NetworkID: a.net.id, EndpointID: a.endpointID}
	if err := c.call(ctx, "NetworkDriver.Leave", ids, nil); err != nil {
		return err
	}
	if err := c.call(ctx, "NetworkDriver.DeleteEndpoint", network.DeleteEndpointRequest(ids), nil); err != nil {
		return err
	}
	return c.call(ctx, "IpamDriver.ReleaseAddress", ipam.ReleaseAddressRequest{PoolID: a.net.poolID, Address: a.address}, nil)
}
