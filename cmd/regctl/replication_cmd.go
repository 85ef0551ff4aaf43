package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/regctl-dev/regctl/internal/config"
	"github.com/regctl-dev/regctl/internal/ecr"
	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/harbor"
	"github.com/regctl-dev/regctl/internal/registry"
	"github.com/regctl-dev/regctl/internal/ui"
)

// harborReplicator is a registry with Harbor's replication policies: endpoints, policies, runs.
type harborReplicator interface {
	PutReplication(ctx context.Context, s harbor.ReplicationSpec, dryRun bool) (*harbor.ReplicationPut, error)
	ReplicationPolicies(ctx context.Context) ([]harbor.ReplicationPolicy, error)
	RunReplication(ctx context.Context, name string) (*harbor.ReplicationRun, error)
}

func newReplicationCmd(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "replication", Short: "Replication: ECR's cross-region configuration, Harbor's replication policies"})
	open := f.registryArg
	cmd.AddCommand(newReplicationPutCmd(f, open), newReplicationGetCmd(f, open), newReplicationRunCmd(f, open))
	return cmd
}

func newReplicationPutCmd(f *Factory, open func([]string) (registry.Registry, error)) *cobra.Command {
	var (
		file, dest, destURL, src string
		spec                     harbor.ReplicationSpec
		dryRun                   bool
	)
	put := &cobra.Command{
		Use:   "put [REGISTRY] (-f FILE | --name NAME --dest-registry DEST ...)",
		Short: "Put the replication configuration (ECR: -f JSON) or a replication policy (Harbor: --name ...)",
		Long: `On ECR, -f FILE replaces the registry's replication configuration (the JSON of aws ecr
put-replication-configuration).

On Harbor, --name stores a push-based replication policy (from this Harbor to --dest-registry) and
the registry endpoint it copies to, as the guide's "harbor replication-policy create" did.
--dest-registry names a registry of regctl's config (its url, type and credentials become Harbor's
endpoint of that name, created or brought up to date; --dest-url when Harbor reaches it at another
address) or an endpoint Harbor already has. Harbor's cron has 6 fields, seconds first: a 5-field
--cron gets "0 " in front and the translation is printed; * minutes are refused (Harbor would start
every minute). Re-running with the same flags changes nothing; other settings are shown as a diff
and updated. --dry-run shows that diff and writes nothing.`,
		Example: `  regctl replication put -f ecr-replication-configuration.json prod
  regctl replication put harbor --name "Sync to DR" --src-registry local --dest-registry dr-registry \
      --dest-namespace game-server --trigger-type scheduled --cron "0 2 * * *"
  regctl replication put harbor --name "Sync to DR" --dest-registry dr-registry --repos 'game-server/**' --dry-run`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case file != "" && spec.Name != "":
				return usageError(errors.New("-f FILE (ECR) and --name (Harbor) do not go together"))
			case file == "" && spec.Name == "":
				return usageError(errors.New("-f FILE (ECR's replication configuration) or --name NAME (a Harbor replication policy) is required"))
			}
			if file != "" {
				return putECRReplication(cmd, f, open, a, file)
			}
			reg, err := open(a)
			if err != nil {
				return err
			}
			hr, ok := reg.(harborReplicator)
			if !ok {
				return usageError(fmt.Errorf("%s is a %s registry; --name stores a Harbor replication policy (ECR takes -f FILE)", reg.Name(), reg.Type()))
			}
			if src != "local" {
				return usageError(fmt.Errorf("--src-registry %q: regctl stores push-based policies, from this Harbor (local)", src))
			}
			if spec.Dest, err = replicationEndpoint(cmd.Context(), f, dest, destURL); err != nil {
				return err
			}
			res, err := hr.PutReplication(cmd.Context(), spec, dryRun)
			if res != nil && res.Cron != nil {
				f.Notef("cron %s → Harbor %s (Harbor's cron has 6 fields, seconds first)", res.Cron.From, res.Cron.To)
			}
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				f.Notef("note: %s", n)
			}
			return f.Render(res, func() ui.Table {
				t := ui.Table{Headers: []string{"object", "name", "status", "setting", "from", "to"}}
				for _, step := range []struct {
					kind string
					s    harbor.PutStep
				}{{"endpoint", res.Endpoint}, {"policy", res.Policy}} {
					if len(step.s.Changes) == 0 {
						t.Rows = append(t.Rows, []string{step.kind, step.s.Name, step.s.Status, "", "", ""})
					}
					for _, c := range step.s.Changes {
						t.Rows = append(t.Rows, []string{step.kind, step.s.Name, step.s.Status, c.Setting, c.From, c.To})
					}
				}
				return t
			})
		},
	}
	fl := put.Flags()
	fl.StringVarP(&file, "file", "f", "", "ECR: replication configuration JSON (- for stdin)")
	fl.StringVar(&spec.Name, "name", "", "Harbor: the replication policy's name")
	fl.StringVar(&spec.Description, "description", "", "Harbor: the policy's description")
	fl.StringVar(&src, "src-registry", "local", "Harbor: the source; only local (this Harbor) is supported")
	fl.StringVar(&dest, "dest-registry", "", "Harbor: a registry of regctl's config, or an endpoint Harbor has")
	fl.StringVar(&destURL, "dest-url", "", "Harbor: the URL Harbor reaches the destination at (default: its url in regctl's config)")
	fl.StringVar(&spec.DestNamespace, "dest-namespace", "", "Harbor: the namespace (project) on the destination")
	fl.IntVar(&spec.ReplaceCount, "dest-namespace-replace-count", 1, "Harbor: leading path components the namespace replaces (0 keeps the path, -1 all but the last)")
	fl.StringVar(&spec.NameFilter, "repos", "", "Harbor: repositories to copy, with their project (doublestar: 'game-server/**'); default all")
	fl.StringVar(&spec.TagFilter, "tags", "", "Harbor: tags to copy (doublestar: 'v*'); default all")
	fl.StringVar(&spec.Trigger, "trigger-type", "manual", "Harbor: manual, scheduled or event_based")
	fl.StringVar(&spec.Cron, "cron", "", `Harbor: the schedule of a scheduled trigger, 5 fields ("0 2 * * *") or Harbor's 6`)
	fl.BoolVar(&spec.Override, "override", true, "Harbor: overwrite images the destination has under the same name")
	fl.BoolVar(&spec.Enabled, "enabled", true, "Harbor: the policy runs (on its trigger, and with replication run)")
	fl.BoolVar(&spec.Deletion, "deletion", false, "Harbor: replicate deletions (event_based triggers only)")
	fl.BoolVar(&dryRun, "dry-run", false, "Harbor: show what would change; write nothing")
	return put
}

func putECRReplication(cmd *cobra.Command, f *Factory, open func([]string) (registry.Registry, error), a []string, file string) error {
	data, err := readPolicyFile(f, file)
	if err != nil {
		return err
	}
	reg, err := open(a)
	if err != nil {
		return err
	}
	rp, ok := reg.(registry.ReplicationConfigurer)
	if !ok {
		return usageError(fmt.Errorf("%s is a %s registry, which has no replication configuration to replace with -f (on Harbor, name a policy: --name)", reg.Name(), reg.Type()))
	}
	st, err := rp.PutReplicationConfig(cmd.Context(), data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if st.Unchanged {
		f.Notef("%s: replication unchanged", reg.Name())
		return nil
	}
	f.Notef("%s: replication configuration put (%d rules)", reg.Name(), st.Rules)
	return nil
}

// replicationEndpoint is the Harbor endpoint --dest-registry names: a registry of regctl's
// config (its url, type and credentials; an ECR registry is refused, Harbor's aws-ecr adapter
// needs IAM access keys regctl does not hold), else an endpoint Harbor must have already.
func replicationEndpoint(ctx context.Context, f *Factory, dest, destURL string) (harbor.Endpoint, error) {
	if dest == "" {
		return harbor.Endpoint{}, usageError(errors.New("--dest-registry is required: a registry of regctl's config, or an endpoint Harbor has"))
	}
	cfg, err := f.Config()
	if err != nil {
		return harbor.Endpoint{}, err
	}
	rc, ok := cfg.Registries[dest]
	if !ok {
		if destURL != "" {
			return harbor.Endpoint{}, usageError(fmt.Errorf("--dest-url: %q is not a registry of regctl's config, so regctl has no type or credentials for it; add it to the config", dest))
		}
		return harbor.Endpoint{Name: dest}, nil
	}
	ep := harbor.Endpoint{Name: dest, Insecure: rc.Insecure}
	switch rc.Type {
	case harbor.Type:
		ep.Type = "harbor"
	case registry.OCIType:
		ep.Type = "docker-registry"
	case ecr.Type:
		return ep, usageError(fmt.Errorf("--dest-registry %s is an ECR registry: Harbor's aws-ecr endpoint needs an IAM access key pair, which regctl does not hold (it uses the AWS credential chain); create the endpoint in Harbor and name it, or replicate with ECR's own replication", dest))
	default:
		return ep, usageError(fmt.Errorf("--dest-registry %s is a %s registry, which regctl cannot describe to Harbor", dest, rc.Type))
	}
	u := destURL
	if u == "" {
		u = rc.URL
	}
	if u == "" {
		return ep, usageError(fmt.Errorf("registries.%s.url: Harbor needs the destination's URL (or give --dest-url)", dest))
	}
	if !strings.Contains(u, "://") {
		u = "https://" + u
	}
	ep.URL = strings.TrimSuffix(u, "/")
	if strings.HasPrefix(ep.URL, "http://") {
		ep.Insecure = true
	}
	if ep.AccessKey, ep.AccessSecret, err = configCredentials(ctx, f, dest, rc); err != nil {
		return ep, err
	}
	return ep, nil
}

// configCredentials are the username and password of a registry of the config, as the registry
// itself resolves them (password_env, password_file); none without a username: Harbor cannot use
// the operator's docker credential helpers.
func configCredentials(ctx context.Context, f *Factory, regName string, rc config.Registry) (string, string, error) {
	if rc.Username == "" {
		return "", "", nil
	}
	res, err := f.Resolver()
	if err != nil {
		return "", "", err
	}
	reg, err := res.Registry(regName)
	if err != nil {
		return "", "", err
	}
	host, err := name.NewRegistry(reg.Host(), name.Insecure)
	if err != nil {
		return "", "", usageError(fmt.Errorf("registries.%s.url: %w", regName, err))
	}
	auth, err := authn.Resolve(ctx, reg.Keychain(), host)
	if err == nil {
		var ac *authn.AuthConfig
		if ac, err = authn.Authorization(ctx, auth); err == nil {
			return ac.Username, ac.Password, nil
		}
	}
	return "", "", exitcode.With(exitcode.Auth, fmt.Errorf("registries.%s: %w", regName, err))
}

func newReplicationGetCmd(f *Factory, open func([]string) (registry.Registry, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "get [REGISTRY]",
		Short: "Print the replication configuration (ECR) or the replication policies (Harbor)",
		Example: `  regctl replication get prod -o json
  regctl replication get harbor`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			reg, err := open(a)
			if err != nil {
				return err
			}
			if hr, ok := reg.(harborReplicator); ok {
				pols, err := hr.ReplicationPolicies(cmd.Context())
				if err != nil {
					return err
				}
				return f.Render(pols, func() ui.Table {
					t := ui.Table{Headers: []string{"policy", "from", "to", "namespace", "filters", "trigger", "enabled"}}
					for _, p := range pols {
						trig := p.Trigger
						if p.Cron != "" {
							trig += " " + p.Cron
						}
						var fs []string
						for _, fl := range p.Filters {
							fs = append(fs, fl.Type+"="+fmt.Sprint(fl.Value))
						}
						t.Rows = append(t.Rows, []string{p.Name, p.Source, p.Destination, p.DestNamespace, strings.Join(fs, " "), trig, strconv.FormatBool(p.Enabled)})
					}
					return t
				})
			}
			rp, ok := reg.(registry.ReplicationConfigurer)
			if !ok {
				return usageError(fmt.Errorf("%s is a %s registry, which has no replication configuration", reg.Name(), reg.Type()))
			}
			r, err := rp.ReplicationConfig(cmd.Context())
			if err != nil {
				return err
			}
			return f.Render(r.Document, func() ui.Table {
				t := ui.Table{Headers: []string{"rule", "destinations", "repository filters"}}
				for _, rule := range r.Rules {
					t.Rows = append(t.Rows, []string{rule.Name, fmt.Sprint(rule.Destinations), fmt.Sprint(rule.Filters)})
				}
				return t
			})
		},
	}
}

