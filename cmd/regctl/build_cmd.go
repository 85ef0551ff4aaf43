package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/build"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/sign"
	"github.com/regctl-dev/regctl/internal/ui"
)

func newBuildPushCmd(f *Factory) *cobra.Command {
	var (
		dockerfile, repo, version, platforms, builder, reportFile, branch, commit, key, cacheRef string
		buildArgs                                                                                []string
		doScan, doSign, dryRun                                                                   bool
		sf                                                                                       scanFlags
	)
	cmd := &cobra.Command{
		Use:   "build-push [CONTEXT] --repo REPO",
		Short: "Build (buildx or daemonless buildah), push by digest, scan and sign, then tag from git",
		Long: `Build the image in CONTEXT (default .) for every --platform, push it by digest, then — with --scan
and --sign — run the scan gate and sign the digest, and only then give it its tags. A failed gate
exits 3 and publishes no tag.

Tags come from the git branch of CONTEXT (--branch/--commit override it; CI checkouts are often
detached), by build.tag_rules, whose default reproduces build-and-push.sh:
  main -> latest, $VERSION, <sha>;  develop -> staging, staging-<sha>;  other -> dev-<sha>
(<sha> is the 7-character commit; --version defaults to dev). The labels
org.opencontainers.image.created|revision|version|source and the build args BUILD_DATE, VCS_REF and
VERSION are set as the script does.

--builder buildx runs 'docker buildx build' with a registry cache (REPO:buildcache, as the script;
--cache-ref puts it elsewhere) and reads the pushed digest from buildx's metadata file. The cache tag
is the one tag written before the scan gate: buildx exports it during the build. It holds cache
layers, not a runnable image; to keep every tag of the image repository behind the gate, pass
--cache-ref REGISTRY/REPO-cache:buildcache. buildah builds without a daemon (one build per platform,
then one manifest list); auto picks buildx when a builder works, else buildah. Credentials come from
regctl's own auth for the registry; no docker login step. --dry-run prints the commands and tags.`,
		Example: `  regctl build-push . --repo local/game-server --version 1.4.0 --scan --sign --key cosign.key
  regctl build-push --repo prod/game-server --platform linux/amd64,linux/arm64 --builder buildx --dry-run
  regctl build-push app/ -f app/Dockerfile.optimized --repo local/app --branch main --commit "$CI_COMMIT_SHA" --report build.json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if repo == "" {
				return usageError(errors.New("--repo REGISTRY/REPO is required"))
			}
			user, err := parseKeyValues("--build-arg", buildArgs)
			if err != nil {
				return err
			}
			contextDir := "."
			if len(a) == 1 {
				contextDir = a[0]
			}
			contextDir = f.inWorkDir(contextDir)
			if st, err := os.Stat(contextDir); err != nil || !st.IsDir() {
				return exitcode.With(exitcode.NotFound, fmt.Errorf("build context %s is not a directory", contextDir))
			}
			dockerfile = f.inWorkDir(dockerfile)
			res, err := f.Resolver()
			if err != nil {
				return err
			}
			reg, repoPath, err := res.Repository(repo)
			if err != nil {
				return err
			}
			if repoPath == "" {
				return usageError(fmt.Errorf("--repo %q names a registry; give REGISTRY/REPO", repo))
			}
			repoRef, err := registry.RepositoryRef(reg, repoPath)
			if err != nil {
				return err
			}
			runner := build.ExecRunner{Progress: f.IO.ErrOut}
			git, err := build.ReadGit(ctx, runner, contextDir, branch, commit)
			if err != nil {
				return err
			}
			rules := cfg.Build.TagRules
			tags, err := build.Tags(rules, git, version)
			if err != nil {
				return err
			}
			plats := build.Platforms(platforms, cfg.Build.Platforms)
			if builder == "" {
				builder = firstNonEmpty(cfg.Build.Builder, build.BuilderAuto)
			}
			which, why, err := build.DetectBuilder(ctx, runner, builder)
			if err != nil {
				return err
			}
			id := make([]byte, 6)
			_, _ = rand.Read(id)
			work, err := os.MkdirTemp("", "regctl-build-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			o := &build.Options{Context: contextDir, Dockerfile: dockerfile, Repo: repoRef, OCICacheManifests: registry.TraitsOf(reg).OCICacheManifests,
				Insecure: reg.Insecure() || build.IsLoopback(reg.Host()), Version: version, Platforms: plats, BuildArgs: user, Tags: tags, Git: git,
				Created: f.Now().UTC().Format("2006-01-02T15:04:05Z"), Builder: which, WorkDir: work,
				AuthDir: filepath.Join(work, "auth"), UserDockerConfig: build.UserDockerConfig(f.Getenv), ID: hex.EncodeToString(id)}
			if cacheRef != "" {
				_, cref, err := res.Reference(cacheRef)
				if err != nil {
					return usageError(fmt.Errorf("--cache-ref: %w", err))
				}
				o.CacheRef = cref.String()
			}
			rep := &build.Report{Repository: repoRef.String(), Tags: tags, Platforms: plats, Builder: which, BuilderWhy: why,
				Git: git, Version: version, Labels: build.Labels(git, version, o.Created), Published: []string{}, DryRun: dryRun}
			f.Notef("builder: %s (%s); tags: %s", which, why, strings.Join(tags, ", "))
			if dryRun {
				for _, c := range o.Commands() {
					rep.Commands = append(rep.Commands, c.String())
				}
				return finishBuild(f, rep, reportFile, nil)
			}
			if err := build.PrepareAuth(ctx, o, reg.Keychain(), repoRef, reg.Host()); err != nil {
				return err
			}
			var hooks build.Hooks
			if doScan {
				hooks.Scan = func(ctx context.Context, digestRef string) (any, error) {
					f.Notef("scanning %s before tagging", digestRef)
					return f.scanner().buildPushScan(cmd, f, &sf, digestRef)
				}
			}
			if doSign {
				keyRef, err := f.keyRef(key)
				if err != nil {
					return err
				}
				sv, err := sign.LoadSigner(ctx, keyRef, f.passFunc())
				if err != nil {
					return err
				}
				hooks.Sign = func(ctx context.Context, digestRef string) (any, error) {
					r, err := name.NewDigest(digestRef, registry.NameOptions(reg)...)
					if err != nil {
						return nil, err
					}
					return sign.Sign(ctx, reg.Remote(), r, sv, sign.Options{Recursive: true, Annotations: map[string]string{"git_commit": git.Commit}})
				}
			}
			err = build.Run(ctx, runner, o, reg.Remote(), hooks, rep)
			return finishBuild(f, rep, reportFile, err)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&dockerfile, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	fl.StringVar(&repo, "repo", "", "repository to publish to: REGISTRY/REPO (required)")
	fl.StringVar(&version, "version", "dev", "the {version} tag and the VERSION build arg, as $VERSION in the script")
	fl.StringVar(&platforms, "platform", "", "comma-separated platforms (default build.platforms, else linux/amd64,linux/arm64)")
	fl.StringArrayVar(&buildArgs, "build-arg", nil, "KEY=VALUE build argument (repeatable)")
	fl.StringVar(&builder, "builder", "", "auto, buildx or buildah (default build.builder, else auto)")
	fl.StringVar(&cacheRef, "cache-ref", "", "buildx registry cache reference (default REPO:buildcache); a separate repository keeps the image repository's tags behind the gate")
	fl.BoolVar(&doScan, "scan", false, "scan the pushed digest with the gate before any tag is published")
	fl.BoolVar(&doSign, "sign", false, "sign the pushed digest (and its platforms) before tagging")
	fl.StringVar(&key, "key", "", "signing key for --sign (default sign.key)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the commands and tags; run nothing")
	fl.StringVar(&reportFile, "report", "", "write a JSON build report for CI to this file")
	fl.StringVar(&branch, "branch", "", "branch name instead of what git says")
	fl.StringVar(&commit, "commit", "", "commit instead of what git says")
	sf.registerGate(fl)
	return cmd
}

func finishBuild(f *Factory, rep *build.Report, reportFile string, runErr error) error {
	if reportFile != "" {
		reportFile = f.inWorkDir(reportFile)
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(reportFile, append(raw, '\n')); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if err := f.Render(rep, func() ui.Table {
		t := ui.Table{Headers: []string{"field", "value"}}
		t.Rows = append(t.Rows, []string{"repository", rep.Repository}, []string{"builder", rep.Builder},
			[]string{"platforms", strings.Join(rep.Platforms, ", ")}, []string{"tags", strings.Join(rep.Tags, ", ")})
		if rep.Digest != "" {
			t.Rows = append(t.Rows, []string{"digest", rep.Digest})
		}
		t.Rows = append(t.Rows, []string{"published", strings.Join(rep.Published, ", ")})
		for i, c := range rep.Commands {
			t.Rows = append(t.Rows, []string{fmt.Sprintf("command %d", i+1), c})
		}
		return t
	}); err != nil {
		return err
	}
	return runErr
}
