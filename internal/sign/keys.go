// Package sign signs and verifies images with cosign as a library, offline: key files in cosign's own
// formats or a KMS key, signatures stored where `cosign verify` finds them, no Rekor, Fulcio or TUF.
package sign

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"

	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws" // awskms://

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/fsutil"
)

// PassFunc returns the private key's password; confirm is set when creating a key (ask twice).
type PassFunc = cosign.PassFunc

// KMSSchemes are the KMS URI schemes this build supports. Other schemes are refused rather than handed
// to sigstore's plugin mechanism, which would execute a sigstore-kms-<scheme> program from $PATH.
var KMSSchemes = []string{"awskms://"}

// IsKMS reports whether ref names a KMS key rather than a file.
func IsKMS(ref string) bool { return strings.Contains(ref, "://") }

func checkKMS(ref string) error {
	for _, s := range KMSSchemes {
		if strings.HasPrefix(ref, s) {
			return nil
		}
	}
	scheme, _, _ := strings.Cut(ref, "://")
	return fmt.Errorf("--key %s: KMS scheme %q is not supported (supported: %s): %w", ref, scheme+"://", strings.Join(KMSSchemes, ", "), exitcode.ErrUsage)
}

// openKMS opens a KMS key of a supported scheme; it signs and verifies without the private key
// leaving the service.
func openKMS(ctx context.Context, keyRef string) (kms.SignerVerifier, error) {
	if err := checkKMS(keyRef); err != nil {
		return nil, err
	}
	sv, err := kms.Get(ctx, keyRef, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("opening KMS key %s: %w", keyRef, err)
	}
	return sv, nil
}

// GenerateKeyPair writes <prefix>.key (0600, encrypted with the password pf returns) and
// <prefix>.pub in cosign's formats. Existing files are kept unless force.
func GenerateKeyPair(prefix string, pf PassFunc, force bool) (privPath, pubPath string, err error) {
	privPath, pubPath = prefix+".key", prefix+".pub"
	if !force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return "", "", fmt.Errorf("%s already exists; use --force to overwrite it: %w", p, exitcode.ErrUsage)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", err
			}
		}
	}
	kb, err := cosign.GenerateKeyPair(pf)
	if err != nil {
		return "", "", fmt.Errorf("generating key pair: %w", err)
	}
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", err
		}
	}
	if err := fsutil.WriteFileAtomic(privPath, kb.PrivateBytes, 0o600); err != nil {
		return "", "", err
	}
	if err := fsutil.WriteFileAtomic(pubPath, kb.PublicBytes, 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

// LoadSigner loads a private key file (decrypted with pf) or opens a KMS key.
func LoadSigner(ctx context.Context, keyRef string, pf PassFunc) (signature.SignerVerifier, error) {
	if keyRef == "" {
		return nil, fmt.Errorf("--key is required (a cosign.key file or awskms://...): %w", exitcode.ErrUsage)
	}
	if IsKMS(keyRef) {
		return openKMS(ctx, keyRef)
	}
	pem, err := os.ReadFile(keyRef)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--key: %w", err))
	}
	pass, err := pf(false)
	if err != nil {
		return nil, fmt.Errorf("reading the key password: %w", err)
	}
	sv, err := cosign.LoadPrivateKey(pem, pass, nil)
	if err != nil {
		// Never include the password; cosign's message says whether decryption or parsing failed.
		return nil, fmt.Errorf("--key %s: cannot load the private key (wrong password, or not a cosign key): %w", keyRef, exitcode.ErrUsage)
	}
	return sv, nil
}

// LoadVerifier loads a public key file (PEM) or a KMS key's public half. A cosign.key given by mistake
// is refused with a hint rather than prompting for its password.
func LoadVerifier(ctx context.Context, keyRef string) (signature.Verifier, error) {
	if keyRef == "" {
		return nil, fmt.Errorf("--key is required (a cosign.pub file or awskms://...): %w", exitcode.ErrUsage)
	}
	if IsKMS(keyRef) {
		return openKMS(ctx, keyRef)
	}
	raw, err := os.ReadFile(keyRef)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--key: %w", err))
	}
	if strings.Contains(string(raw), "PRIVATE KEY") {
		return nil, fmt.Errorf("--key %s is a private key; verify with the public key (cosign.pub): %w", keyRef, exitcode.ErrUsage)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("--key %s: not a PEM public key: %w", keyRef, exitcode.ErrUsage)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--key %s: %w", keyRef, err))
	}
	return v, nil
}
