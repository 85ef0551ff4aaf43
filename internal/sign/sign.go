package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// Storage modes.
const (
	ModeLegacy = "legacy"  // the sha256-<hex>.sig tag: cosign v2's default, works on every registry
	ModeOCI11  = "oci-1-1" // an OCI 1.1 referrer (or the sha256-<hex> fallback index)
)

// Options controls signing.
type Options struct {
	Annotations map[string]string // stored in the payload's "optional" section, where `cosign verify -a` looks
	Recursive   bool              // also sign each platform manifest of an index
	Mode        string            // ModeLegacy (default) or ModeOCI11
}

// Signed reports one signed digest.
type Signed struct {
	Reference string `json:"reference"` // what the user named
	Digest    string `json:"digest"`    // what was signed
	Platform  string `json:"platform,omitempty"`
	StoredAt  string `json:"storedAt"` // signature tag, or "referrer"
	Unchanged bool   `json:"unchanged"`
}

// Sign resolves ref to its digest and signs the digest (never the tag), and with Recursive each
// platform manifest of an index too. Signing again with the same key adds no duplicate.
func Sign(ctx context.Context, remoteOpts []remote.Option, ref name.Reference, sv signature.SignerVerifier, o Options) ([]Signed, error) {
	if o.Mode == "" {
		o.Mode = ModeLegacy
	}
	if o.Mode != ModeLegacy && o.Mode != ModeOCI11 {
		return nil, fmt.Errorf("--registry-referrers-mode %q: must be legacy or oci-1-1: %w", o.Mode, exitcode.ErrUsage)
	}
	remoteOpts = append(remoteOpts, remote.WithContext(ctx))
	opts := []ociremote.Option{ociremote.WithRemoteOptions(remoteOpts...)}
	desc, err := remote.Get(ref, remoteOpts...)
	if err != nil {
		return nil, classify(ref, err)
	}
	root := ref.Context().Digest(desc.Digest.String())
	targets := []struct {
		d        name.Digest
		platform string
	}{{root, ""}}
	if o.Recursive && desc.MediaType.IsIndex() {
		platforms, err := registry.IndexPlatforms(desc)
		if err != nil {
			return nil, err
		}
		for _, m := range platforms {
			targets = append(targets, struct {
				d        name.Digest
				platform string
			}{ref.Context().Digest(m.Digest.String()), m.Platform.String()})
		}
	}
	annotations := make(map[string]any, len(o.Annotations))
	for k, v := range o.Annotations {
		annotations[k] = v
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	var out []Signed
	for _, t := range targets {
		s, err := signDigest(ctx, t.d, sv, annotations, o.Mode, opts)
		if err != nil {
			return out, err
		}
		s.Reference, s.Platform = ref.String(), t.platform
		out = append(out, s)
	}
	return out, nil
}

func signDigest(ctx context.Context, d name.Digest, sv signature.SignerVerifier, annotations map[string]any, mode string, opts []ociremote.Option) (Signed, error) {
	res := Signed{Digest: d.DigestStr()}
	pl, err := (&payload.Cosign{Image: d, Annotations: annotations}).MarshalJSON()
	if err != nil {
		return res, err
	}
	raw, err := sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		return res, fmt.Errorf("signing %s: %w", d.DigestStr(), err)
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return res, err
	}
	if mode == ModeOCI11 {
		res.StoredAt = "referrer"
		se := ociremote.SignedUnknown(d, opts...)
		se, err = mutate.AttachSignatureToEntity(se, sig)
		if err != nil {
			return res, err
		}
		if dup, err := alreadySignedOCI11(ctx, d, sv, annotations, opts); err == nil && dup {
			res.Unchanged = true
			return res, nil
		}
		return res, ociremote.WriteSignaturesExperimentalOCI(d, se, opts...)
	}
	tag, err := ociremote.SignatureTag(d, opts...)
	if err != nil {
		return res, err
	}
	res.StoredAt = tag.String()
	se, err := ociremote.SignedEntity(d, opts...)
	var enf *ociremote.EntityNotFoundError
	if errors.As(err, &enf) {
		se = ociremote.SignedUnknown(d, opts...)
	} else if err != nil {
		return res, err
	}
	before, err := countSignatures(se)
	if err != nil {
		return res, err
	}
	se, err = mutate.AttachSignatureToEntity(se, sig, mutate.WithDupeDetector(cremote.NewDupeDetector(sv)))
	if err != nil {
		return res, err
	}
	after, err := countSignatures(se)
	if err != nil {
		return res, err
	}
	if after == before {
		res.Unchanged = true // the dupe detector found this key's signature over this payload
		return res, nil
	}
	return res, ociremote.WriteSignatures(d.Repository, se, opts...)
}

func countSignatures(se oci.SignedEntity) (int, error) {
	sigs, err := se.Signatures()
	if err != nil {
		return 0, err
	}
	list, err := sigs.Get()
	return len(list), err
}

