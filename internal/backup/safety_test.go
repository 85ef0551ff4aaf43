package backup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regctl-dev/regctl/internal/backup"
	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/ecr/ecrtest"
	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sample"
)

// failingGets wraps a store so that reading chosen keys fails the way a flaky S3 does.
type failingGets struct {
	backup.Store
	fail  func(key string) bool
	fails atomic.Int64
}

func (f *failingGets) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if f.fail(key) {
		f.fails.Add(1)
		return nil, fmt.Errorf("GET %s: 503 Service Unavailable (injected)", key)
	}
	return f.Store.Get(ctx, key)
}

// twoSnapshots backs up the seeded registry, changes it, backs it up again, so that a prune with
// keep-days 30 at day 41 removes the first snapshot and keeps the second.
func twoSnapshots(t *testing.T, s backup.Store) (reg registry.Registry, old, newer *backup.Snapshot) {
	t.Helper()
	ctx := context.Background()
	_, reg = seeded(t)
	old, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	images, _ := reg.Images(ctx, "tools/other")
	for _, img := range images {
		if len(img.Tags) > 0 {
			reg.DeleteImage(ctx, "tools/other", img.Digest)
		}
	}
	newer, err = backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(40 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	return reg, old, newer
}

// restoresIdentically restores snap into a fresh registry and compares every tag's digest with what
// the snapshot recorded, checking each image is complete.
func restoresIdentically(t *testing.T, s backup.Store, snap *backup.Snapshot) {
	t.Helper()
	target := open(t, localregtest.Start(t).Host)
	if _, err := backup.Restore(context.Background(), s, snap, target, backup.Options{}); err != nil {
		t.Fatalf("restore of %s: %v", snap.ID, err)
	}
	want := map[string]string{}
	for _, r := range snap.Repos {
		for tag, d := range r.Tags {
			want[r.Name+":"+tag] = d
		}
	}
	equalState(t, want, state(t, target))
}

func TestPruneStopsWhenAKeptManifestCannotBeRead(t *testing.T) {
	ctx := context.Background()
	dir, _ := backup.Open(ctx, t.TempDir(), "")
	_, _, newer := twoSnapshots(t, dir)
	// The kept snapshot's first manifest (a platform or image, listed children first) fails to read.
	victim := "blobs/" + strings.Replace(newer.Repos[0].Manifests[0].Digest, ":", "/", 1)
	flakyStore := &failingGets{Store: dir, fail: func(k string) bool { return k == victim }}
	before, _ := dir.List(ctx, "")
	_, err := backup.Prune(ctx, flakyStore, 30, 0, day0.Add(41*24*time.Hour), false)
	if err == nil || !strings.Contains(err.Error(), "nothing deleted") || flakyStore.fails.Load() == 0 {
		t.Fatalf("prune with an unreadable kept manifest: %v (reads failed: %d)", err, flakyStore.fails.Load())
	}
	if after, _ := dir.List(ctx, ""); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a failed prune deleted something: %d keys -> %d", len(before), len(after))
	}
	// Every snapshot is still there and restores as recorded.
	snaps, err := backup.Snapshots(ctx, dir)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after the failed prune: %d %v", len(snaps), err)
	}
	for _, snap := range snaps {
		restoresIdentically(t, dir, snap)
	}
	// Once the store answers again, the prune goes through and the kept snapshot still restores.
	res, err := backup.Prune(ctx, dir, 30, 0, day0.Add(41*24*time.Hour), false)
	if err != nil || len(res.Removed) != 1 || res.BlobsRemoved == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	restoresIdentically(t, dir, newer)
}

func TestVerifyReportsAStoreErrorInsteadOfCorruption(t *testing.T) {
	ctx := context.Background()
	dir, _ := backup.Open(ctx, t.TempDir(), "")
	_, _, newer := twoSnapshots(t, dir)
	victim := "blobs/" + strings.Replace(newer.Repos[0].Manifests[0].Digest, ":", "/", 1)
	_, err := backup.Verify(ctx, &failingGets{Store: dir, fail: func(k string) bool { return k == victim }}, newer, nil)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("verify must fail on a store error, not call it corruption: %v", err)
	}
}

