package esp

import (
	"errors"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/errdefs"
	"github.com/weftnet/weft/internal/nl"
)

// probeSPI is the SPI of the throwaway SA Probe installs; no peer ever uses
// it, since derived SPIs are random.
const probeSPI = 0xfe17

// Probe checks that the kernel can encrypt with the algorithm the tunnels
// use, by installing an SA nothing refers to and removing it at once.
func Probe(h *nl.Handle) error {
	lo := netip.MustParseAddr("127.0.0.1")
	key := deriveSA(Key{}, 0, lo, lo).key
	s := &netlink.XfrmState{
		Src: lo.AsSlice(), Dst: lo.AsSlice(), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi: probeSPI, Aead: &netlink.XfrmStateAlgo{Name: Algorithm, Key: key, ICVLen: icvBits},
	}
	err := h.XfrmStateAdd(s)
	if nl.IsExist(err) {
		err = nil // a probe before ours was interrupted: the kernel took that one
	}
	if err != nil {
		return errdefs.Errorf(errdefs.Invalid, "this host's kernel cannot do IPsec ESP with %s (adding an SA failed: %s; it needs the esp4, xfrm_user and gcm modules)", Algorithm, describe(err))
	}
	if err := h.XfrmStateDel(s); err != nil && !nl.IsNotFound(err) {
		return err
	}
	return nil
}

// describe names the errno a kernel without ESP support returns.
func describe(err error) string {
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return "protocol not supported"
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ENOENT):
		return "algorithm " + Algorithm + " not available"
	}
	return err.Error()
}
