package driver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/bridge"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/store"
)

// userLinks are links a user made whose names look like weft's: a veth pair
// "wheel0"/"wcam0" and a bridge "wf-mine". weft must never delete them.
func addUserLinks(t *testing.T, h *harness) {
	t.Helper()
	h.ns.MustRun(t, "ip", "link", "add", "wheel0", "type", "veth", "peer", "name", "wcam0")
	h.ns.MustRun(t, "ip", "link", "add", "wf-mine", "type", "bridge")
}

func requireUserLinks(t *testing.T, h *harness) {
	t.Helper()
	for _, name := range []string{"wheel0", "wcam0", "wf-mine"} {
		if !h.linkExists(t, name) {
			t.Errorf("weft deleted the user's link %s", name)
		}
	}
}

// TestUserLinksSurviveStart: a plain start deletes no link weft did not
// make, whatever its name.
func TestUserLinksSurviveStart(t *testing.T) {
	h := newHarness(t)
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	addUserLinks(t, h)
	h.restart(t)
	requireUserLinks(t, h)
	if !h.linkExists(t, "wf-aaaaaaaaaaaa") {
		t.Fatal("the network's own bridge is gone")
	}
}

// endpointLinks creates a network and a running container's endpoint, and
// returns the endpoint's host-side veth.
func endpointLinks(t *testing.T, h *harness) string {
	t.Helper()
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.CreateEndpoint(endpointReq()); err != nil {
		t.Fatal(err)
	}
	hostVeth, _ := bridge.VethNames(epID)
	return hostVeth
}

