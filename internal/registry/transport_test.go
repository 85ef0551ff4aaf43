package registry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky answers the first failures requests with status (and Retry-After when set), then 200.
func flaky(t *testing.T, failures int, status int, retryAfter string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if int(n.Add(1)) <= failures {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			return
		}
		w.Write(append([]byte("ok:"), body...))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func recordSleeps(out *[]time.Duration) func(context.Context, time.Duration) error {
	return func(_ context.Context, d time.Duration) error { *out = append(*out, d); return nil }
}

func TestRetryTransportRetriesAndHonoursRetryAfter(t *testing.T) {
	srv, n := flaky(t, 2, http.StatusTooManyRequests, "7")
	var sleeps []time.Duration
	c := &http.Client{Transport: &RetryTransport{Base: http.DefaultTransport, Sleep: recordSleeps(&sleeps)}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || n.Load() != 3 {
		t.Fatalf("status %d after %d requests, want 200 after 3", resp.StatusCode, n.Load())
	}
	if len(sleeps) != 2 || sleeps[0] != 7*time.Second || sleeps[1] != 7*time.Second {
		t.Fatalf("sleeps = %v, want two of 7s (Retry-After)", sleeps)
	}
}

func TestRetryTransportReplaysBodyAndGivesUp(t *testing.T) {
	srv, n := flaky(t, 1, http.StatusServiceUnavailable, "")
	var sleeps []time.Duration
	c := &http.Client{Transport: &RetryTransport{Base: http.DefaultTransport, Sleep: recordSleeps(&sleeps)}}
	resp, err := c.Post(srv.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok:payload" {
		t.Fatalf("body not replayed: %q", body)
	}
	if n.Load() != 2 || len(sleeps) != 1 {
		t.Fatalf("requests=%d sleeps=%v", n.Load(), sleeps)
	}

	always, m := flaky(t, 1000, http.StatusBadGateway, "")
	c = &http.Client{Transport: &RetryTransport{Base: http.DefaultTransport, MaxAttempts: 3, Sleep: recordSleeps(&sleeps)}}
	resp, err = c.Get(always.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || m.Load() != 3 {
		t.Fatalf("want the last 502 after exactly 3 attempts, got %d after %d", resp.StatusCode, m.Load())
	}
}

func TestRetryTransportDoesNotRetryNonIdempotent500OrClientErrors(t *testing.T) {
	for _, tc := range []struct {
		method string
		status int
	}{{http.MethodPost, 500}, {http.MethodPatch, 502}, {http.MethodGet, 404}, {http.MethodGet, 401}} {
		srv, n := flaky(t, 1, tc.status, "")
		c := &http.Client{Transport: &RetryTransport{Base: http.DefaultTransport, Sleep: recordSleeps(new([]time.Duration))}}
		req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader("x"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n.Load() != 1 {
			t.Errorf("%s %d: %d attempts, want 1", tc.method, tc.status, n.Load())
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := retryAfter("3", now); !ok || d != 3*time.Second {
		t.Errorf("seconds: %v %v", d, ok)
	}
	if d, ok := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); !ok || d != 90*time.Second {
		t.Errorf("date: %v %v", d, ok)
	}
	if _, ok := retryAfter("soon", now); ok {
		t.Error("garbage must not parse")
	}
	for attempt := 1; attempt < 40; attempt++ {
		if d := backoff(time.Second, 10*time.Second, attempt); d <= 0 || d > 12*time.Second {
			t.Fatalf("backoff(%d) = %v out of range", attempt, d)
		}
	}
}
