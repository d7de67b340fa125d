package netmode

import (
	"strconv"

	"github.com/weftnet/weft/internal/errdefs"
)

// OptionError is the error of an option value a user typed: it names the
// option, the value and what is accepted.
func OptionError(opt, value, accepted string) error {
	return errdefs.Errorf(errdefs.Invalid, "invalid value %q for option %s: %s", value, opt, accepted)
}

// ParseBool reads a true/false option.
func ParseBool(key, value string) (bool, error) {
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, OptionError(key, value, "use true or false")
	}
	return b, nil
}

// IsAlnum says whether s is letters and digits only, and not empty.
func IsAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
