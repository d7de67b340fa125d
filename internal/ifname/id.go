package ifname

// weft names the links of a network or an endpoint after the id dockerd gave
// it: a short prefix of the mode's choosing and the id's first IDLen
// characters, which are also how logs show ids. This file is the one place
// that rule lives.

// IDLen is how many characters of a Docker id weft keeps, in link names and
// in logs: Docker's own short ids are 12 characters too.
const IDLen = 12

// MaxIDLen bounds a network or endpoint id; dockerd's are 64 characters
// (25 for swarm networks).
const MaxIDLen = 128

// ShortID cuts a Docker id to IDLen characters.
func ShortID(id string) string {
	if len(id) > IDLen {
		return id[:IDLen]
	}
	return id
}

// ForID names a link of the network or endpoint id: prefix and the short id.
// Prefixes are at most MaxLen-IDLen (3) characters, so names fit the kernel's
// limit.
func ForID(prefix, id string) string { return prefix + ShortID(id) }

// ValidID reports whether id has the form of dockerd's network and endpoint
// ids (hex, or base 36 for swarm networks), with room to spare: links are
// named after ids, and one with a space or a slash would make names the
// kernel refuses.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
