package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFirewallBackend: a backend dockerd does not have is refused before
// anything is made, with the accepted values.
func TestBadFirewallBackend(t *testing.T) {
	requireLab(t, false)
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := New(Config{Dir: dir, Logf: t.Logf, FirewallBackend: "pf"})
	if err == nil {
		l.Close()
		t.Fatal("New accepted firewall backend pf")
	}
	for _, want := range []string{`"pf"`, "WEFT_LAB_FIREWALL_BACKEND", "iptables or nftables"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("refused New made %s (%v)", dir, err)
	}
}
