package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// LockMode says whether a run changes the store (exclusive: backup, prune) or only reads it
// (shared: restore, verify). Readers run side by side; a writer runs alone.
type LockMode string

const (
	LockExclusive LockMode = "exclusive"
	LockShared    LockMode = "shared"
)

// LockInfo is one holder of the lock.
type LockInfo struct {
	ID        string    `json:"id"` // random per run: heartbeat and release touch only this entry
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

// lockDoc is the lock object. Every change to it is a compare-and-swap against the version that was
// read (Store.ReplaceIf), so two runs can never both take it, and a run can never overwrite or
// release an entry that another run wrote. A document with no live holder is a free lock.
type lockDoc struct {
	Mode    LockMode   `json:"mode"`
	Holders []LockInfo `json:"holders"`
}

// ErrLocked means another run holds the destination.
var ErrLocked = errors.New("the destination is locked by another run")

// ErrLockLost is the cause of a held lock's context ending because another run took the lock over
// (this run's heartbeat stopped for longer than StaleAfter).
var ErrLockLost = errors.New("the lock was taken over by another run")

// StaleAfter is how long a lock may go without a heartbeat before it counts as left by a crash.
const StaleAfter = 10 * time.Minute

// casAttempts bounds the compare-and-swap loops: each retry means another run changed the lock in
// between, so a handful is plenty.
const casAttempts = 20

// Lock takes the destination's lock in mode, refreshing it until release is called. The returned
// context is the caller's, cancelled with ErrLockLost if the lock is lost: work under the lock uses
// it. Holders from crashed runs are dropped when the lock is taken: a holder whose heartbeat is older
// than StaleAfter, or that names a process on this host that no longer runs.
func Lock(ctx context.Context, s Store, command string, mode LockMode, now func() time.Time) (context.Context, func(), error) {
	host, _ := os.Hostname()
	me := LockInfo{ID: randomID(), Host: host, PID: os.Getpid(), Command: command, Started: now().UTC()}
	me.Heartbeat = me.Started
	err := updateLock(ctx, s, func(doc *lockDoc) error {
		live := doc.live(host, now())
		if len(live) > 0 && (mode == LockExclusive || doc.Mode == LockExclusive) {
			h := live[0]
			return fmt.Errorf("%w: %s (pid %d on %s, %s) since %s; if that run is gone, wait %s or delete %s/lock",
				ErrLocked, h.Command, h.PID, h.Host, doc.Mode, h.Started.Format(time.RFC3339), StaleAfter, s)
		}
		doc.Mode, doc.Holders = mode, append(live, me)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("taking the lock on %s: %w", s, err)
	}
	held, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(StaleAfter / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				err := updateLock(context.WithoutCancel(ctx), s, func(doc *lockDoc) error {
					for i := range doc.Holders {
						if doc.Holders[i].ID == me.ID {
							doc.Holders[i].Heartbeat = now().UTC()
							return nil
						}
					}
					return ErrLockLost
				})
				if errors.Is(err, ErrLockLost) {
					cancel(ErrLockLost)
					return
				}
			}
		}
	}()
	release := func() {
		close(stop)
		<-done
		_ = updateLock(context.WithoutCancel(ctx), s, func(doc *lockDoc) error {
			kept := doc.Holders[:0]
			found := false
			for _, h := range doc.Holders {
				if h.ID == me.ID {
					found = true
					continue
				}
				kept = append(kept, h)
			}
			if !found {
				return errNoChange
			}
			doc.Holders = kept
			return nil
		})
		cancel(context.Canceled)
	}
	return held, release, nil
}

// errNoChange tells updateLock that the document needs no write.
var errNoChange = errors.New("no change")

// updateLock reads the lock document, lets change edit it, and writes it back only if nobody wrote
// it in between; on a conflict it starts again from a fresh read.
func updateLock(ctx context.Context, s Store, change func(*lockDoc) error) error {
	for attempt := 0; attempt < casAttempts; attempt++ {
		raw, version, err := s.ReadVersion(ctx, keyLock)
		doc := &lockDoc{}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			version = ""
		case err != nil:
			return err
		default:
			doc = parseLock(raw)
		}
		if err := change(doc); err != nil {
			if errors.Is(err, errNoChange) {
				return nil
			}
			return err
		}
		out, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		err = s.ReplaceIf(ctx, keyLock, out, version)
		if errors.Is(err, ErrConflict) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
			}
			continue
		}
		return err
	}
	return fmt.Errorf("the lock kept changing under %d attempts: %w", casAttempts, ErrConflict)
}

// parseLock reads the lock document, and the single-holder form earlier versions wrote. Content that
// is neither holds no live holder.
func parseLock(raw []byte) *lockDoc {
	var doc lockDoc
	if json.Unmarshal(raw, &doc) == nil && (doc.Mode != "" || doc.Holders != nil) {
		return &doc
	}
	var old LockInfo
	if json.Unmarshal(raw, &old) == nil && !old.Heartbeat.IsZero() {
		return &lockDoc{Mode: LockExclusive, Holders: []LockInfo{old}}
	}
	return &lockDoc{}
}

// live returns the holders that are not stale.
func (d *lockDoc) live(host string, now time.Time) []LockInfo {
	var out []LockInfo
	for _, h := range d.Holders {
		if !h.stale(host, now) {
			out = append(out, h)
		}
	}
	return out
}

func (l *LockInfo) stale(host string, now time.Time) bool {
	if l.Heartbeat.IsZero() || now.Sub(l.Heartbeat) > StaleAfter {
		return true
	}
	if l.Host == host && l.PID > 0 {
		// Signal 0 checks that the process exists.
		if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// Holders returns the live holders of the destination's lock (none when it is free).
func Holders(ctx context.Context, s Store, now time.Time) ([]LockInfo, LockMode, error) {
	raw, _, err := s.ReadVersion(ctx, keyLock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	doc := parseLock(raw)
	host, _ := os.Hostname()
	return doc.live(host, now), doc.Mode, nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
