package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regctl-dev/regctl/internal/registry"
)

// A streamed transfer is started again only for a passing failure, and at most StreamAttempts times.
func TestRetryStreamRetriesOnlyPassingFailures(t *testing.T) {
	status := func(code int) error { return &transport.Error{StatusCode: code} }
	mismatch := errors.New("content does not match its digest")
	for _, c := range []struct {
		name  string
		err   error
		calls int
	}{
		{"404 is final", status(http.StatusNotFound), 1},
		{"401 is final", status(http.StatusUnauthorized), 1},
		{"400 is final", status(http.StatusBadRequest), 1},
		{"a mismatch marked final", fmt.Errorf("copying: %w", registry.Final(mismatch)), 1},
		{"503 passes", status(http.StatusServiceUnavailable), registry.StreamAttempts},
		{"429 passes", status(http.StatusTooManyRequests), registry.StreamAttempts},
		{"a reset passes", syscall.ECONNRESET, registry.StreamAttempts},
		{"a cut stream passes", io.ErrUnexpectedEOF, registry.StreamAttempts},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each waits out the real backoff (3 s in all for the passing ones)
			calls := 0
			err := registry.RetryStream(context.Background(), func() error { calls++; return c.err })
			if calls != c.calls {
				t.Errorf("%d calls, want %d", calls, c.calls)
			}
			if !errors.Is(err, c.err) && err != c.err {
				t.Errorf("returned %v, want %v", err, c.err)
			}
		})
	}
}

func TestFinalKeepsItsError(t *testing.T) {
	mismatch := errors.New("content does not match its digest")
	if err := registry.Final(mismatch); !errors.Is(err, mismatch) || err.Error() != mismatch.Error() {
		t.Errorf("Final hides its error: %v", err)
	}
}

func TestRetryStreamStopsOnSuccessAndOnCancel(t *testing.T) {
	calls := 0
	err := registry.RetryStream(context.Background(), func() error {
		if calls++; calls < 3 {
			return syscall.ECONNRESET
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("a transfer that succeeds on its third start: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = registry.RetryStream(ctx, func() error { calls++; cancel(); return syscall.ECONNRESET })
	if calls != 1 || err == nil {
		t.Errorf("cancelled: %d calls, %v", calls, err)
	}
}
