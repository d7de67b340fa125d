package nl_test

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/nl"
	"github.com/weftnet/weft/internal/testlab"
)

// TestLinkRoundTrip: a link the handle makes carries its mark, is found,
// and is deleted; deleting it again, or any missing link, succeeds, and a
// missing link reads as not found. One round trip per link type weft asks
// the kernel for on every kernel (bridge, veth; macvlan, vxlan and the
// rest have their packages' tests).
func TestLinkRoundTrip(t *testing.T) {
	ns := testlab.NewNS(t)
	h := ns.NL
	h.SetMark("instance-a")
	for _, l := range []netlink.Link{
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wt-br"}},
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wt-veth0"}, PeerName: "wt-veth1"},
	} {
		name := l.Attrs().Name
		if err := h.LinkAdd(l); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		got, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type() != l.Type() || got.Attrs().Alias != "weft:instance-a" || !h.Mine(got) || !nl.MadeByWeft(got) {
			t.Errorf("%s: type %s, alias %q; want a %s marked weft:instance-a", name, got.Type(), got.Attrs().Alias, l.Type())
		}
		if err := h.LinkAdd(l); !nl.IsExist(err) {
			t.Errorf("adding %s twice: %v, want EEXIST", name, err)
		}
		for range 2 {
			if err := h.DeleteLink(name); err != nil {
				t.Errorf("delete %s: %v", name, err)
			}
		}
		if ok, err := h.LinkExists(name); ok || err != nil {
			t.Errorf("%s after delete: exists %v, %v", name, ok, err)
		}
		if _, err := h.LinkByName(name); !nl.IsNotFound(err) || !errors.Is(err, nl.ErrNotFound) {
			t.Errorf("looking up deleted %s: %v, want not found", name, err)
		}
	}
}

// TestMarks: a link made by hand carries no mark until Mark writes this
// state's; one marked under another state is weft's but not this state's.
func TestMarks(t *testing.T) {
	ns := testlab.NewNS(t)
	h := ns.NL
	h.SetMark("instance-a")
	ns.MustRun(t, "ip", "link", "add", "wt-user", "type", "bridge")
	ns.MustRun(t, "ip", "link", "add", "wt-other", "type", "bridge")
	ns.MustRun(t, "ip", "link", "set", "wt-other", "alias", "weft:instance-b")
	user, other := mustLink(t, h, "wt-user"), mustLink(t, h, "wt-other")
	if nl.MadeByWeft(user) || h.Mine(user) {
		t.Error("a link made by hand counts as weft's")
	}
	if !nl.MadeByWeft(other) || h.Mine(other) {
		t.Error("a link of another state must be weft's, not this state's")
	}
	if err := h.Mark(user); err != nil {
		t.Fatal(err)
	}
	if user = mustLink(t, h, "wt-user"); !h.Mine(user) {
		t.Errorf("after Mark the alias is %q", user.Attrs().Alias)
	}
	// Without a mark (a handle of a test, say) links are made unmarked.
	bare := testlab.NewNS(t)
	if err := bare.NL.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wt-br"}}); err != nil {
		t.Fatal(err)
	}
	if l := mustLink(t, bare.NL, "wt-br"); nl.MadeByWeft(l) || bare.NL.Mine(l) {
		t.Errorf("a handle without a mark marked %s as %q", l.Attrs().Name, l.Attrs().Alias)
	}
}

func mustLink(t *testing.T, h *nl.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
