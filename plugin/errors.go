package plugin

import (
	"errors"
	"net/http"

	"github.com/weftnet/weft/driver"
	"github.com/weftnet/weft/ipam"
)

var errBadRequest = errors.New("bad request")

// statusOf maps an error class to an HTTP status. Never 404: dockerd reads
// 404 as "this plugin does not implement the call".
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, driver.ErrInvalid), errors.Is(err, ipam.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, driver.ErrConflict), errors.Is(err, ipam.ErrConflict), errors.Is(err, ipam.ErrExhausted):
		return http.StatusConflict
	case errors.Is(err, driver.ErrNotFound), errors.Is(err, ipam.ErrNotFound):
		return http.StatusGone
	default:
		return http.StatusInternalServerError
	}
}
