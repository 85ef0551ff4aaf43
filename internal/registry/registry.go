// Package registry is the abstraction every regctl command talks to: a Registry opened by name from
// the config (or ad hoc from a host), the Image model, and the generic OCI backend over
// go-containerregistry. Backends with native features (ECR lifecycle policies, Harbor scans) expose
// them as small side interfaces found by type assertion.
package registry

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is one registry opened from the config.
type Registry interface {
	// Name is the config key ("local", "prod"), or the host for an ad hoc registry.
	Name() string
	// Host is the registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com or 127.0.0.1:5000.
	Host() string
	// Type is the backend: oci, ecr or harbor.
	Type() string
	// Remote returns go-containerregistry options for the data plane: auth, transport with retries, user
	// agent. Callers add remote.WithContext.
	Remote() []remote.Option
	// Insecure reports whether plain HTTP is allowed.
	Insecure() bool
	// Keychain resolves the registry's credentials, for tools regctl drives (buildah, buildx).
	Keychain() authn.Keychain

	Repositories(ctx context.Context, prefix string) ([]string, error)
	Tags(ctx context.Context, repo string) ([]string, error)
	EnsureRepository(ctx context.Context, repo string, spec RepositorySpec) (EnsureResult, error)
	// Images returns one entry per manifest digest the repository's tags reach (and, where the backend
	// can list them, untagged manifests too), with tags, kinds, times and links.
	Images(ctx context.Context, repo string) ([]Image, error)
	DeleteImage(ctx context.Context, repo string, digest v1.Hash) error
}

// RepositorySpec is what `repo create` asks for. Backends that cannot honour a setting say so.
type RepositorySpec struct {
	ScanOnPush    bool              `json:"scan_on_push,omitempty"`
	Encryption    string            `json:"encryption,omitempty"` // AES256 | KMS
	KMSKey        string            `json:"kms_key,omitempty"`
	TagMutability string            `json:"tag_mutability,omitempty"` // MUTABLE | IMMUTABLE
	Tags          map[string]string `json:"tags,omitempty"`
}

// EnsureStatus is the outcome of EnsureRepository.
type EnsureStatus string

const (
	StatusCreated   EnsureStatus = "created"
	StatusUnchanged EnsureStatus = "unchanged"     // existed with the same settings
	StatusUpdated   EnsureStatus = "updated"       // existed; the settings that can change were changed
	StatusExists    EnsureStatus = "exists"        // exists; the backend has no settings to compare
	StatusOnPush    EnsureStatus = "on-first-push" // plain OCI registries create repositories on first push
)

// EnsureResult reports what EnsureRepository did.
type EnsureResult struct {
	Repository string       `json:"repository"`
	Status     EnsureStatus `json:"status"`
	Message    string       `json:"message,omitempty"`
}

// Kind classifies a manifest.
type Kind string

const (
	KindImage       Kind = "image"       // a single-platform image (tagged, or a platform of an index)
	KindIndex       Kind = "index"       // a multi-platform index / manifest list
	KindSignature   Kind = "signature"   // cosign signature (.sig tag or referrer)
	KindAttestation Kind = "attestation" // in-toto attestation (.att tag, referrer, buildx attestation)
	KindSBOM        Kind = "sbom"        // SBOM (.sbom tag or referrer)
	KindReferrers   Kind = "referrers"   // a sha256-<hex> referrers fallback index
	KindArtifact    Kind = "artifact"    // another OCI artifact attached to a subject
)

// Attached reports whether the kind belongs to a subject image rather than being an image itself.
func (k Kind) Attached() bool {
	switch k {
	case KindSignature, KindAttestation, KindSBOM, KindReferrers, KindArtifact:
		return true
	}
	return false
}

// TimeSource says where PushedAt came from. Plain OCI registries record no push time, so it is
// derived from the image; the output always says which.
type TimeSource string