// TestNewStateKeepsRunningContainers: an emptied weft.db, and a state
// directory weft has never seen, open as new databases; neither may take
// the links of running containers for leftovers.
func TestNewStateKeepsRunningContainers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset func(t *testing.T, h *harness)
	}{
		{"empty weft.db", func(t *testing.T, h *harness) {
			if err := os.Truncate(filepath.Join(h.stateDir, "weft.db"), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"new state directory", func(t *testing.T, h *harness) { h.stateDir = t.TempDir() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			hostVeth := endpointLinks(t, h)
			err := h.d.ProgramExternalConnectivity(netID, epID, Connectivity{Ports: []PortBinding{{Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8080}}})
			if err != nil {
				t.Fatal(err)
			}
			// What the container relies on: its link, its bridge, the
			// rules that let it talk and that publish its port.
			rules := []string{"-A WEFT-FORWARD -i wf-aaaaaaaaaaaa ! -o wf-aaaaaaaaaaaa -j ACCEPT", "--to-destination 10.1.0.2:80", "-s 10.1.0.0/24 ! -o wf-aaaaaaaaaaaa -j MASQUERADE"}
			saved := h.ns.MustRun(t, "iptables-save")
			for _, r := range rules {
				if !strings.Contains(saved, r) {
					t.Fatalf("rule %q missing before the test starts:\n%s", r, saved)
				}
			}
			h.d.store.Close()
			tc.reset(t, h)
			h.d = h.start(t)
			for _, name := range []string{hostVeth, "wf-aaaaaaaaaaaa"} {
				if !h.linkExists(t, name) {
					t.Errorf("a new state database deleted %s, a running container's link", name)
				}
			}
			// A network made under the new state goes through a full
			// apply of the rules: the old network's stay.
			req := bridgeReq(nil)
			req.NetworkID = "cccccccccccc3333333333333333333333333333333333333333333333333333"
			req.IPv4Data[0] = IPAMData{Pool: "10.2.0.0/24", Gateway: "10.2.0.1/24"}
			if err := h.d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			saved = h.ns.MustRun(t, "iptables-save")
			for _, r := range append(rules, "-o wf-cccccccccccc -j DROP") {
				if !strings.Contains(saved, r) {
					t.Errorf("rule %q gone after a start on a new state:\n%s", r, saved)
				}
			}
			// dockerd removes the container (moving its link back to the
			// host first) and then the network, both unknown to this
			// state: their marked links go, and the rules with the bridge.
			// A link of the same name without a mark would stay.
			h.ns.MustRun(t, "ip", "link", "add", "wmbbbbbbbbbbbb", "type", "veth", "peer", "name", "user-peer")
			if err := h.d.DeleteEndpoint(netID, epID); err != nil {
				t.Fatal(err)
			}
			if err := h.d.DeleteNetwork(netID); err != nil {
				t.Fatal(err)
			}
			if h.linkExists(t, hostVeth) || h.linkExists(t, "wf-aaaaaaaaaaaa") {
				t.Error("links of a network made under the earlier state stay after dockerd deleted it")
			}
			if !h.linkExists(t, "wmbbbbbbbbbbbb") {
				t.Error("an unmarked link named like the endpoint's was deleted")
			}
			saved = h.ns.MustRun(t, "iptables-save")
			if strings.Contains(saved, "wf-aaaaaaaaaaaa") || strings.Contains(saved, "10.1.0.2") {
				t.Errorf("rules of a deleted network kept:\n%s", saved)
			}
			if !strings.Contains(saved, "-o wf-cccccccccccc -j DROP") {
				t.Errorf("rules of the live network gone:\n%s", saved)
			}
		})
	}
}

// TestUnusableRecordsAreSkipped: a record that does not decode, and one
// whose bridge name the firewall refuses (written before options were
// checked this strictly), are skipped; the other networks come back.
func TestUnusableRecordsAreSkipped(t *testing.T) {
	h := newHarness(t)
	if err := h.d.CreateNetwork(bridgeReq(nil)); err != nil {
		t.Fatal(err)
	}
	h.d.store.Close()
	bad := map[string]string{
		"undecodable": `{"id":5}`,
		"bad-bridge":  `{"id":"bad-bridge","config":{"mode":"bridge","bridge":"br+","ipv4_subnets":[{"pool":"10.9.0.0/24"}]}}`,
		"bad-mode":    `{"id":"bad-mode","config":{"mode":"tunnel"}}`,
	}
	db, err := bolt.Open(filepath.Join(h.stateDir, "weft.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kindNetwork))
		for k, v := range bad {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		nodes, err := tx.CreateBucketIfNotExists([]byte("nodes"))
		if err != nil {
			return err
		}
		return nodes.Put([]byte("x"), []byte(`[]`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	h.d = h.start(t) // fails the test if New fails
	if _, ok := h.d.networks[netID]; !ok {
		t.Fatal("the good network was not restored")
	}
	if len(h.d.networks) != 1 {
		t.Errorf("%d networks restored, want only the good one", len(h.d.networks))
	}
	// dockerd's `docker network rm` of a skipped network succeeds and
	// clears its record.
	if err := h.d.DeleteNetwork("bad-bridge"); err != nil {
		t.Fatal(err)
	}
	must(t, h.d.store.View(func(tx *store.Tx) error {
		if tx.Has(kindNetwork, "bad-bridge") {
			t.Error("record of a skipped network kept after its delete")
		}
		return nil
	}))
}

// TestDeleteKeepsNetworkWhenStoreFails: a delete the store cannot record
// fails and changes nothing, so dockerd's retry and the next restart see
// the same network.
func TestDeleteKeepsNetworkWhenStoreFails(t *testing.T) {
	h := newHarness(t)
	hostVeth := endpointLinks(t, h)
	h.d.store.Close() // every write now fails
	err := h.d.DeleteEndpoint(netID, epID)
	if err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("DeleteEndpoint with a failing store: %v, want an error", err)
	}
	err = h.d.DeleteNetwork(netID)
	if err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("DeleteNetwork with a failing store: %v, want an error", err)
	}
	if !h.linkExists(t, "wf-aaaaaaaaaaaa") || !h.linkExists(t, hostVeth) {
		t.Fatal("a failed delete removed kernel state")
	}
	if _, ok := h.d.networks[netID]; !ok {
		t.Fatal("a failed delete forgot the network")
	}
	h.d = h.start(t)
	if err := h.d.DeleteEndpoint(netID, epID); err != nil {
		t.Fatal(err)
	}
	if err := h.d.DeleteNetwork(netID); err != nil {
		t.Fatal(err)
	}
	if h.linkExists(t, "wf-aaaaaaaaaaaa") || h.linkExists(t, hostVeth) {
		t.Fatal("links left after the retried deletes")
	}
}

// TestSchema1LinksAreMarked: links of a weft that predates marks carry no
// alias; the first start of this weft marks the ones its records own, so a
// later crash leftover among them can be removed.
func TestSchema1LinksAreMarked(t *testing.T) {
	h := newHarness(t)
	hostVeth := endpointLinks(t, h)
	h.d.store.Close()
	for _, name := range []string{hostVeth, "wf-aaaaaaaaaaaa"} {
		h.ns.MustRun(t, "ip", "link", "set", name, "alias", "")
	}
	h.d = h.start(t)
	for _, name := range []string{hostVeth, "wf-aaaaaaaaaaaa"} {
		l, err := h.ns.NL.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if !h.ns.NL.Mine(l) {
			t.Errorf("%s not marked at start (alias %q)", name, l.Attrs().Alias)
		}
	}
}

// TestLostAddressesAreClaimed: records salvaged from a damaged database kept
// a running container's endpoint but lost its address in weft's IPAM; at
// start the driver marks the address in use again, so the next container
// gets another one.
func TestLostAddressesAreClaimed(t *testing.T) {
	h := newHarness(t)
	h.d.store.Close()
	startWithIPAM := func() *ipam.Service {
		t.Helper()
		st, err := store.Open(filepath.Join(h.stateDir, "weft.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := ipam.New(st, logrus.New())
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Store: st, Netlink: h.ns.NL, Firewall: h.d.fw, Sysctls: h.d.sysctls, Pools: svc, Log: h.d.log})
		if err != nil {
			t.Fatal(err)
		}
		h.d = d
		return svc
	}
	svc := startWithIPAM()
	pool, err := svc.RequestPool(ipam.PoolRequest{AddressSpace: ipam.LocalSpace, Pool: "10.1.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.1.0.1", "10.1.0.2"} { // the gateway, then the container
		if _, err := svc.RequestAddress(ipam.AddressRequest{PoolID: pool.ID, Address: want}); err != nil {
			t.Fatal(err)
		}
	}
	endpointLinks(t, h) // the container at 10.1.0.2
	// The damage: the container's address record is gone.
	must(t, h.d.store.Update(func(tx *store.Tx) error {
		return tx.ForEach("ipam-addresses", func(key string, _ []byte) error {
			if strings.HasSuffix(key, "|10.1.0.2") {
				return tx.Delete("ipam-addresses", key)
			}
			return nil
		})
	}))
	h.d.store.Close()
	svc = startWithIPAM()
	next, err := svc.RequestAddress(ipam.AddressRequest{PoolID: pool.ID})
	if err != nil {
		t.Fatal(err)
	}
	if next.Addr().String() == "10.1.0.2" {
		t.Fatal("IPAM handed out the address of a running container")
	}
	if _, err := svc.RequestAddress(ipam.AddressRequest{PoolID: pool.ID, Address: "10.1.0.2"}); err == nil {
		t.Fatal("the running container's address can be requested again")
	}
}
