package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/sign"
	"github.com/regctl-dev/regctl/internal/ui"
)

// passFunc reads the key password from COSIGN_PASSWORD (set, even empty, wins, as in cosign), else
// asks on the terminal without echo. The password is never printed or logged.
func (f *Factory) passFunc() sign.PassFunc {
	return func(confirm bool) ([]byte, error) {
		if v, ok := f.LookupEnv("COSIGN_PASSWORD"); ok {
			return []byte(v), nil
		}
		in, ok := f.IO.In.(*os.File)
		if !ok || !f.IO.InTTY || !term.IsTerminal(int(in.Fd())) {
			return nil, fmt.Errorf("set COSIGN_PASSWORD (not on a terminal, so regctl cannot ask): %w", exitcode.ErrUsage)
		}
		fmt.Fprint(f.IO.ErrOut, "Enter password for private key: ")
		pw, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(f.IO.ErrOut)
		if err != nil || !confirm {
			return pw, err
		}
		fmt.Fprint(f.IO.ErrOut, "Enter password for private key again: ")
		again, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(f.IO.ErrOut)
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, fmt.Errorf("passwords do not match: %w", exitcode.ErrUsage)
		}
		return pw, nil
	}
}

// keyRef picks --key or sign.key from the config; a key file's relative path is taken from the
// command's working directory.
func (f *Factory) keyRef(flag string) (string, error) {
	ref := flag
	if ref == "" {
		cfg, err := f.Config()
		if err != nil {
			return "", err
		}
		ref = cfg.Sign.Key
	}
	if sign.IsKMS(ref) {
		return ref, nil
	}
	return f.inWorkDir(ref), nil
}

// signInputs parses the -a annotations and picks the key: the preamble sign and verify share.
func (f *Factory) signInputs(key string, annotations []string) (ref string, ann map[string]string, err error) {
	if ann, err = parseKeyValues("-a", annotations); err != nil {
		return "", nil, err
	}
	ref, err = f.keyRef(key)
	return ref, ann, err
}

