package harbor

import (
	"context"
	"errors"
	"time"
)

// errStillRunning is pollJob's answer when the job did not end within its limit.
var errStillRunning = errors.New("still running")

// pollJob calls check until it reports done, waiting 100 ms after the first call and doubling
// to 5 s between calls (Harbor's job service runs scans, retention and replication in the
// background). It stops with check's error, the context's, or errStillRunning after limit.
func pollJob(ctx context.Context, limit time.Duration, check func() (done bool, err error)) error {
	deadline := time.Now().Add(limit)
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errStillRunning
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Harbor's task and execution statuses (pkg/task), with the older retention names: scans,
// retention and replication report these.
func taskDone(s string) bool {
	switch s {
	case "Success", "Succeed", "Error", "Failed", "Stopped":
		return true
	}
	return false
}

func knownTaskStatus(s string) bool {
	switch s {
	case "Pending", "Scheduled", "Running", "InProgress":
		return true
	}
	return taskDone(s)
}

func taskSucceeded(s string) bool { return s == "Success" || s == "Succeed" }
