package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// LockInfo is what the lock object says about its holder.
type LockInfo struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

// ErrLocked means another run holds the destination.
var ErrLocked = errors.New("the destination is locked by another run")

// StaleAfter is how long a lock may go without a heartbeat before it counts as left by a crash.
const StaleAfter = 10 * time.Minute

// Lock takes the destination's lock, refreshing it until release is called. A lock from a crashed run
// is recovered: its heartbeat is older than StaleAfter, or it names a process on this host that no
// longer runs.
func Lock(ctx context.Context, s Store, command string, now func() time.Time) (release func(), err error) {
	host, _ := os.Hostname()
	me := LockInfo{Host: host, PID: os.Getpid(), Command: command, Started: now().UTC()}
	write := func() []byte {
		me.Heartbeat = now().UTC()
		raw, _ := json.Marshal(me)
		return raw
	}
	for attempt := 0; attempt < 2; attempt++ {
		err = s.CreateExclusive(ctx, keyLock, write())
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("taking the lock on %s: %w", s, err)
		}
		held, rerr := readLock(ctx, s)
		if rerr != nil {
			return nil, rerr
		}
		if !held.stale(host, now()) {
			return nil, fmt.Errorf("%w: %s (pid %d on %s) since %s; if that run is gone, wait %s or delete %s/lock",
				ErrLocked, held.Command, held.PID, held.Host, held.Started.Format(time.RFC3339), StaleAfter, s)
		}
		if err := s.Delete(ctx, keyLock); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("taking the lock on %s: %w", s, err)
	}
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
				_ = putJSONRaw(context.WithoutCancel(ctx), s, keyLock, write())
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_ = s.Delete(context.WithoutCancel(ctx), keyLock)
	}, nil
}

func readLock(ctx context.Context, s Store) (*LockInfo, error) {
	rc, err := s.Get(ctx, keyLock)
	if errors.Is(err, fs.ErrNotExist) {
		return &LockInfo{}, nil // released meanwhile: stale by definition
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<16))
	if err != nil {
		return nil, err
	}
	var li LockInfo
	if json.Unmarshal(raw, &li) != nil {
		return &LockInfo{}, nil // unreadable: a crash mid-write
	}
	return &li, nil
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

func putJSONRaw(ctx context.Context, s Store, key string, raw []byte) error {
	return s.Put(ctx, key, bytesReader(raw), int64(len(raw)))
}
