package ifname

import "testing"

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
