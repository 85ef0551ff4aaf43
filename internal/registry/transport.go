package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// RetryTransport retries requests that failed for a passing reason: 429, 502, 503, 504 and (for
// idempotent methods) 500 and connection resets. It honours Retry-After, backs off exponentially with
// jitter otherwise, and gives up after MaxAttempts. A request whose body cannot be replayed is never
// retried after it was sent.
type RetryTransport struct {
	Base        http.RoundTripper
	MaxAttempts int           // total attempts, including the first; default 5
	BaseDelay   time.Duration // first backoff; default 250ms
	MaxDelay    time.Duration // cap for backoff and Retry-After; default 30s
	// Sleep waits d or until ctx ends; injected so tests do not wait.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

func (t *RetryTransport) defaults() (attempts int, base, maxDelay time.Duration) {
	attempts, base, maxDelay = t.MaxAttempts, t.BaseDelay, t.MaxDelay
	if attempts <= 0 {
		attempts = 5
	}
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	return
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attempts, base, maxDelay := t.defaults()
	sleep := t.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead ||
		req.Method == http.MethodPut || req.Method == http.MethodDelete || req.Method == http.MethodOptions
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil

	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.Base.RoundTrip(r)
		retry, why := false, ""
		switch {
		case err != nil:
			retry, why = idempotent && transientNetErr(err), err.Error()
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			// The server refused before doing anything: safe to repeat any method.
			retry, why = true, resp.Status
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout ||
			resp.StatusCode == http.StatusInternalServerError:
			retry, why = idempotent, resp.Status
		}
		if !retry || !replayable || attempt >= attempts || req.Context().Err() != nil {
			return resp, err
		}
		delay := backoff(base, maxDelay, attempt)
		if resp != nil {
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				delay = min(ra, maxDelay)
			}
			// Drain so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if t.Logger != nil {
			t.Logger.Debug("retrying request", "method", req.Method, "url", redactURL(req), "reason", why,
				"attempt", attempt, "delay", delay)
		}
		if err := sleep(req.Context(), delay); err != nil {
			return nil, err
		}
	}
}

func backoff(base, maxDelay time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d <= 0 || d > maxDelay {
		d = maxDelay
	}
	// ±20% jitter so parallel workers do not retry in lockstep.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// retryAfter parses delta-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func transientNetErr(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	// A refused connection is not retried: a wrong host or port should fail at once.
	return errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redactURL drops the query, which may carry upload state or signed tokens.
func redactURL(r *http.Request) string {
	u := *r.URL
	u.RawQuery = ""
	u.User = nil
	return u.String()
}

// IsNotFound reports whether a registry answered "not there": HTTP 404, the distribution error
// codes MANIFEST_UNKNOWN, BLOB_UNKNOWN or NAME_UNKNOWN, or a backend's own not-found (ECR's
// ImageNotFoundException, Harbor's 404 JSON), which backends mark with exit code 5. The one check
// every caller uses.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if exitcode.Of(err) == exitcode.NotFound {
		return true
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.BlobUnknownErrorCode, transport.NameUnknownErrorCode:
			return true
		}
	}
	return false
}