func newSignCmd(f *Factory) *cobra.Command {
	var key, mode string
	var annotations []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "sign IMAGE... --key KEY",
		Short: "Sign images by digest with a cosign key (offline: no transparency log)",
		Long: `Resolve each image to its digest and sign the digest, never the moving tag. Signatures are stored
where 'cosign verify' finds them: the sha256-<hex>.sig tag (works on every registry), or an OCI 1.1
referrer with --registry-referrers-mode oci-1-1. --recursive also signs every platform manifest of an
index. Signing again with the same key adds no duplicate.

KEY is a cosign.key file (password from COSIGN_PASSWORD, or asked on a terminal) or a KMS key
(awskms:///arn:aws:kms:... or awskms://HOST:PORT/alias/NAME). Without --key, sign.key from the config.`,
		Example: `  COSIGN_PASSWORD=... regctl sign local/game-server:v1.2.0 --key cosign.key
  regctl sign local/game-server:latest --key awskms:///alias/release-signing --recursive -a git_sha=$(git rev-parse HEAD)`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, ann, err := f.signInputs(key, annotations)
			if err != nil {
				return err
			}
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			sv, err := sign.LoadSigner(cmd.Context(), ref, f.passFunc())
			if err != nil {
				return err
			}
			var all []sign.Signed
			for _, arg := range a {
				reg, r, err := res.Reference(arg)
				if err != nil {
					return err
				}
				signed, err := sign.Sign(cmd.Context(), reg.Remote(), r, sv, sign.Options{Annotations: ann, Recursive: recursive, Mode: mode})
				all = append(all, signed...)
				if err != nil {
					return err
				}
				for _, s := range signed {
					f.Logger().Info("signed", "reference", s.Reference, "digest", s.Digest, "unchanged", s.Unchanged)
				}
			}
			return f.Render(all, func() ui.Table {
				t := ui.Table{Headers: []string{"reference", "signed digest", "platform", "stored at", "status"}}
				for _, s := range all {
					status := "signed"
					if s.Unchanged {
						status = "unchanged (already signed by this key)"
					}
					t.Rows = append(t.Rows, []string{s.Reference, s.Digest, s.Platform, s.StoredAt, status})
				}
				return t
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&key, "key", "", "private key file or KMS URI (default: sign.key from the config)")
	fl.StringArrayVarP(&annotations, "annotations", "a", nil, "key=value stored in the signed payload (repeatable)")
	fl.BoolVar(&recursive, "recursive", false, "also sign each platform manifest of an index")
	fl.StringVar(&mode, "registry-referrers-mode", sign.ModeLegacy, "where to store signatures: legacy (.sig tag) or oci-1-1 (referrer)")
	cmd.AddCommand(newGenerateKeyPairCmd(f))
	return cmd
}

func newGenerateKeyPairCmd(f *Factory) *cobra.Command {
	var prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "generate-key-pair",
		Short: "Write cosign.key (0600, encrypted) and cosign.pub in the cosign CLI's formats",
		Long: `Write an ECDSA P-256 key pair: <prefix>.key, encrypted with COSIGN_PASSWORD (or a password asked
on a terminal), readable only by you, and <prefix>.pub. Both work with the cosign CLI.`,
		Example: "  COSIGN_PASSWORD=... regctl sign generate-key-pair\n  regctl sign generate-key-pair --output-key-prefix keys/release",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, err := sign.GenerateKeyPair(f.inWorkDir(prefix), f.passFunc(), force)
			if err != nil {
				return err
			}
			f.Notef("Private key written to %s\nPublic key written to %s", priv, pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "file name prefix of the key pair")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return cmd
}

func newVerifyCmd(f *Factory) *cobra.Command {
	var key, mode string
	var annotations []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "verify IMAGE... --key KEY",
		Short: "Verify image signatures; exit 3 when unsigned, signed by another key, or the tag moved",
		Long: `Check that each image's current digest carries a signature made with KEY (a cosign.pub file or
a KMS URI), over a payload naming that digest, with every -a key=value in it. Prints the verified
payloads (-o json for CI). Exits 3 if any image fails: unsigned, signed by another key, required
annotation missing, or the tag now points at content that was never signed. --recursive also
requires each platform manifest of an index to be signed (as sign --recursive does), so pulling a
platform by its digest cannot bypass the signature.`,
		Example: `  regctl verify local/game-server:v1.2.0 --key cosign.pub
  regctl verify local/game-server:latest --key cosign.pub --recursive
  regctl verify local/game-server:latest --key cosign.pub -a git_sha=abc123 -o json`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ref, ann, err := f.signInputs(key, annotations)
			if err != nil {
				return err
			}
			if ref != "" && !sign.IsKMS(ref) && strings.HasSuffix(ref, ".key") {
				if _, err := os.Stat(strings.TrimSuffix(ref, ".key") + ".pub"); err == nil {
					ref = strings.TrimSuffix(ref, ".key") + ".pub" // sign.key from the config names the private key
				}
			}
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			v, err := sign.LoadVerifier(cmd.Context(), ref)
			if err != nil {
				return err
			}
			verified := []*sign.Verified{}
			var failures []error
			for _, arg := range a {
				reg, r, err := res.Reference(arg)
				if err != nil {
					return err
				}
				out, err := sign.Verify(cmd.Context(), reg.Remote(), r, v, sign.VerifyOptions{Annotations: ann, OCI11: mode == sign.ModeOCI11, Recursive: recursive})
				if err != nil {
					if !errors.Is(err, exitcode.ErrViolation) {
						return err
					}
					failures = append(failures, err)
					f.Notef("FAILED %s", err)
					continue
				}
				verified = append(verified, out)
			}
			if err := f.Render(verified, func() ui.Table {
				t := ui.Table{Headers: []string{"reference", "digest", "signatures", "verified"}}
				for _, v := range verified {
					t.Rows = append(t.Rows, []string{v.Reference, v.Digest, fmt.Sprint(v.Signatures), "yes"})
				}
				return t
			}); err != nil {
				return err
			}
			if f.Format() == ui.FormatTable {
				// The verified payloads themselves, one JSON document a line, as cosign prints them.
				for _, v := range verified {
					for _, p := range v.Payloads {
						fmt.Fprintf(f.IO.Out, "%s\n", p)
					}
				}
			}
			if len(failures) > 0 {
				return fmt.Errorf("%d of %d images failed verification: %w", len(failures), len(a), exitcode.ErrViolation)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&key, "key", "", "public key file or KMS URI (default: sign.key from the config, its .pub)")
	fl.StringArrayVarP(&annotations, "annotations", "a", nil, "key=value the signed payload must carry (repeatable)")
	fl.StringVar(&mode, "registry-referrers-mode", sign.ModeLegacy, "also look for OCI 1.1 referrer signatures with oci-1-1")
	fl.BoolVar(&recursive, "recursive", false, "also verify each platform manifest of an index")
	cmd.AddCommand(newVerifyServeCmd(f))
	return cmd
}
