package nl

import "fmt"

// LinkExists reports whether a link named name exists.
func (h *Handle) LinkExists(name string) (bool, error) {
	_, err := h.LinkByName(name)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// DeleteLink removes a link by name; a missing link is not an error, so
// every teardown can run twice.
func (h *Handle) DeleteLink(name string) error {
	l, err := h.LinkByName(name)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete link %q: %w", name, err)
	}
	return nil
}
