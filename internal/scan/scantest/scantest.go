// Package scantest builds what scan tests need without any download: a tiny trivy vulnerability DB
// (with trivy-db's own writer API), its OCI artifact, and synthetic images with known-vulnerable
// Alpine and npm packages.
package scantest

//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"

	"github.com/regctl-dev/regctl/internal/sample"
)

// Advisory is one vulnerability the fixture DB knows.
type Advisory struct {
	Bucket   []string // e.g. {"alpine 3.20", "openssl"} or {"npm::GitHub Security Advisory npm", "lodash"}
	ID       string
	Fixed    string   // OS advisories: fixed version ("" = no fix)
	Affected []string // language advisories: vulnerable ranges
	Patched  []string
	Severity dbtypes.Severity
	Score    float64
	Title    string
}

// Advisories is the fixture DB's content. The expected findings of VulnerableImage follow from it:
//
//	CVE-2024-5535  libcrypto3, libssl3 (origin openssl) 3.3.0-r2 -> 3.3.1-r1  CRITICAL 9.1
//	CVE-2024-6119  libcrypto3, libssl3                  3.3.0-r2 -> 3.3.2-r0  HIGH 7.5
//	CVE-2025-26519 musl 1.2.5-r0 -> 1.2.5-r1                                  HIGH 8.1
//	CVE-2021-23337 lodash 4.17.20 -> 4.17.21 (npm)                            HIGH 7.2
//	CVE-2099-0001  minimist 1.2.5, no fix (npm)                               MEDIUM 5.3
//	CVE-2023-42363 busybox fixed in 1.36.1-r16, installed 1.36.1-r29: not reported
//	CVE-2099-0002  zlib LOW 3.1, fixed 1.3.1-r1 (reported only with --severity LOW)
var Advisories = []Advisory{
	{Bucket: []string{"alpine 3.20", "openssl"}, ID: "CVE-2024-5535", Fixed: "3.3.1-r1", Severity: dbtypes.SeverityCritical, Score: 9.1, Title: "openssl: SSL_select_next_proto buffer overread"},
	{Bucket: []string{"alpine 3.20", "openssl"}, ID: "CVE-2024-6119", Fixed: "3.3.2-r0", Severity: dbtypes.SeverityHigh, Score: 7.5, Title: "openssl: Possible denial of service in X.509 name checks"},
	{Bucket: []string{"alpine 3.20", "musl"}, ID: "CVE-2025-26519", Fixed: "1.2.5-r1", Severity: dbtypes.SeverityHigh, Score: 8.1, Title: "musl: iconv out-of-bounds write"},
	{Bucket: []string{"alpine 3.20", "busybox"}, ID: "CVE-2023-42363", Fixed: "1.36.1-r16", Severity: dbtypes.SeverityMedium, Score: 5.5, Title: "busybox: use-after-free in awk"},
	{Bucket: []string{"alpine 3.20", "zlib"}, ID: "CVE-2099-0002", Fixed: "1.3.1-r1", Severity: dbtypes.SeverityLow, Score: 3.1, Title: "zlib: fixture low-severity issue"},
	{Bucket: []string{"npm::GitHub Security Advisory npm", "lodash"}, ID: "CVE-2021-23337", Affected: []string{"<4.17.21"}, Patched: []string{"4.17.21"}, Severity: dbtypes.SeverityHigh, Score: 7.2, Title: "lodash: command injection via template"},
	{Bucket: []string{"npm::GitHub Security Advisory npm", "minimist"}, ID: "CVE-2099-0001", Affected: []string{">=0"}, Severity: dbtypes.SeverityMedium, Score: 5.3, Title: "minimist: fixture issue without a fix"},
}

