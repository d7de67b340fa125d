package netmode

import (
	"net/netip"
	"testing"
)

func TestMACFromIPv4(t *testing.T) {
	ep := &Endpoint{IPv4: netip.MustParsePrefix("172.18.0.2/16")}
	if got := DerivedMAC(ep).String(); got != "02:42:ac:12:00:02" {
		t.Fatalf("mac = %s, want Docker's 02:42:ac:12:00:02", got)
	}
}
