package plugin

import (
	"errors"
	"net/http"

	"github.com/weftnet/weft/internal/errdefs"
)

// statusOf maps an error class to an HTTP status. Never 404: dockerd reads
// 404 as "this plugin does not implement the call".
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.Invalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.Conflict), errors.Is(err, errdefs.Exhausted):
		return http.StatusConflict
	case errors.Is(err, errdefs.NotFound):
		return http.StatusGone
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}
