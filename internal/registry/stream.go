package registry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// StreamAttempts is how often a streamed transfer (a blob upload or download) is started: as often
// as RetryTransport tries a request, since the transport cannot replay a stream itself.
const StreamAttempts = 5

// RetryStream runs a streamed transfer up to StreamAttempts times, backing off, while it fails for
// a passing reason (TransientStream). It returns f's last error.
func RetryStream(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < StreamAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
			}
		}
		if err = f(); err == nil || !TransientStream(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// TransientStream reports whether a failed streamed transfer is worth starting again: the registry
// said 408, 429 or 5xx, or the transfer itself broke (a reset, either stream closed early: net/http
// closes the source stream when the destination answers before reading it all). The registry's
// other answers (401, 404, 400 ...) are final, and so is an error marked Final.
func TransientStream(err error) bool {
	var final finalError
	if errors.As(err, &final) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode == http.StatusRequestTimeout || terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500
	}
	return true
}

// Final marks err as not worth another attempt in RetryStream (content that does not match its
// digest: the registry would send the same again). errors.Is and As still see err.
func Final(err error) error {
	if err == nil {
		return nil
	}
	return finalError{err}
}

type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }
