package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newRepoCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "repo",
		Short: "List, inspect and create repositories",
	})
	cmd.AddCommand(newRepoListCmd(f), newRepoImagesCmd(f), newRepoCreateCmd(f), newRepoPolicyCmd(f))
	return cmd
}

type repoEntry struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
}

func newRepoListCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "list [REGISTRY[/PREFIX]]",
		Short: "List repositories (all catalog pages), optionally those under a prefix",
		Long: `List repositories of a registry: a name from the config, a host (ad hoc; add --insecure for plain
HTTP on hosts other than localhost), or the default registry. A path after the registry is a prefix.`,
		Example: `  regctl repo list                         # the default registry
  regctl repo list 127.0.0.1:5000
  regctl repo list local/game-server/      # repositories starting with game-server/
  regctl repo list prod -o json | jq -r '.[].repository'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			var reg registry.Registry
			prefix := ""
			if len(a) == 0 {
				reg, err = res.Default()
			} else {
				first, rest, _ := strings.Cut(a[0], "/")
				reg, err = res.Registry(first)
				prefix = rest
			}
			if err != nil {
				return err
			}
			repos, err := reg.Repositories(cmd.Context(), prefix)
			if err != nil {
				return err
			}
			out := make([]repoEntry, len(repos))
			for i, r := range repos {
				out[i] = repoEntry{Registry: reg.Name(), Repository: r}
			}
			if len(out) == 0 && f.Format() == ui.FormatTable {
				if prefix == "" {
					f.Notef("no repositories on %s", reg.Host())
				} else {
					f.Notef("no repositories on %s start with %q", reg.Host(), prefix)
				}
			}
			return f.Render(out, func() ui.Table {
				t := ui.Table{Headers: []string{"repository"}}
				for _, r := range repos {
					t.Rows = append(t.Rows, []string{r})
				}
				return t
			})
		},
	}
}

func newRepoImagesCmd(f *Factory) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "images REPO",
		Short: "List a repository's images: digest, tags, size, push time and its source, kind",
		Long: `List one entry per manifest digest: its tags, kind (image, index, signature, attestation, sbom,
referrers, artifact), size, and push time with where that time came from. Plain OCI registries record
no push time, so it is the image config's "created" (or the org.opencontainers.image.created
annotation; for an index, its newest platform). Platform manifests of an index and signatures are
shown under the image they belong to; --all lists them as rows of their own in the table.

Plain OCI registries cannot list manifests that no tag reaches; those are not shown.`,
		Example: `  regctl repo images 127.0.0.1:5000/game-server
  regctl repo images local/game-server -o json | jq '.[] | select(.kind=="index") | .children'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			reg, repo, err := f.repository(a[0])
			if err != nil {
				return err
			}
			images, err := reg.Images(cmd.Context(), repo)
			if err != nil {
				return err
			}
			if len(images) == 0 {
				return exitcode.With(exitcode.NotFound, fmt.Errorf("%s/%s has no tagged images", reg.Host(), repo))
			}
			return f.Render(images, func() ui.Table { return imagesTable(images, all) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "table: also show platform manifests and attached artifacts as rows")
	return cmd
}

func imagesTable(images []registry.Image, all bool) ui.Table {
	t := ui.Table{Headers: []string{"digest", "tags", "kind", "size", "pushed at", "time source"}}
	attached := map[string][]string{} // subject digest -> "signature", ...
	for _, img := range images {
		if img.Subject != nil {
			attached[img.Subject.String()] = append(attached[img.Subject.String()], string(img.Kind))
		}
	}
	for _, img := range images {
		isChild := len(img.Parents) > 0 && len(img.Tags) == 0
		if !all && (img.Kind.Attached() || isChild) {
			continue
		}
		kind := string(img.Kind)
		switch {
		case img.Kind == registry.KindIndex:
			kind = fmt.Sprintf("index (%d platforms)", len(img.Children))
		case img.Platform != nil:
			kind += " " + img.Platform.String()
		case img.Subject != nil:
			kind += " of " + shortDigest(img.Subject.String())
		}
		if extra := attached[img.Digest.String()]; len(extra) > 0 {
			kind += ", " + attachedLabel(extra)
		}
		pushed, source := "-", "unknown (lifecycle keeps it)"
		if img.Kind.Attached() {
			source = "-" // goes with its subject
		}
		if !img.PushedAt.IsZero() {
			pushed, source = img.PushedAt.UTC().Format("2006-01-02 15:04:05Z"), string(img.PushedAtSource)
		}
		tags := strings.Join(img.Tags, ", ")
		if tags == "" {
			tags = "<untagged>"
		}
		t.Rows = append(t.Rows, []string{shortDigest(img.Digest.String()), tags, kind, humanSize(img.Size), pushed, source})
	}
	return t
}