func newReplicationRunCmd(f *Factory, open func([]string) (registry.Registry, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "run NAME [REGISTRY]",
		Short: "Run a Harbor replication policy now and wait for its execution",
		Long: `Start an execution of the named Harbor replication policy (as the UI's Replicate button) and
wait for it: its status and one line per repository task. An execution that does not end in
Success exits 1, naming each failed task with the last line of its log.`,
		Example: `  regctl replication run "Sync to DR" harbor
  regctl replication run "Sync to DR" -o json | jq .status`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			reg, err := open(a[1:])
			if err != nil {
				return err
			}
			hr, ok := reg.(harborReplicator)
			if !ok {
				return usageError(fmt.Errorf("%s is a %s registry; replication run starts a Harbor replication policy (ECR replicates on its own)", reg.Name(), reg.Type()))
			}
			run, runErr := hr.RunReplication(cmd.Context(), a[0])
			if run == nil {
				return runErr
			}
			if err := f.Render(run, func() ui.Table {
				t := ui.Table{Headers: []string{"task", "from", "to", "status"}}
				for _, tk := range run.Tasks {
					t.Rows = append(t.Rows, []string{strconv.FormatInt(tk.ID, 10), tk.Source, tk.Destination, tk.Status})
				}
				return t
			}); err != nil {
				return err
			}
			if runErr == nil {
				f.Notef("%s: execution %d of %q: %s (%d tasks)", reg.Name(), run.ID, run.Policy, run.Status, run.Total)
			}
			return runErr
		},
	}
}