func TestLockTakeoverIsAtomicAndReleaseTouchesOnlyItsOwnEntry(t *testing.T) {
	ctx := context.Background()
	s, _ := backup.Open(ctx, t.TempDir(), "")
	lockRaces(t, s)
}

// lockRaces checks the lock's guarantees on any store.
func lockRaces(t *testing.T, s backup.Store) {
	t.Helper()
	ctx := context.Background()
	_, releaseCrashed, err := backup.Lock(ctx, s, "crashed", backup.LockExclusive, at(day0))
	if err != nil {
		t.Fatal(err)
	}
	// Ten runs find the lock stale at the same moment: exactly one may take it over.
	later := at(day0.Add(backup.StaleAfter + time.Minute))
	var winners atomic.Int64
	var wg sync.WaitGroup
	releases := make(chan func(), 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := backup.Lock(ctx, s, fmt.Sprintf("racer %d", i), backup.LockExclusive, later)
			switch {
			case err == nil:
				winners.Add(1)
				releases <- rel
			case !errors.Is(err, backup.ErrLocked):
				t.Errorf("racer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(releases)
	if winners.Load() != 1 {
		t.Fatalf("%d runs hold the lock at once", winners.Load())
	}
	// The crashed run comes back and releases: the winner's entry must survive.
	releaseCrashed()
	holders, mode, err := backup.Holders(ctx, s, day0.Add(backup.StaleAfter+time.Minute))
	if err != nil || len(holders) != 1 || !strings.HasPrefix(holders[0].Command, "racer") || mode != backup.LockExclusive {
		t.Fatalf("after the stale run's release: %+v %s %v", holders, mode, err)
	}
	for rel := range releases {
		rel()
	}
	// Readers share; a writer waits for them; readers wait for a writer.
	_, r1, err := backup.Lock(ctx, s, "restore", backup.LockShared, later)
	if err != nil {
		t.Fatal(err)
	}
	_, r2, err := backup.Lock(ctx, s, "verify", backup.LockShared, later)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, _, err := backup.Lock(ctx, s, "prune", backup.LockExclusive, later); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("prune while restores read: %v", err)
	}
	r1()
	if _, _, err := backup.Lock(ctx, s, "prune", backup.LockExclusive, later); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("prune while one restore still reads: %v", err)
	}
	r2()
	_, w, err := backup.Lock(ctx, s, "prune", backup.LockExclusive, later)
	if err != nil {
		t.Fatalf("prune once readers are gone: %v", err)
	}
	if _, _, err := backup.Lock(ctx, s, "restore", backup.LockShared, later); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("a restore while prune runs: %v", err)
	}
	w()
	if holders, _, _ := backup.Holders(ctx, s, day0.Add(backup.StaleAfter+time.Minute)); len(holders) != 0 {
		t.Fatalf("released, yet held by %+v", holders)
	}
}

