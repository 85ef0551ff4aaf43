package exitcode

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain", errors.New("boom"), Error},
		{"usage wrapped", fmt.Errorf("config: %w", ErrUsage), Usage},
		{"violation", fmt.Errorf("gate: %w", ErrViolation), Violation},
		{"explicit code wins", With(NotFound, fmt.Errorf("x: %w", ErrUsage)), NotFound},
		{"http 401", &transport.Error{StatusCode: http.StatusUnauthorized}, Auth},
		{"http 403 wrapped", fmt.Errorf("list: %w", &transport.Error{StatusCode: http.StatusForbidden}), Auth},
		{"http 404", &transport.Error{StatusCode: http.StatusNotFound}, NotFound},
		{"manifest unknown code", &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, NotFound},
		{"http 500", &transport.Error{StatusCode: http.StatusInternalServerError}, Error},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of() = %d, want %d", c.name, got, c.want)
		}
	}
	if With(Usage, nil) != nil {
		t.Error("With(code, nil) must stay nil so callers can wrap unconditionally")
	}
}
