package esp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKey(k.String())
	if err != nil || back != k {
		t.Errorf("a key does not survive String/ParseKey: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("0", 62), strings.Repeat("g", 64)} {
		if _, err := ParseKey(bad); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
}

// TestDeriveSA: both hosts compute the same SA for a direction, while the
// two directions, two networks and two keys never share an SPI or a key.
func TestDeriveSA(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	var k1, k2 Key
	k2[0] = 1
	ab := deriveSA(k1, 10, a, b)
	if again := deriveSA(k1, 10, a, b); again.spi != ab.spi || !bytes.Equal(again.key, ab.key) {
		t.Error("derivation is not deterministic")
	}
	if len(ab.key) != 36 || ab.spi < 256 {
		t.Errorf("key of %d bytes (want 36: AES-256 and salt), SPI %#x", len(ab.key), ab.spi)
	}
	for name, other := range map[string]sa{"reverse": deriveSA(k1, 10, b, a), "other vni": deriveSA(k1, 11, a, b), "other key": deriveSA(k2, 10, a, b)} {
		if other.spi == ab.spi || bytes.Equal(other.key, ab.key) {
			t.Errorf("%s direction shares the SPI or key", name)
		}
	}
}

func TestFitMTU(t *testing.T) {
	// 1450 = 1500 - 50 for VXLAN; ESP then takes 34 and aligns to 4 bytes.
	for in, want := range map[int]int{1450: 1416, 1449: 1412, 8950: 8916} {
		if got := FitMTU(in); got != want {
			t.Errorf("FitMTU(%d) = %d, want %d", in, got, want)
		}
		if outer := FitMTU(in) + 50 + 34; outer > in+50 || (FitMTU(in)+32)%4 != 0 {
			t.Errorf("FitMTU(%d): %d bytes on the wire, more than %d, or unaligned", in, outer, in+50)
		}
	}
}