const (
	SourceUnknown     TimeSource = ""
	SourceECR         TimeSource = "ecr:imagePushedAt"
	SourceHarbor      TimeSource = "harbor:push_time"
	SourceConfig      TimeSource = "config.created"
	SourceAnnotation  TimeSource = "annotation:org.opencontainers.image.created"
	SourceNewestChild TimeSource = "newest-platform"
	AnnotationCreated            = "org.opencontainers.image.created"
)

// Image is one manifest in a repository.
type Image struct {
	Repository   string          `json:"repository"`
	Digest       v1.Hash         `json:"digest"`
	MediaType    types.MediaType `json:"mediaType"`
	ArtifactType string          `json:"artifactType,omitempty"`
	Kind         Kind            `json:"kind"`
	Tags         []string        `json:"tags"`
	// Size is the manifest plus its config and layers; for an index, plus its children's sizes.
	Size     int64        `json:"size"`
	Platform *v1.Platform `json:"platform,omitempty"`
	// Children are the manifests an index lists; Parents the indexes (found) that list this one.
	Children []v1.Hash `json:"children,omitempty"`
	Parents  []v1.Hash `json:"parents,omitempty"`
	// Subject is the image a signature, attestation, SBOM or other referrer belongs to.
	Subject *v1.Hash `json:"subject,omitempty"`

	PushedAt       time.Time  `json:"pushedAt,omitzero"`
	PushedAtSource TimeSource `json:"pushedAtSource,omitempty"`
	LastPulledAt   time.Time  `json:"lastPulledAt,omitzero"`
	// ConfigCreated and AnnotationCreated are the two image-recorded times, kept so callers (lifecycle
	// --age-source) can choose between them.
	ConfigCreated     time.Time `json:"configCreated,omitzero"`
	AnnotationCreated time.Time `json:"annotationCreated,omitzero"`
	// Missing is set for a manifest an index or tag names that the registry could not return.
	Missing bool `json:"missing,omitempty"`
}

// MarshalJSON keeps tags as [] rather than null for untagged images: a stable schema for jq.
func (i Image) MarshalJSON() ([]byte, error) {
	type plain Image
	if i.Tags == nil {
		i.Tags = []string{}
	}
	return json.Marshal(plain(i))
}

// LifecyclePolicies is implemented by backends that store and apply lifecycle policies natively (ECR).
type LifecyclePolicies interface {
	GetLifecyclePolicy(ctx context.Context, repo string) (policy string, err error)
	PutLifecyclePolicy(ctx context.Context, repo, policy string) error
}

// Finding is one vulnerability a registry's own scanner reported.
type Finding struct {
	VulnerabilityID  string  `json:"vulnerabilityID"`
	PkgName          string  `json:"pkgName"`
	InstalledVersion string  `json:"installedVersion"`
	FixedVersion     string  `json:"fixedVersion,omitempty"`
	Severity         string  `json:"severity"` // CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN
	CVSS             float64 `json:"cvss,omitempty"`
	Title            string  `json:"title,omitempty"`
	URL              string  `json:"url,omitempty"`
}

// NativeScanner is implemented by backends with their own vulnerability scanner (ECR scan
// findings): NativeScan starts a scan of the image if needed, waits for it, and returns findings.
type NativeScanner interface {
	NativeScan(ctx context.Context, repo string, digest v1.Hash) ([]Finding, error)
}

// RepositoryPolicies is implemented by backends with repository access policies (ECR).
type RepositoryPolicies interface {
	GetRepositoryPolicy(ctx context.Context, repo string) (policy string, err error)
	SetRepositoryPolicy(ctx context.Context, repo, policy string) error
}

// TagDeleter is implemented by backends that can remove one tag and leave the manifest and its
// other tags alone (OCI distribution's DELETE of a tag, ECR's BatchDeleteImage by tag, Harbor's tag
// API), so replicate --delete never takes more than the tag it planned.
type TagDeleter interface {
	DeleteTag(ctx context.Context, repo, tag string) error
}