// BuildDB writes the fixture DB into cacheDir/db (trivy's layout) with the given update times.
func BuildDB(t testing.TB, cacheDir string, updatedAt, nextUpdate time.Time) string {
	t.Helper()
	dir := filepath.Join(cacheDir, "db")
	if err := trivydb.Init(dir); err != nil {
		t.Fatal(err)
	}
	err := trivydb.Config{}.BatchUpdate(func(tx *bolt.Tx) error {
		sources := map[string]dbtypes.DataSource{
			"alpine 3.20":                       {ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"},
			"npm::GitHub Security Advisory npm": {ID: "ghsa", Name: "GitHub Security Advisory npm", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"},
		}
		for bkt, src := range sources {
			if err := (trivydb.Config{}).PutDataSource(tx, bkt, src); err != nil {
				return err
			}
		}
		for _, a := range Advisories {
			var adv any = dbtypes.Advisory{FixedVersion: a.Fixed}
			if a.Affected != nil {
				adv = dbtypes.Advisory{VulnerableVersions: a.Affected, PatchedVersions: a.Patched}
			}
			if err := (trivydb.Config{}).PutAdvisory(tx, a.Bucket, a.ID, adv); err != nil {
				return err
			}
			vuln := dbtypes.Vulnerability{Title: a.Title, Severity: a.Severity.String(),
				VendorSeverity: dbtypes.VendorSeverity{"nvd": a.Severity},
				CVSS:           dbtypes.VendorCVSS{"nvd": {V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", V3Score: a.Score}}}
			if err := (trivydb.Config{}).PutVulnerability(tx, a.ID, vuln); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := trivydb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := metadata.NewClient(dir).Update(metadata.Metadata{Version: 2, UpdatedAt: updatedAt, NextUpdate: nextUpdate, DownloadedAt: updatedAt}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// DBArtifact packs a DB directory as trivy's OCI artifact (one db.tar.gz layer).
func DBArtifact(t testing.TB, dbDir string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		b, err := os.ReadFile(filepath.Join(dbDir, f))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	layer := static.NewLayer(buf.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.aquasec.trivy.config.v1+json"),
		mutate.Addendum{Layer: layer, Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const apkInstalled = `P:musl
V:1.2.5-r0
A:x86_64
o:musl

P:busybox
V:1.36.1-r29
A:x86_64
o:busybox

P:libcrypto3
V:3.3.0-r2
A:x86_64
o:openssl

P:libssl3
V:3.3.0-r2
A:x86_64
o:openssl

P:zlib
V:1.3.1-r0
A:x86_64
o:zlib

`

// ImageConfig is what VulnerableImage's config says, for image-policy tests.
type ImageConfig struct {
	User         string
	Labels       map[string]string
	ExposedPorts []string // "8080/tcp"
	Created      time.Time
}

// VulnerableImage is an Alpine 3.20 image with the packages Advisories match, and lodash 4.17.20
// and minimist 1.2.5 under node_modules.
func VulnerableImage(t testing.TB, c ImageConfig) v1.Image {
	t.Helper()
	files := map[string][]byte{
		"etc/alpine-release":                             []byte("3.20.0\n"),
		"etc/os-release":                                 []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\n"),
		"lib/apk/db/installed":                           []byte(apkInstalled),
		"usr/src/app/node_modules/lodash/package.json":   []byte(`{"name":"lodash","version":"4.17.20","license":"MIT"}`),
		"usr/src/app/node_modules/minimist/package.json": []byte(`{"name":"minimist","version":"1.2.5","license":"MIT"}`),
	}
	return imageWith(t, files, c)
}

// CleanImage is an Alpine image whose packages no advisory matches.
func CleanImage(t testing.TB, c ImageConfig) v1.Image {
	t.Helper()
	files := map[string][]byte{
		"etc/alpine-release":   []byte("3.20.0\n"),
		"lib/apk/db/installed": []byte("P:musl\nV:1.2.5-r1\nA:x86_64\no:musl\n\n"),
	}
	return imageWith(t, files, c)
}

func imageWith(t testing.TB, files map[string][]byte, c ImageConfig) v1.Image {
	layer, err := sample.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: c.Created}
	cf.Config.User = c.User
	cf.Config.Labels = c.Labels
	if len(c.ExposedPorts) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img to ref.
func Push(t testing.TB, ref string, img v1.Image, opts ...remote.Option) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	return r
}