func TestPruneRestoreAndVerifyRefuseACraftedSnapshotID(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	outside := filepath.Join(filepath.Dir(root), "precious.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(outside) })
	s, _ := backup.Open(ctx, root, "")
	twoSnapshots(t, s)
	crafted := `{"id":"../../precious","createdAt":"2020-01-01T00:00:00Z","repositories":[]}`
	if err := os.WriteFile(filepath.Join(root, "snapshots", "20200101T000000Z.json"), []byte(crafted), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Prune(ctx, s, 30, 0, day0.Add(41*24*time.Hour), false); err == nil || !strings.Contains(err.Error(), "not the snapshot id") {
		t.Fatalf("prune with a crafted record: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("a file outside the store is gone: %v", err)
	}
	if _, err := backup.Snapshots(ctx, s); err == nil {
		t.Fatal("a crafted record must be refused when listing")
	}
	// Keys that climb out of the root are refused by the store itself.
	if err := s.Delete(ctx, "../precious.json"); err == nil {
		t.Fatal("delete outside the root was accepted")
	}
	if _, err := s.Get(ctx, "blobs/../../precious.json"); err == nil {
		t.Fatal("get outside the root was accepted")
	}
}

func TestBackupChecksStoredBlobsAndCleansWhatKilledRunsLeft(t *testing.T) {
	ctx := context.Background()
	_, reg := seeded(t)
	root := t.TempDir()
	s, _ := backup.Open(ctx, root, "")
	snap, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0), Repos: []string{"tools/other"}})
	if err != nil {
		t.Fatal(err)
	}
	// The biggest blob (a layer) is cut short, as a full disk or a copy tool might leave it.
	keys, _ := s.List(ctx, "blobs/")
	var biggest string
	var size int64
	for _, k := range keys {
		raw, _ := os.ReadFile(filepath.Join(root, k))
		isLayer := len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b // gzip: not a manifest or config
		if n := int64(len(raw)); isLayer && n > size {
			biggest, size = k, n
		}
	}
	if biggest == "" {
		t.Fatal("no layer in the store")
	}
	good, _ := os.ReadFile(filepath.Join(root, biggest))
	if err := os.WriteFile(filepath.Join(root, biggest), good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// And a killed run's temporary file lies around.
	leftover := filepath.Join(root, "blobs", "sha256", ".tmp-deadbeef-123")
	os.WriteFile(leftover, []byte("half"), 0o644)

	again, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(time.Hour)), Repos: []string{"tools/other"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.Repaired != 1 || again.Stats.NewBlobs != 1 {
		t.Errorf("a truncated blob must be fetched again: %+v", again.Stats)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed run's temporary file is still there: %v", err)
	}
	if v, err := backup.Verify(ctx, s, snap, nil); err != nil || !v.OK() {
		t.Errorf("after the repair: %+v %v", v, err)
	}

	// Same size, different bytes: only --verify-existing can tell, and it repairs.
	flipped := append([]byte{}, good...)
	flipped[len(flipped)/2] ^= 0xff
	os.WriteFile(filepath.Join(root, biggest), flipped, 0o644)
	plain, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(2 * time.Hour)), Repos: []string{"tools/other"}})
	if err != nil || plain.Stats.Repaired != 0 || plain.Stats.NewBlobs != 0 {
		t.Fatalf("a plain re-run trusts a blob of the right size: %+v %v", plain.Stats, err)
	}
	deep, err := backup.Backup(ctx, reg, s, backup.Options{Now: at(day0.Add(3 * time.Hour)), Repos: []string{"tools/other"}, VerifyExisting: true})
	if err != nil || deep.Stats.Repaired != 1 {
		t.Fatalf("--verify-existing: %+v %v", deep.Stats, err)
	}
	if v, err := backup.Verify(ctx, s, snap, nil); err != nil || !v.OK() {
		t.Errorf("after --verify-existing: %+v %v", v, err)
	}

	// prune cleans temporary files too.
	os.WriteFile(leftover, []byte("half"), 0o644)
	if _, err := backup.Prune(ctx, s, 365, 0, day0.Add(4*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("prune left the temporary file: %v", err)
	}
}

