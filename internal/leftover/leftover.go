// Package leftover keeps weft's links apart from everyone else's by the
// mark weft writes on every link it makes (internal/nl): it marks the links
// a state database's records own, removes the marked links no record owns
// (a crash left them), and removes the links of a network or endpoint
// dockerd deletes that an earlier state database made. A link without
// weft's mark is never touched, whatever its name.
package leftover

import (
	"sort"

	"github.com/sirupsen/logrus"

	"github.com/weftnet/weft/internal/ifname"
	"github.com/weftnet/weft/internal/nl"
)

// Mark writes h's mark on the named links: links made by a weft that
// predates marks (schema 1), or whose marking a crash cut short. Missing
// links are skipped; failures are logged.
func Mark(h *nl.Handle, names []string, log logrus.FieldLogger) {
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			continue // not there: nothing to mark
		}
		if err := h.Mark(l); err != nil {
			log.WithError(err).WithField("link", name).Warn("could not mark link as weft's")
		}
	}
}

// RemoveUnowned deletes the links that carry h's mark but that owned does
// not name: weft made them and crashed before it stored or after it
// removed their record. Links with another weft state's mark (the state
// was damaged, emptied or replaced) may still carry running containers;
// they are reported and left alone.
func RemoveUnowned(h *nl.Handle, owned map[string]bool, log logrus.FieldLogger) {
	links, err := h.LinkList()
	if err != nil {
		log.WithError(err).Warn("could not list links to find leftovers")
		return
	}
	var foreign []string
	for _, l := range links {
		name := l.Attrs().Name
		switch {
		case h.Mine(l) && !owned[name]:
			log.WithField("link", name).Info("removing leftover link")
			if err := h.DeleteLink(name); err != nil {
				log.WithError(err).WithField("link", name).Warn("could not remove leftover link")
			}
		case nl.MadeByWeft(l) && !h.Mine(l):
			foreign = append(foreign, name+" ("+l.Attrs().Alias+")")
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		log.WithField("links", foreign).Warn("links made under another weft state database are left alone: containers may still use them; delete them with `ip link del` once nothing does")
	}
}

// RemoveMarked handles dockerd deleting a network or endpoint (id) weft has
// no record of: one made under an earlier state database that was damaged
// or replaced. Its links are named after the id (names), and a weft mark of
// any state proves weft made them; dockerd moves a removed container's link
// back to the host before the delete, so without this they would stay
// forever. It reports whether it removed any.
func RemoveMarked(h *nl.Handle, id string, names []string, log logrus.FieldLogger) (removed bool) {
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil || !nl.MadeByWeft(l) {
			continue
		}
		log.WithFields(logrus.Fields{"id": ifname.ShortID(id), "link": name}).Info("removing a link weft made under an earlier state")
		if err := h.DeleteLink(name); err != nil {
			log.WithError(err).WithField("link", name).Warn("could not remove link")
			continue
		}
		removed = true
	}
	return removed
}
