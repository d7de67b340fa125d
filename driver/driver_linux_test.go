package driver

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/firewall"
	"github.com/weftnet/weft/internal/sysctl"
	"github.com/weftnet/weft/internal/testlab"
	"github.com/weftnet/weft/store"
)

const (
	netID = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	epID  = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
)

// harness is a driver working on a throwaway namespace that plays the host.
type harness struct {
	ns       *testlab.NS
	stateDir string
	d        *Driver
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	testlab.RequireCommand(t, "iptables")
	h := &harness{ns: testlab.NewNS(t), stateDir: t.TempDir()}
	h.d = h.start(t)
	return h
}

// start opens the store and builds a driver, as the daemon does at start.
func (h *harness) start(t *testing.T) *Driver {
	t.Helper()
	st, err := store.Open(filepath.Join(h.stateDir, "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	d, err := New(Config{
		Store:    st,
		Netlink:  h.ns.NL,
		Firewall: firewall.New(firewall.Config{Prefix: []string{"ip", "netns", "exec", h.ns.Name}, Log: log}),
		Sysctls:  sysctl.NamespaceWriter{NS: h.ns.Handle()},
		Log:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// restart simulates a plugin restart: the store is closed and opened anew.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	h.d.store.Close()
	h.d = h.start(t)
}

func bridgeReq(generic map[string]string) *NetworkRequest {
	req := createReq(generic, IPAMData{Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24"})
	req.NetworkID = netID
	return req
}

func endpointReq() *EndpointRequest {
	return &EndpointRequest{NetworkID: netID, EndpointID: epID, Address: "10.1.0.2/24"}
}

// must fails the test on an error of a call whose answer it does not look at.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// text is an address as dockerd reads it: "" for none.
func text(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (h *harness) linkExists(t *testing.T, name string) bool {
	t.Helper()
	ok, err := h.ns.NL.LinkExists(name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestNetworkLifecycle(t *testing.T) {
	h := newHarness(t)
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	addrs := h.ns.MustRun(t, "ip", "-o", "addr", "show", "dev", "wf-aaaaaaaaaaaa")
	if !strings.Contains(addrs, "10.1.0.1/24") {
		t.Fatalf("bridge lacks its gateway address: %s", addrs)
	}
	if rules := h.ns.MustRun(t, "iptables-save"); !strings.Contains(rules, "wf-aaaaaaaaaaaa") {
		t.Fatalf("no firewall rules for the bridge:\n%s", rules)
	}
	// A repeated create (dockerd retrying after a crash) succeeds.
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatalf("repeated CreateNetwork: %v", err)
	}
	if err := h.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	if h.linkExists(t, "wf-aaaaaaaaaaaa") {
		t.Fatal("bridge still exists after DeleteNetwork")
	}
	if rules := h.ns.MustRun(t, "iptables-save"); strings.Contains(rules, "WEFT") {
		t.Fatalf("rules left after the last network was deleted:\n%s", rules)
	}
	// Unknown ids delete fine, so `docker network rm` never gets stuck.
	if err := h.d.DeleteNetwork("unknown"); err != nil {
		t.Fatalf("delete unknown network: %v", err)
	}
	if err := h.d.DeleteEndpoint(netID, "unknown"); err != nil {
		t.Fatalf("delete unknown endpoint: %v", err)
	}
}

func TestCreateNetworkRefusesTakenBridgeName(t *testing.T) {
	h := newHarness(t)
	before := h.ns.MustRun(t, "iptables-save")
	err := h.d.CreateNetwork(bridgeReq(map[string]string{bridge.OptName: "lo"}))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `"lo"`) || !strings.Contains(err.Error(), bridge.OptName) {
		t.Fatalf("error %v does not refuse the taken name clearly", err)
	}
	if after := h.ns.MustRun(t, "iptables-save"); after != before {
		t.Errorf("refused create changed the firewall")
	}
	h.restart(t)
	if len(h.d.networks) != 0 {
		t.Errorf("refused create left a stored network")
	}
}

func TestEndpointLifecycle(t *testing.T) {
	h := newHarness(t)
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	resp, err := h.d.CreateEndpoint(endpointReq())
	if err != nil {
		t.Fatal(err)
	}
	if resp.MAC != "02:42:0a:01:00:02" {
		t.Fatalf("CreateEndpoint reply %+v lacks the derived MAC", resp)
	}
	hostVeth, ctrVeth := bridge.VethNames(epID)
	master := h.ns.MustRun(t, "ip", "-o", "link", "show", hostVeth)
	if !strings.Contains(master, "master wf-aaaaaaaaaaaa") || !strings.Contains(master, "state UP") && !strings.Contains(master, ",UP") {
		t.Fatalf("host side not up on the bridge: %s", master)
	}
	join, err := h.d.Join(netID, epID, "")
	if err != nil {
		t.Fatal(err)
	}
	if join.Link != ctrVeth || join.IfacePrefix != "eth" || text(join.Gateway) != "10.1.0.1" {
		t.Fatalf("join reply %+v", join)
	}
	if err := h.d.DeleteEndpoint(netID, epID); err != nil {
		t.Fatal(err)
	}
	if h.linkExists(t, hostVeth) || h.linkExists(t, ctrVeth) {
		t.Fatal("veth pair left after DeleteEndpoint")
	}
}

func TestInternalNetworkHasNoGateway(t *testing.T) {
	h := newHarness(t)
	req := bridgeReq(nil)
	req.Internal = true
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.CreateEndpoint(endpointReq()); err != nil {
		t.Fatal(err)
	}
	join, err := h.d.Join(netID, epID, "")
	if err != nil {
		t.Fatal(err)
	}
	if text(join.Gateway) != "" {
		t.Fatalf("internal network join %+v: want no gateway", join)
	}
}

// TestRestoreAfterReboot: the kernel loses everything, the store survives;
// a new driver rebuilds the bridge and rules and drops leftover links.
func TestRestoreAfterReboot(t *testing.T) {
	h := newHarness(t)
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.CreateEndpoint(endpointReq()); err != nil {
		t.Fatal(err)
	}
	hostVeth, _ := bridge.VethNames(epID)
	// "Reboot": links and rules gone; plus a leftover from some crash (a
	// link weft made and marked, whose record it never stored).
	h.ns.MustRun(t, "ip", "link", "del", "wf-aaaaaaaaaaaa")
	h.ns.MustRun(t, "ip", "link", "del", hostVeth)
	h.ns.MustRun(t, "iptables", "-F", "WEFT-FORWARD")
	h.ns.MustRun(t, "iptables", "-t", "mangle", "-F", "WEFT-ISOLATION")
	h.ns.MustRun(t, "ip", "link", "add", "wf-leftover", "type", "bridge")
	h.ns.MustRun(t, "ip", "link", "set", "wf-leftover", "alias", "weft:"+h.d.store.Instance())
	h.restart(t)
	if !h.linkExists(t, "wf-aaaaaaaaaaaa") {
		t.Fatal("bridge not rebuilt from the store")
	}
	if h.linkExists(t, "wf-leftover") {
		t.Fatal("leftover weft bridge not removed")
	}
	if rules := h.ns.MustRun(t, "iptables-save"); !strings.Contains(rules, "wf-aaaaaaaaaaaa") {
		t.Fatalf("firewall rules not rebuilt:\n%s", rules)
	}
	// dockerd then deletes the dead endpoint and the network: both succeed.
	if err := h.d.DeleteEndpoint(netID, epID); err != nil {
		t.Fatal(err)
	}
	if err := h.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6OnlyNetwork: v28+ engines can send no IPv4 data at all (--ipv4=false).
func TestIPv6OnlyNetwork(t *testing.T) {
	h := newHarness(t)
	req := &NetworkRequest{NetworkID: netID, IPv6: true,
		IPv4Data: []IPAMData{}, IPv6Data: []IPAMData{{Pool: "fd00:7::/64", Gateway: "fd00:7::1/64"}}}
	if err := h.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.CreateEndpoint(&EndpointRequest{NetworkID: netID, EndpointID: epID, AddressIPv6: "fd00:7::5/64"}); err != nil {
		t.Fatal(err)
	}
	join, err := h.d.Join(netID, epID, "")
	if err != nil {
		t.Fatal(err)
	}
	if text(join.Gateway) != "" || text(join.GatewayIPv6) != "fd00:7::1" {
		t.Fatalf("join %+v: want only the IPv6 gateway", join)
	}
	if fwd := h.ns.MustRun(t, "sysctl", "-n", "net.ipv6.conf.all.forwarding"); strings.TrimSpace(fwd) != "1" {
		t.Errorf("IPv6 forwarding not enabled for an IPv6 network: %q", fwd)
	}
}

// TestBridgeTuning: the kernel settings published ports and ICC rely on.
func TestBridgeTuning(t *testing.T) {
	h := newHarness(t)
	h.ns.MustRun(t, "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=0")
	if err := h.d.CreateNetwork(bridgeReq(map[string]string{bridge.OptICC: "false"})); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.CreateEndpoint(endpointReq()); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"net.bridge.bridge-nf-call-iptables":           "1", // bridged traffic meets the ICC rules too
		"net.ipv4.conf.wf-aaaaaaaaaaaa.route_localnet": "1", // published ports answer on 127.0.0.1
		"net.ipv4.ip_forward":                          "1",
	}
	for key, want := range checks {
		if got := strings.TrimSpace(h.ns.MustRun(t, "sysctl", "-n", key)); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	hostVeth, _ := bridge.VethNames(epID)
	if out := h.ns.MustRun(t, "ip", "-d", "link", "show", hostVeth); !strings.Contains(out, "hairpin on") {
		t.Errorf("bridge port %s has hairpin off; a container could not reach its own published port:\n%s", hostVeth, out)
	}
}
