package swarm

import (
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/store"
)

func open(t *testing.T, path string) (*store.Store, *Nodes) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	var s *Nodes
	if err := st.View(func(tx *store.Tx) (err error) { s, err = Load(tx, log); return err }); err != nil {
		t.Fatal(err)
	}
	return st, s
}

// TestAnnounce: a node stays while a gossip member seen joining remains,
// this node never drops itself and a new self replaces the old, and what
// is known survives a restart, after which a remembered node leaves at its
// first departure.
func TestAnnounce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	st, s := open(t, path)
	self, peer := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	step := func(addr netip.Addr, isSelf, joined, wantChanged bool) {
		t.Helper()
		changed, err := s.Announce(st, addr, isSelf, joined)
		if err != nil || changed != wantChanged {
			t.Fatalf("announce %s self=%v joined=%v: changed %v (%v), want %v", addr, isSelf, joined, changed, err, wantChanged)
		}
	}
	step(self, true, true, true)
	step(peer, false, true, true)
	step(peer, false, true, true) // a restarted dockerd's new member
	step(peer, false, false, false)
	if !slices.Equal(s.Peers(), []netip.Addr{peer}) {
		t.Fatalf("peers %v: the node whose new member lives was dropped", s.Peers())
	}
	step(self, true, false, false)
	if got, ok := s.Self(); !ok || got != self {
		t.Fatalf("self %s %v after an old member of this node left", got, ok)
	}
	st.Close()

	st, s = open(t, path)
	defer st.Close()
	if got, _ := s.Self(); got != self || !slices.Equal(s.Peers(), []netip.Addr{peer}) {
		t.Fatalf("after a restart: self %s, peers %v", got, s.Peers())
	}
	newSelf := netip.MustParseAddr("10.0.0.9")
	step(newSelf, true, true, true)
	if got, _ := s.Self(); got != newSelf || s.Len() != 2 {
		t.Fatalf("self %s with %d nodes, want %s and 2", got, s.Len(), newSelf)
	}
	step(peer, false, false, true)
	if len(s.Peers()) != 0 {
		t.Fatalf("a remembered node stays after it left: %v", s.Peers())
	}
}