// alreadySignedOCI11 checks whether a referrer signature by this key already verifies for d.
func alreadySignedOCI11(ctx context.Context, d name.Digest, sv signature.SignerVerifier, annotations map[string]any, opts []ociremote.Option) (bool, error) {
	_, _, err := cosign.VerifyImageSignatures(ctx, d, &cosign.CheckOpts{RegistryClientOpts: opts, SigVerifier: sv, Annotations: annotations,
		IgnoreTlog: true, IgnoreSCT: true, ClaimVerifier: cosign.SimpleClaimVerifier, ExperimentalOCI11: true})
	return err == nil, nil
}

// VerifyOptions controls verification.
type VerifyOptions struct {
	Annotations map[string]string // each must be present with this value in the signed payload
	OCI11       bool              // also look for OCI 1.1 referrer signatures
	// Recursive also verifies each platform manifest of an index (what sign --recursive signs):
	// pulling by platform digest must not bypass the signature.
	Recursive bool
}

// Verified is one image whose signature checked out.
type Verified struct {
	Reference  string            `json:"reference"`
	Digest     string            `json:"digest"`
	Signatures int               `json:"signatures"`
	Payloads   []json.RawMessage `json:"payloads"` // the verified simple-signing payloads, as cosign prints them
	// Platforms are the verified platform manifests of an index, with --recursive.
	Platforms []VerifiedPlatform `json:"platforms,omitempty"`
}

// VerifiedPlatform is one platform manifest whose signature checked out.
type VerifiedPlatform struct {
	Platform   string `json:"platform"`
	Digest     string `json:"digest"`
	Signatures int    `json:"signatures"`
}

// Verify checks that ref's current digest carries a signature by v whose payload names that digest
// and carries the required annotations (and, with Recursive, that every platform manifest of an
// index does too). A missing, foreign or stale signature is exitcode.ErrViolation.
func Verify(ctx context.Context, remoteOpts []remote.Option, ref name.Reference, v signature.Verifier, o VerifyOptions) (*Verified, error) {
	remoteOpts = append(remoteOpts, remote.WithContext(ctx))
	opts := []ociremote.Option{ociremote.WithRemoteOptions(remoteOpts...)}
	desc, err := remote.Get(ref, remoteOpts...)
	if err != nil {
		return nil, classify(ref, err)
	}
	var ann map[string]any
	if len(o.Annotations) > 0 {
		ann = make(map[string]any, len(o.Annotations))
		for k, val := range o.Annotations {
			ann[k] = val
		}
	}
	check := &cosign.CheckOpts{
		RegistryClientOpts: opts, SigVerifier: v, IgnoreTlog: true, IgnoreSCT: true,
		ClaimVerifier: cosign.SimpleClaimVerifier, Annotations: ann, ExperimentalOCI11: o.OCI11,
	}
	payloads, err := verifyDigest(ctx, ref.Context().Digest(desc.Digest.String()), check)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", ref, desc.Digest, err)
	}
	res := &Verified{Reference: ref.String(), Digest: desc.Digest.String(), Signatures: len(payloads), Payloads: payloads}
	if o.Recursive && desc.MediaType.IsIndex() {
		platforms, err := registry.IndexPlatforms(desc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		var failed []string
		for _, m := range platforms {
			p, err := verifyDigest(ctx, ref.Context().Digest(m.Digest.String()), check)
			if err != nil {
				if !errors.Is(err, exitcode.ErrViolation) {
					return nil, fmt.Errorf("%s [%s] (%s): %w", ref, m.Platform, m.Digest, err)
				}
				failed = append(failed, fmt.Sprintf("[%s] %s: %v", m.Platform, m.Digest, err))
				continue
			}
			res.Platforms = append(res.Platforms, VerifiedPlatform{Platform: m.Platform.String(), Digest: m.Digest.String(), Signatures: len(p)})
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("%s (%s): the index is signed, but %d of %d platform manifests are not: %s (sign them with regctl sign --recursive): %w",
				ref, desc.Digest, len(failed), len(platforms), strings.Join(failed, "; "), exitcode.ErrViolation)
		}
	}
	return res, nil
}

// verifyDigest returns the verified payloads of one digest's signatures, sorted.
func verifyDigest(ctx context.Context, d name.Digest, check *cosign.CheckOpts) ([]json.RawMessage, error) {
	sigs, _, err := cosign.VerifyImageSignatures(ctx, d, check)
	if err != nil {
		var noMatch *cosign.ErrNoMatchingSignatures
		var noSigs *cosign.ErrNoSignaturesFound
		var failure *cosign.VerificationFailure
		if errors.As(err, &noMatch) || errors.As(err, &noSigs) || errors.As(err, &failure) {
			return nil, fmt.Errorf("%v: %w", err, exitcode.ErrViolation)
		}
		return nil, fmt.Errorf("verifying: %w", err)
	}
	var out []json.RawMessage
	for _, s := range sigs {
		p, err := s.Payload()
		if err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(p))
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i]) < string(out[j]) })
	return out, nil
}

// classify maps "the image is not there" to exit 5; everything else keeps its code.
func classify(ref name.Reference, err error) error {
	if registry.IsNotFound(err) {
		return fmt.Errorf("%s: image not found in the registry: %w", ref, exitcode.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", ref, err)
}
