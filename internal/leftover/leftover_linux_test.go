package leftover

import (
	"io"
	"maps"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/testlab"
)

// lab is a namespace holding links of three owners: this state database's
// (marked weft:this), an earlier one's (weft:earlier) and a user's
// (unmarked, with names like weft's).
func lab(t *testing.T) *testlab.NS {
	ns := testlab.NewNS(t)
	ns.NL.SetMark("this")
	for name, alias := range map[string]string{
		"wf-mine": "weft:this", "wf-orphan": "weft:this",
		"wf-earlier": "weft:earlier", "wf-user": "",
	} {
		ns.MustRun(t, "ip", "link", "add", name, "type", "bridge")
		if alias != "" {
			ns.MustRun(t, "ip", "link", "set", name, "alias", alias)
		}
	}
	return ns
}

func quiet() logrus.FieldLogger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

func exists(t *testing.T, ns *testlab.NS, names ...string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, name := range names {
		ok, err := ns.NL.LinkExists(name)
		if err != nil {
			t.Fatal(err)
		}
		got[name] = ok
	}
	return got
}

// TestRemoveUnowned: only this state's marked links that no record owns go.
func TestRemoveUnowned(t *testing.T) {
	ns := lab(t)
	for range 2 {
		RemoveUnowned(ns.NL, map[string]bool{"wf-mine": true}, quiet())
	}
	want := map[string]bool{"wf-mine": true, "wf-orphan": false, "wf-earlier": true, "wf-user": true}
	if got := exists(t, ns, "wf-mine", "wf-orphan", "wf-earlier", "wf-user"); !maps.Equal(got, want) {
		t.Errorf("links left %v, want %v", got, want)
	}
}

// TestRemoveMarked: the named links of any weft state go, a user's stays,
// and a second call finds nothing to remove.
func TestRemoveMarked(t *testing.T) {
	ns := lab(t)
	names := []string{"wf-earlier", "wf-user", "wf-missing"}
	if !RemoveMarked(ns.NL, "net-1", names, quiet()) {
		t.Error("removed nothing")
	}
	if RemoveMarked(ns.NL, "net-1", names, quiet()) {
		t.Error("a second call removed something")
	}
	want := map[string]bool{"wf-earlier": false, "wf-user": true}
	if got := exists(t, ns, "wf-earlier", "wf-user"); !maps.Equal(got, want) {
		t.Errorf("links left %v, want %v", got, want)
	}
}

// TestMark: the links named get this state's mark (those of a weft that
// predates marks), so a later RemoveUnowned can tell them.
func TestMark(t *testing.T) {
	ns := lab(t)
	Mark(ns.NL, []string{"wf-user", "wf-missing"}, quiet())
	l, err := ns.NL.LinkByName("wf-user")
	if err != nil {
		t.Fatal(err)
	}
	if !ns.NL.Mine(l) {
		t.Errorf("wf-user's alias is %q after Mark", l.Attrs().Alias)
	}
}