// RepositoryInspector is implemented by backends that can report a repository's settings (ECR), so
// backups record them and restores recreate them.
type RepositoryInspector interface {
	RepositorySettings(ctx context.Context, repo string) (RepositorySpec, error)
}

// SettingsKeeper is implemented by backends whose repositories have settings beyond
// RepositorySpec and the policy interfaces (Harbor: its project's metadata and CVE allowlist, the
// project's robot accounts), so backups keep them and restores put them back. Settings are named
// JSON documents that never hold a secret.
type SettingsKeeper interface {
	// Settings returns the repository's settings by name; names are the backend's, e.g. harbor.project.
	Settings(ctx context.Context, repo string) (map[string]string, error)
	// PutSetting applies one document Settings returned (on this or another registry of the same
	// type): status applied, unchanged, would-apply (dryRun) or not-applied, and why.
	PutSetting(ctx context.Context, repo, name, doc string, dryRun bool) (status, reason string, err error)
}

// Traits are what a backend's answers can be trusted to contain; commands read them instead of
// asking which kind of backend they talk to.
type Traits struct {
	// ListsUntagged: Images includes manifests no tag reaches (ECR, Harbor). Plain OCI registries
	// cannot list those.
	ListsUntagged bool `json:"listsUntagged"`
	// PushTimes: the registry records when each manifest was pushed (ECR imagePushedAt, Harbor
	// push_time); otherwise ages come from the image itself.
	PushTimes bool `json:"pushTimes"`
	// OCICacheManifests: buildx registry caches must be stored as OCI image manifests
	// (image-manifest=true,oci-mediatypes=true), as ECR requires.
	OCICacheManifests bool `json:"ociCacheManifests"`
}

// TraitReporter is implemented by backends whose traits differ from a plain OCI registry's.
type TraitReporter interface {
	Traits() Traits
}

// TraitsOf returns a registry's traits: a plain OCI registry's (all false) unless it reports others.
func TraitsOf(r Registry) Traits {
	if t, ok := r.(TraitReporter); ok {
		return t.Traits()
	}
	return Traits{}
}

// PreviewItem is one image a registry's own lifecycle preview acts on.
type PreviewItem struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	Action string   `json:"action"` // EXPIRE (or TRANSITION on ECR)
	Rule   int      `json:"rule"`
}

// LifecyclePreviewer is implemented by backends that can say what a lifecycle policy would do
// before it is stored (ECR's lifecycle policy preview; a Harbor retention dry run).
type LifecyclePreviewer interface {
	PreviewLifecyclePolicy(ctx context.Context, repo, policy string) ([]PreviewItem, error)
}

// ShortDigest is the form tables and messages use: the algorithm and 12 hex digits.
func ShortDigest(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}

// ReplicationConfigurer is implemented by backends that replicate natively, configured by a
// document in the backend's own format (ECR: the JSON of put-replication-configuration).
type ReplicationConfigurer interface {
	// PutReplicationConfig validates doc (errors name the field, exit 2) and stores it, unless the
	// stored configuration is the same (Unchanged, nothing written).
	PutReplicationConfig(ctx context.Context, doc []byte) (ReplicationStatus, error)
	// ReplicationConfig returns the stored configuration.
	ReplicationConfig(ctx context.Context) (*ReplicationConfig, error)
}

// ReplicationStatus is what PutReplicationConfig did.
type ReplicationStatus struct {
	Unchanged bool `json:"unchanged"`
	Rules     int  `json:"rules"`
}

// ReplicationConfig is a stored replication configuration: the backend's document (what -o json
// prints) and one summary row per rule.
type ReplicationConfig struct {
	Document any
	Rules    []ReplicationRuleSummary
}

// ReplicationRuleSummary is one replication rule in a table.
type ReplicationRuleSummary struct {
	Name         string   `json:"name"`
	Destinations []string `json:"destinations"`
	Filters      []string `json:"filters"`
}