func TestRestoreBringsBackRepositorySettingsAndPolicies(t *testing.T) {
	ctx := context.Background()
	src := ecrtest.Start(t)
	from := openECR(t, "prod", src)
	spec := registry.RepositorySpec{ScanOnPush: true, Encryption: "AES256", TagMutability: "IMMUTABLE"}
	if _, err := from.EnsureRepository(ctx, "game-server", spec); err != nil {
		t.Fatal(err)
	}
	lifecycleText, err := os.ReadFile("../../testdata/lifecycle/ecr-lifecycle-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	policyText, err := os.ReadFile("../../testdata/ecr/ecr-repository-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := from.(registry.LifecyclePolicies).PutLifecyclePolicy(ctx, "game-server", string(lifecycleText)); err != nil {
		t.Fatal(err)
	}
	if err := from.(registry.RepositoryPolicies).SetRepositoryPolicy(ctx, "game-server", string(policyText)); err != nil {
		t.Fatal(err)
	}
	ref, _ := registry.RepositoryRef(from, "game-server")
	if _, err := sample.Seed(ctx, ref, day0, append(from.Remote(), remote.WithContext(ctx))...); err != nil {
		t.Fatal(err)
	}
	s, _ := backup.Open(ctx, t.TempDir(), "")
	snap, err := backup.Backup(ctx, from, s, backup.Options{Now: at(day0)})
	if err != nil {
		t.Fatal(err)
	}
	rs := snap.Repos[0]
	if rs.Spec == nil || !rs.Spec.ScanOnPush || rs.Spec.Encryption != "AES256" || rs.Spec.TagMutability != "IMMUTABLE" ||
		rs.Settings[backup.SettingLifecyclePolicy] == "" || rs.Settings[backup.SettingRepositoryPolicy] == "" || len(rs.SettingsErrors) != 0 {
		t.Fatalf("recorded settings: %+v %v %v", rs.Spec, rs.Settings, rs.SettingsErrors)
	}

	// Into a new ECR: the repository comes back with its settings and both policies.
	dst := ecrtest.Start(t)
	to := openECR(t, "dr", dst)
	res, err := backup.Restore(ctx, s, snap, to, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := to.(registry.RepositoryInspector).RepositorySettings(ctx, "game-server")
	if err != nil || got.ScanOnPush != true || got.Encryption != "AES256" || got.TagMutability != "IMMUTABLE" {
		t.Errorf("restored repository settings: %+v %v", got, err)
	}
	if lp, err := to.(registry.LifecyclePolicies).GetLifecyclePolicy(ctx, "game-server"); err != nil || !strings.Contains(lp, "rulePriority") {
		t.Errorf("restored lifecycle policy: %q %v", lp, err)
	}
	if rp, err := to.(registry.RepositoryPolicies).GetRepositoryPolicy(ctx, "game-server"); err != nil || !strings.Contains(rp, "Statement") {
		t.Errorf("restored repository policy: %q %v", rp, err)
	}
	if len(res.NotApplied()) != 0 || len(res.Settings) != 3 {
		t.Errorf("settings outcome: %+v", res.Settings)
	}
	// A re-run finds them unchanged.
	res, err = backup.Restore(ctx, s, snap, to, backup.Options{})
	for _, o := range res.Settings {
		if o.Status != "unchanged" {
			t.Errorf("re-run: %+v %v", o, err)
		}
	}

	// Into a plain OCI registry: images come back, and each setting it cannot hold is named.
	plain := open(t, localregtest.Start(t).Host)
	res, err = backup.Restore(ctx, s, snap, plain, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.NotApplied()); n != 3 {
		t.Errorf("into OCI, 3 settings cannot be applied: %+v", res.Settings)
	}
	// --no-settings skips them, saying so.
	res, _ = backup.Restore(ctx, s, snap, plain, backup.Options{NoSettings: true})
	for _, o := range res.Settings {
		if o.Status != "skipped" {
			t.Errorf("--no-settings: %+v", o)
		}
	}
}

func openECR(t *testing.T, name string, srv *ecrtest.Server) registry.Registry {
	t.Helper()
	reg, err := ecr.Open(context.Background(), name, config.Registry{Type: "ecr", CAFile: srv.CAFile, Settings: map[string]any{"region": ecrtest.Region, "account": ecrtest.Account, "endpoint": srv.URL}}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
