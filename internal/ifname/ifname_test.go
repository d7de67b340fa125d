package ifname

import (
	"strings"
	"testing"
)

func TestCheckNew(t *testing.T) {
	for _, name := range []string{"br0", "wf-abc", "br_lab.10", "A-1"} {
		if err := CheckNew(name); err != nil {
			t.Errorf("CheckNew(%q): %v", name, err)
		}
	}
	// Names the kernel takes but iptables or the firewall would not: each
	// once passed option parsing and then blocked every later start.
	for _, name := range []string{"br+", "br@x", "brü", "-br", "br#x", ".br", "br x", "", "abcdefghijklmnop", "a/b"} {
		if err := CheckNew(name); err == nil {
			t.Errorf("CheckNew(%q) accepted it", name)
		}
	}
	// Existing links may have names weft would not give.
	for _, name := range []string{"br+", "eth0@x", "brü"} {
		if err := Check(name); err != nil {
			t.Errorf("Check(%q): %v", name, err)
		}
	}
}

func TestForID(t *testing.T) {
	id := "0123456789abcdef0123"
	if got := ShortID(id); got != "0123456789ab" {
		t.Errorf("ShortID(%q) = %q", id, got)
	}
	if got := ShortID("n1"); got != "n1" {
		t.Errorf("ShortID(n1) = %q", got)
	}
	// The longest prefix weft uses still gives a name the kernel takes.
	if name := ForID("wf-", id); name != "wf-0123456789ab" || CheckNew(name) != nil {
		t.Errorf("ForID = %q (%v)", name, CheckNew(name))
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", "0000000 0", "../../etc", "a/b", "n:1", "ünï", strings.Repeat("a", 129)} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) accepted it", id)
		}
	}
	for _, id := range []string{"n1", "net-a", "ko1m1zcvtgr5k8lyqqde2f2lk", strings.Repeat("ab", 32), strings.Repeat("a", 128)} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) refused it", id)
		}
	}
}