// attachedLabel says what is attached to an image: "signed", "signed +sbom", "+attestation".
func attachedLabel(kinds []string) string {
	sort.Strings(kinds)
	var parts []string
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k] {
			continue
		}
		seen[k] = true
		if k == string(registry.KindSignature) {
			parts = append([]string{"signed"}, parts...)
		} else {
			parts = append(parts, "+"+k)
		}
	}
	return strings.Join(parts, " ")
}

func shortDigest(d string) string { return registry.ShortDigest(d) }

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newRepoCreateCmd(f *Factory) *cobra.Command {
	var spec registry.RepositorySpec
	var tags []string
	var public, preventVulnerable bool
	var severity, scanPolicy string
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create repositories (idempotent); on Harbor, projects with their settings; on plain OCI registries validate names",
		Long: `Create repositories with the given settings; re-running is safe. Plain OCI registries create a
repository on its first push: there the command checks the name, reports whether the repository
exists ("exists") or not yet ("on-first-push"), and says that settings cannot be applied.

On Harbor the first path segment is a project: the command creates the project (a repository inside
it is created by its first push, and the message says so) with --public, --scan-on-push,
--prevent-vulnerable, --severity and --scan-policy (a Harbor scan policy JSON such as the guide's
harbor-scan-policy.json: its severities, prevent_vulnerable, scan_before_push and whitelist go onto
the project's metadata and CVE allowlist; what Harbor cannot express is named in a note). An
existing project with the same settings is "unchanged"; settings that differ are shown and updated.
Settings not given are left as the project has them.`,
		Example: `  regctl repo create prod/game-server prod/game-server/prometheus --scan-on-push --encryption AES256
  regctl repo create local/game-server
  regctl repo create harbor/game-server harbor/game-server-dev --public=false \
      --scan-on-push --prevent-vulnerable --severity high --scan-policy harbor-scan-policy.json`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var err error
			if spec.Tags, err = parseKeyValues("--tag", tags); err != nil {
				return err
			}
			if len(spec.Tags) == 0 {
				spec.Tags = nil
			}
			switch spec.Encryption {
			case "", "AES256", "KMS":
			default:
				return usageError(fmt.Errorf("--encryption %q: must be AES256 or KMS", spec.Encryption))
			}
			if spec.KMSKey != "" && spec.Encryption != "KMS" {
				return usageError(fmt.Errorf("--kms-key needs --encryption KMS"))
			}
			switch spec.TagMutability {
			case "", "MUTABLE", "IMMUTABLE":
			default:
				return usageError(fmt.Errorf("--tag-mutability %q: must be MUTABLE or IMMUTABLE", spec.TagMutability))
			}
			fl := cmd.Flags()
			var ps registry.ProjectSpec
			if fl.Changed("public") {
				ps.Public = &public
			}
			if fl.Changed("scan-on-push") {
				ps.ScanOnPush = &spec.ScanOnPush
			}
			if fl.Changed("prevent-vulnerable") {
				ps.PreventVulnerable = &preventVulnerable
			}
			switch strings.ToLower(severity) {
			case "", "none", "low", "medium", "high", "critical":
				ps.Severity = strings.ToLower(severity)
			default:
				return usageError(fmt.Errorf("--severity %q: must be none, low, medium, high or critical", severity))
			}
			if scanPolicy != "" {
				if ps.ScanPolicy, err = readPolicyFile(f, scanPolicy); err != nil {
					return fmt.Errorf("--scan-policy: %w", err)
				}
				ps.ScanPolicyName = scanPolicy
			}
			projectOnly := ps.Public != nil || ps.PreventVulnerable != nil || ps.Severity != "" || len(ps.ScanPolicy) > 0
			type created struct {
				Registry string `json:"registry"`
				registry.EnsureResult
				Changes []registry.SettingChange `json:"changes,omitempty"`
				Notes   []string                 `json:"notes,omitempty"`
			}
			var results []created
			for _, arg := range a {
				reg, repo, err := f.repository(arg)
				if err != nil {
					return err
				}
				if pe, ok := reg.(registry.ProjectEnsurer); ok {
					r, err := pe.EnsureProject(cmd.Context(), repo, spec, ps)
					if err != nil {
						return err
					}
					for _, n := range r.Notes {
						f.Notef("%s/%s: note: %s", reg.Name(), repo, n)
					}
					results = append(results, created{Registry: reg.Name(), EnsureResult: r.EnsureResult, Changes: r.Changes, Notes: r.Notes})
					continue
				}
				if projectOnly {
					return usageError(fmt.Errorf("%s is a %s registry: --public, --prevent-vulnerable, --severity and --scan-policy are project settings (Harbor)", reg.Name(), reg.Type()))
				}
				r, err := reg.EnsureRepository(cmd.Context(), repo, spec)
				if err != nil {
					return err
				}
				results = append(results, created{Registry: reg.Name(), EnsureResult: r})
			}
			return f.Render(results, func() ui.Table {
				t := ui.Table{Headers: []string{"repository", "status", "message"}}
				for _, r := range results {
					t.Rows = append(t.Rows, []string{r.Registry + "/" + r.Repository, string(r.Status), r.Message})
				}
				return t
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&spec.ScanOnPush, "scan-on-push", false, "scan images when pushed (ECR; Harbor: the project's auto_scan)")
	fl.StringVar(&spec.Encryption, "encryption", "", "AES256 or KMS (ECR; fixed at creation)")
	fl.StringVar(&spec.KMSKey, "kms-key", "", "KMS key ARN or alias for --encryption KMS")
	fl.StringVar(&spec.TagMutability, "tag-mutability", "", "MUTABLE or IMMUTABLE (ECR)")
	fl.StringArrayVar(&tags, "tag", nil, "resource tag key=value (repeatable)")
	fl.BoolVar(&public, "public", false, "Harbor: the project is public (anyone may pull)")
	fl.BoolVar(&preventVulnerable, "prevent-vulnerable", false, "Harbor: block pulls of images with vulnerabilities at or above --severity")
	fl.StringVar(&severity, "severity", "", "Harbor: the pull gate's severity: none, low, medium, high or critical")
	fl.StringVar(&scanPolicy, "scan-policy", "", "Harbor: a scan policy JSON file (harbor-scan-policy.json) for the project's metadata and CVE allowlist")
	return cmd
}

func newRepoPolicyCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "policy", Short: "Get or set a repository's access policy (ECR)"})
	policies := func(arg string) (registry.RepositoryPolicies, string, error) {
		reg, repo, err := f.repository(arg)
		if err != nil {
			return nil, "", err
		}
		rp, ok := reg.(registry.RepositoryPolicies)
		if !ok {
			return nil, "", usageError(fmt.Errorf("%s is a %s registry, which has no repository policies", reg.Name(), reg.Type()))
		}
		return rp, repo, nil
	}
	var file string
	set := &cobra.Command{
		Use:     "set REPO -f POLICY.json",
		Short:   "Replace the repository's access policy",
		Example: "  regctl repo policy set prod/game-server -f ecr-repository-policy.json",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, err := readPolicyFile(f, file)
			if err != nil {
				return err
			}
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				return usageError(fmt.Errorf("%s: not valid JSON: %v", file, err))
			}
			rp, repo, err := policies(a[0])
			if err != nil {
				return err
			}
			if cur, err := rp.GetRepositoryPolicy(cmd.Context(), repo); err == nil && jsonEqual(cur, string(data)) {
				f.Notef("%s: policy unchanged", repo)
				return nil
			}
			if err := rp.SetRepositoryPolicy(cmd.Context(), repo, string(data)); err != nil {
				return err
			}
			f.Notef("%s: policy set", repo)
			return nil
		},
	}
	set.Flags().StringVarP(&file, "policy", "f", "", "policy JSON file (- for stdin)")
	get := &cobra.Command{
		Use:     "get REPO",
		Short:   "Print the repository's access policy",
		Example: "  regctl repo policy get prod/game-server",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			rp, repo, err := policies(a[0])
			if err != nil {
				return err
			}
			text, err := rp.GetRepositoryPolicy(cmd.Context(), repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, text)
			return nil
		},
	}
	cmd.AddCommand(set, get)
	return cmd
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ra, _ := json.Marshal(x)
	rb, _ := json.Marshal(y)
	return string(ra) == string(rb)
}
