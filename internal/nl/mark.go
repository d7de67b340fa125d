package nl

import (
	"strings"

	"github.com/vishvananda/netlink"
)

// weft recognises its own links by a mark, never by their names: a user's
// veth named "wheel0" or bridge named "wf-mine" look like weft's but are
// not. The mark is the link's alias (IFLA_IFALIAS, shown by `ip link` as
// "alias weft:..."), set right after the link is made and kept by the
// kernel for the link's life. It carries the instance of the state database
// that made the link (store.Instance), so a new, emptied or salvaged
// database never claims the links of running containers made under another.

// markPrefix starts every mark.
const markPrefix = "weft:"

// SetMark makes every link this handle creates from now on carry the mark of
// the state database instance.
func (h *Handle) SetMark(instance string) { h.mark = markPrefix + instance }

// Mine says whether l carries this handle's mark: weft made it under the
// current state database.
func (h *Handle) Mine(l netlink.Link) bool {
	return h.mark != "" && l.Attrs().Alias == h.mark
}

// MadeByWeft says whether l carries any weft mark, of this state database or
// of another.
func MadeByWeft(l netlink.Link) bool { return strings.HasPrefix(l.Attrs().Alias, markPrefix) }

// Mark writes this handle's mark on a link weft made before marks existed
// (a state database of schema 1) or whose marking a crash interrupted.
func (h *Handle) Mark(l netlink.Link) error {
	if h.mark == "" || l.Attrs().Alias == h.mark {
		return nil
	}
	return h.h.LinkSetAlias(l, h.mark)
}
