package backup

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestReadLimitedFailsRatherThanCuts(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"layers":[]}`)
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	if got, err := readLimited(newVerifier(bytes.NewReader(raw), d, -1), int64(len(raw))); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("at the limit: %q %v", got, err)
	}
	// One byte over: an error, never the first len-1 bytes passed off as the manifest.
	if got, err := readLimited(newVerifier(bytes.NewReader(raw), d, -1), int64(len(raw)-1)); err == nil || got != nil {
		t.Fatalf("over the limit: %q %v", got, err)
	}
	// A wrong digest is found at the end of the stream.
	other, _, _ := v1.SHA256(strings.NewReader("other"))
	if _, err := readLimited(newVerifier(bytes.NewReader(raw), other, -1), 1<<20); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("digest mismatch: %v", err)
	}
}

func TestDirStoreRefusesKeysOutsideItsRoot(t *testing.T) {
	d, _ := newDirStore(t.TempDir())
	for _, k := range []string{"../x", "blobs/../../x", "/etc/passwd", "a//b", "", `blobs\..\x`, "blobs/./x"} {
		if _, err := d.path(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
	for _, k := range []string{"blobs/sha256/ab", "snapshots/", "index.json", "lock"} {
		if _, err := d.path(k); err != nil {
			t.Errorf("%q refused: %v", k, err)
		}
	}
}

// FuzzParseLock: whatever the lock object holds (it is written by other runs, possibly other
// versions, possibly damaged), parsing never panics and never yields a live holder without a
// heartbeat.
func FuzzParseLock(f *testing.F) {
	f.Add([]byte(`{"mode":"shared","holders":[{"id":"a","host":"h","pid":1,"heartbeat":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"host":"h","pid":1,"command":"regctl backup","started":"2026-01-01T00:00:00Z","heartbeat":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"mode":"exclusive","holders":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"holders":[{}]}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc := parseLock(raw)
		for _, h := range doc.live("h", time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)) {
			if h.Heartbeat.IsZero() {
				t.Fatalf("a holder without a heartbeat counts as live: %+v", h)
			}
		}
	})
}

// Blob names become durable in a batch, and always before anything else is written: a record
// written after blobs finds their directory synced.
func TestDirStoreSyncsBlobDirectoriesBeforeAnythingElse(t *testing.T) {
	ctx := context.Background()
	d, err := newDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"blobs/sha256/aa", "blobs/sha256/bb"} {
		if err := d.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.unsynced) != 1 || !d.unsynced[filepath.Join(d.root, "blobs", "sha256")] {
		t.Fatalf("pending directory syncs after two blobs: %v", d.unsynced)
	}
	if err := d.Put(ctx, "snapshots/x.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	if len(d.unsynced) != 0 {
		t.Fatalf("a record was written before the blob directories were synced: %v", d.unsynced)
	}
}
