package harbor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// namespacePattern is a destination namespace: repository path components, as Harbor's
// repository-name regexp.
var namespacePattern = regexp.MustCompile(`^` + nameComponent + `(?:/` + nameComponent + `)*$`)

// Cron is Harbor's 6-field cron (seconds first) for a cron as a user writes it: the 5
// fields of crontab get "0 " in front (translated is then true); 6 fields are taken as they are.
// Harbor refuses a seconds field other than 0, and for replication a minutes field of *; both
// are refused here first (exit 2; the caller names its flag).
func Cron(cron string, replication bool) (harborCron string, translated bool, err error) {
	f := strings.Fields(cron)
	bad := func(format string, a ...any) (string, bool, error) {
		return "", false, exitcode.With(exitcode.Usage, fmt.Errorf("cron %q: "+format, append([]any{cron}, a...)...))
	}
	switch len(f) {
	case 5:
		f = append([]string{"0"}, f...)
		translated = true
	case 6:
		if f[0] != "0" {
			return bad("Harbor runs schedules on whole minutes: the seconds field (the first of 6) must be 0")
		}
	default:
		return bad("a cron has 5 fields (minute hour day-of-month month day-of-week) or Harbor's 6 (seconds first); this has %d", len(f))
	}
	if replication && f[1] == "*" {
		return bad("Harbor does not allow * in the minutes field of a replication schedule (it would start every minute); name the minute, e.g. 0 2 * * *")
	}
	for i, field := range f {
		for _, part := range strings.Split(field, ",") {
			if part == "" || strings.Trim(part, "0123456789*/-?#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
				return bad("field %d (%q) is not a cron field", i+1, field)
			}
		}
	}
	return strings.Join(f, " "), translated, nil
}

// Endpoint is a Harbor registry endpoint: where a replication policy copies to. AccessSecret is
// sent, never shown: Harbor answers it as *****, and regctl's output and errors leave it out.
type Endpoint struct {
	ID           int64  `json:"id,omitempty"`
	Name         string `json:"name"`
	Type         string `json:"type"` // harbor, docker-registry, …
	URL          string `json:"url"`
	Insecure     bool   `json:"insecure"`
	AccessKey    string `json:"accessKey,omitempty"`
	AccessSecret string `json:"-"`
}

// ReplicationFilter is one of a policy's filters: name (repository names with their project,
// doublestar), tag (doublestar, matches or excludes), label, resource.
type ReplicationFilter struct {
	Type       string `json:"type"`
	Value      any    `json:"value"`
	Decoration string `json:"decoration,omitempty"`
}

// ReplicationSpec is the policy replication put stores, push-based: from this Harbor to Dest.
type ReplicationSpec struct {
	Name        string
	Description string
	// Dest is the endpoint: with a URL it is created or brought up to date under Dest.Name;
	// without one it must exist in Harbor already.
	Dest          Endpoint
	DestNamespace string
	// ReplaceCount is how many leading path components of the source repository the namespace
	// replaces (Harbor's flattening): 1 turns game-server/api into NAMESPACE/api; 0 keeps them
	// all; -1 is Harbor's legacy "all but the last".
	ReplaceCount int
	NameFilter   string // repositories, with their project: game-server/**
	TagFilter    string
	Trigger      string // manual, scheduled, event_based
	Cron         string // as written: 5 fields (translated) or Harbor's 6
	Override     bool
	Enabled      bool
	Deletion     bool // replicate deletions (event_based only, in Harbor)
	// Filters are further filters as Harbor stores them (label, resource, tag excludes), after
	// the name and tag filters above: what a restored policy had.
	Filters []ReplicationFilter
}

// ReplicationPolicy is a stored policy as regctl shows it (-o json).
type ReplicationPolicy struct {
	ID            int64               `json:"id,omitempty"`
	Name          string              `json:"name"`
	Description   string              `json:"description,omitempty"`
	Source        string              `json:"source"`      // "local" or the source endpoint's name
	Destination   string              `json:"destination"` // the endpoint's name ("local" when pull-based)
	DestURL       string              `json:"destinationURL,omitempty"`
	DestNamespace string              `json:"destNamespace"`
	ReplaceCount  int                 `json:"destNamespaceReplaceCount"`
	Filters       []ReplicationFilter `json:"filters"`
	Trigger       string              `json:"trigger"`
	Cron          string              `json:"cron,omitempty"`
	Override      bool                `json:"override"`
	Enabled       bool                `json:"enabled"`
	Deletion      bool                `json:"deletion"`

	srcID, destID int64
}

// CronTranslation is the cron as written and as Harbor stores it.
type CronTranslation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PutStep is what happened to the endpoint or the policy: created, updated, unchanged, or
// would-create / would-update under --dry-run; the changed settings for an update.
type PutStep struct {
	Name    string                   `json:"name"`
	ID      int64                    `json:"id,omitempty"`
	Status  string                   `json:"status"`
	Changes []registry.SettingChange `json:"changes"`
}

// ReplicationPut is replication put's result.
type ReplicationPut struct {
	DryRun   bool             `json:"dryRun"`
	Endpoint PutStep          `json:"endpoint"`
	Policy   PutStep          `json:"policy"`
	Cron     *CronTranslation `json:"cron,omitempty"`
	Notes    []string         `json:"notes"`
}

// wireEndpoint is Harbor's Registry.
type wireEndpoint struct {
	ID         *int64 `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	URL        string `json:"url"`
	Insecure   bool   `json:"insecure"`
	Credential *struct {
		Type      string `json:"type"`
		AccessKey string `json:"access_key"`
	} `json:"credential"`
}

func (w wireEndpoint) endpoint() Endpoint {
	ep := Endpoint{Name: w.Name, Type: w.Type, URL: w.URL, Insecure: w.Insecure}
	if w.ID != nil {
		ep.ID = *w.ID
	}
	if w.Credential != nil {
		ep.AccessKey = w.Credential.AccessKey
	}
	return ep
}

// Endpoints are Harbor's registry endpoints.
func (h *Harbor) Endpoints(ctx context.Context) ([]Endpoint, error) {
	const op = "listRegistries"
	var out []Endpoint
	err := h.api.list(ctx, request{op: op, method: http.MethodGet, path: "/registries"}, func(i int, raw json.RawMessage) error {
		var w wireEndpoint
		if err := json.Unmarshal(raw, &w); err != nil || w.ID == nil || *w.ID <= 0 || w.Name == "" {
			return badAnswer(op, "registry %d has no id or name", i)
		}
		out = append(out, w.endpoint())
		return nil
	})
	return out, err
}

func (h *Harbor) endpointNamed(ctx context.Context, name string) (*Endpoint, error) {
	eps, err := h.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	var found *Endpoint
	for i := range eps {
		if eps[i].Name == name {
			if found != nil {
				return nil, badAnswer("listRegistries", "two registry endpoints are named %q (Harbor's names are unique)", name)
			}
			found = &eps[i]
		}
	}
	return found, nil
}

// changes collects the settings that differ, in the order they are compared.
type changes []registry.SettingChange

func (c *changes) add(setting, from, to string) {
	if from != to {
		*c = append(*c, registry.SettingChange{Setting: setting, From: from, To: to})
	}
}

func endpointChanges(cur, want Endpoint) changes {
	var ch changes
	add := ch.add
	add("type", cur.Type, want.Type)
	add("url", strings.TrimSuffix(cur.URL, "/"), strings.TrimSuffix(want.URL, "/"))
	add("insecure", strconv.FormatBool(cur.Insecure), strconv.FormatBool(want.Insecure))
	add("access_key", cur.AccessKey, want.AccessKey)
	return ch
}

// errNoEndpoint is an endpoint named without a URL that Harbor does not have.
var errNoEndpoint = errors.New("no such endpoint")

// putEndpoint creates the endpoint or updates the settings that differ. The type of an endpoint
// cannot change in Harbor (RegistryUpdate has none): that is an error naming both.
func (h *Harbor) putEndpoint(ctx context.Context, want Endpoint, dryRun bool, res *ReplicationPut) (int64, error) {
	res.Endpoint = PutStep{Name: want.Name, Changes: []registry.SettingChange{}}
	cur, err := h.endpointNamed(ctx, want.Name)
	if err != nil {
		return 0, err
	}
	if want.URL == "" {
		if cur == nil {
			return 0, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor has no registry endpoint named %q (name a registry of regctl's config to create it): %w", want.Name, errNoEndpoint))
		}
		res.Endpoint.ID, res.Endpoint.Status = cur.ID, string(registry.StatusUnchanged)
		return cur.ID, nil
	}
	cred := func() map[string]string {
		if want.AccessKey == "" && want.AccessSecret == "" {
			return nil
		}
		return map[string]string{"type": "basic", "access_key": want.AccessKey, "access_secret": want.AccessSecret}
	}
	if cur == nil {
		if dryRun {
			res.Endpoint.Status = "would-create"
			return 0, nil
		}
		const op = "createRegistry"
		body := map[string]any{"name": want.Name, "type": want.Type, "url": want.URL, "insecure": want.Insecure, "description": "managed by regctl"}
		if c := cred(); c != nil {
			body["credential"] = c
		}
		a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: "/registries", body: body, ok: []int{http.StatusCreated}})
		if err != nil {
			return 0, err
		}
		id, err := idFromLocation(op, a, "/registries/")
		if err != nil {
			return 0, err
		}
		res.Endpoint.ID, res.Endpoint.Status = id, "created"
		return id, nil
	}
	res.Endpoint.ID = cur.ID
	ch := endpointChanges(*cur, want)
	for _, c := range ch {
		if c.Setting == "type" {
			return 0, exitcode.With(exitcode.Usage, fmt.Errorf("harbor registry endpoint %q is of type %s, not %s; Harbor cannot change an endpoint's type (delete it in Harbor or pick another --dest-registry)", want.Name, cur.Type, want.Type))
		}
	}
	if want.AccessSecret != "" {
		res.Notes = append(res.Notes, "Harbor never answers an endpoint's stored secret, so regctl cannot compare it; it is sent again only when another setting changes")
	}
	if len(ch) == 0 {
		res.Endpoint.Status = string(registry.StatusUnchanged)
		return cur.ID, nil
	}
	res.Endpoint.Changes = ch
	if dryRun {
		res.Endpoint.Status = "would-update"
		return cur.ID, nil
	}
	body := map[string]any{"url": want.URL, "insecure": want.Insecure}
	if c := cred(); c != nil {
		body["credential_type"], body["access_key"], body["access_secret"] = "basic", c["access_key"], c["access_secret"]
	}
	if _, err := h.api.do(ctx, request{op: "updateRegistry", method: http.MethodPut, path: "/registries/" + strconv.FormatInt(cur.ID, 10), body: body}); err != nil {
		return 0, err
	}
	res.Endpoint.Status = "updated"
	return cur.ID, nil
}

// wirePolicy is Harbor's ReplicationPolicy as it answers it.
type wirePolicy struct {
	ID           *int64        `json:"id"`
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	SrcRegistry  *wireEndpoint `json:"src_registry"`
	DestRegistry *wireEndpoint `json:"dest_registry"`
	DestNS       string        `json:"dest_namespace"`
	ReplaceCount *int          `json:"dest_namespace_replace_count"`
	Filters      []struct {
		Type       string `json:"type"`
		Value      any    `json:"value"`
		Decoration string `json:"decoration"`
	} `json:"filters"`
	Trigger *struct {
		Type     string `json:"type"`
		Settings *struct {
			Cron string `json:"cron"`
		} `json:"trigger_settings"`
	} `json:"trigger"`
	Deletion          bool  `json:"deletion"`
	ReplicateDeletion *bool `json:"replicate_deletion"`
	Override          bool  `json:"override"`
	Enabled           bool  `json:"enabled"`
}

func (w wirePolicy) policy(op string, i int) (ReplicationPolicy, error) {
	if w.ID == nil || *w.ID <= 0 || w.Name == "" {
		return ReplicationPolicy{}, badAnswer(op, "policy %d has no id or name", i)
	}
	p := ReplicationPolicy{ID: *w.ID, Name: w.Name, Description: w.Description, DestNamespace: w.DestNS, ReplaceCount: -1,
		Override: w.Override, Enabled: w.Enabled, Deletion: w.Deletion || (w.ReplicateDeletion != nil && *w.ReplicateDeletion),
		Filters: []ReplicationFilter{}, Trigger: "manual"}
	side := func(e *wireEndpoint) (string, int64, string) {
		if e == nil || e.ID == nil || *e.ID == 0 {
			return "local", 0, ""
		}
		n := e.Name
		if n == "" {
			n = "#" + strconv.FormatInt(*e.ID, 10)
		}
		return n, *e.ID, e.URL
	}
	p.Source, p.srcID, _ = side(w.SrcRegistry)
	p.Destination, p.destID, p.DestURL = side(w.DestRegistry)
	if w.ReplaceCount != nil {
		p.ReplaceCount = *w.ReplaceCount
	}
	for j, f := range w.Filters {
		if f.Type == "" {
			return ReplicationPolicy{}, badAnswer(op, "policy %q: filters[%d] has no type", w.Name, j)
		}
		p.Filters = append(p.Filters, ReplicationFilter{Type: f.Type, Value: f.Value, Decoration: f.Decoration})
	}
	if w.Trigger != nil && w.Trigger.Type != "" {
		p.Trigger = w.Trigger.Type
		if w.Trigger.Settings != nil {
			p.Cron = w.Trigger.Settings.Cron
		}
	}
	return p, nil
}

// ReplicationPolicies are the policies stored in Harbor.
func (h *Harbor) ReplicationPolicies(ctx context.Context) ([]ReplicationPolicy, error) {
	const op = "listReplicationPolicies"
	out := []ReplicationPolicy{}
	err := h.api.list(ctx, request{op: op, method: http.MethodGet, path: "/replication/policies"}, func(i int, raw json.RawMessage) error {
		var w wirePolicy
		if err := json.Unmarshal(raw, &w); err != nil {
			return badAnswer(op, "policy %d: %v", i, err)
		}
		p, err := w.policy(op, i)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// policyNamed is the stored replication policy of that name (nil when there is none).
func (h *Harbor) policyNamed(ctx context.Context, name string) (*ReplicationPolicy, error) {
	all, err := h.ReplicationPolicies(ctx)
	if err != nil {
		return nil, err
	}
	var found *ReplicationPolicy
	for i := range all {
		if all[i].Name == name {
			if found != nil {
				return nil, badAnswer("listReplicationPolicies", "two policies are named %q (Harbor's names are unique)", name)
			}
			found = &all[i]
		}
	}
	return found, nil
}

// wantPolicy is the policy the spec asks for, as regctl compares it with the stored one.
func wantPolicy(s ReplicationSpec, cron string, destID int64) ReplicationPolicy {
	p := ReplicationPolicy{Name: s.Name, Description: s.Description, Source: "local", Destination: s.Dest.Name, DestNamespace: s.DestNamespace,
		ReplaceCount: s.ReplaceCount, Filters: []ReplicationFilter{}, Trigger: s.Trigger, Cron: cron, Override: s.Override,
		Enabled: s.Enabled, Deletion: s.Deletion, destID: destID}
	if s.NameFilter != "" {
		p.Filters = append(p.Filters, ReplicationFilter{Type: "name", Value: s.NameFilter})
	}
	if s.TagFilter != "" {
		p.Filters = append(p.Filters, ReplicationFilter{Type: "tag", Value: s.TagFilter, Decoration: "matches"})
	}
	p.Filters = append(p.Filters, s.Filters...)
	return p
}

func filtersText(fs []ReplicationFilter) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		s := f.Type + "=" + fmt.Sprint(f.Value)
		if f.Decoration != "" && f.Decoration != "matches" {
			s += " (" + f.Decoration + ")"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func policyChanges(cur, want ReplicationPolicy) changes {
	var ch changes
	add := ch.add
	add("source", cur.Source, want.Source)
	if cur.destID != want.destID {
		// Same name, other endpoint (it was deleted and created again): name both ids.
		add("destination", fmt.Sprintf("%s (#%d)", cur.Destination, cur.destID), endpointLabel(want))
	}
	add("dest_namespace", cur.DestNamespace, want.DestNamespace)
	add("dest_namespace_replace_count", strconv.Itoa(cur.ReplaceCount), strconv.Itoa(want.ReplaceCount))
	add("filters", filtersText(cur.Filters), filtersText(want.Filters))
	add("trigger", cur.Trigger, want.Trigger)
	add("cron", cur.Cron, want.Cron)
	add("override", strconv.FormatBool(cur.Override), strconv.FormatBool(want.Override))
	add("enabled", strconv.FormatBool(cur.Enabled), strconv.FormatBool(want.Enabled))
	add("deletion", strconv.FormatBool(cur.Deletion), strconv.FormatBool(want.Deletion))
	add("description", cur.Description, want.Description)
	return ch
}

func endpointLabel(p ReplicationPolicy) string {
	if p.destID <= 0 {
		return p.Destination + " (to be created)"
	}
	return fmt.Sprintf("%s (#%d)", p.Destination, p.destID)
}

func policyBody(p ReplicationPolicy) map[string]any {
	filters := []map[string]any{}
	for _, f := range p.Filters {
		item := map[string]any{"type": f.Type, "value": f.Value}
		if f.Decoration != "" {
			item["decoration"] = f.Decoration
		}
		filters = append(filters, item)
	}
	trigger := map[string]any{"type": p.Trigger}
	if p.Trigger == "scheduled" {
		trigger["trigger_settings"] = map[string]string{"cron": p.Cron}
	}
	// Harbor's handler reads the deprecated deletion into ReplicateDeletion: send both.
	return map[string]any{"name": p.Name, "description": p.Description, "dest_registry": map[string]int64{"id": p.destID},
		"dest_namespace": p.DestNamespace, "dest_namespace_replace_count": p.ReplaceCount, "filters": filters, "trigger": trigger,
		"deletion": p.Deletion, "replicate_deletion": p.Deletion, "override": p.Override, "enabled": p.Enabled}
}

// checkSpec refuses what Harbor would refuse, naming the flag (exit 2), and returns Harbor's cron.
func checkSpec(s ReplicationSpec) (string, *CronTranslation, error) {
	usage := func(format string, a ...any) (string, *CronTranslation, error) {
		return "", nil, exitcode.With(exitcode.Usage, fmt.Errorf(format, a...))
	}
	switch {
	case strings.TrimSpace(s.Name) == "":
		return usage("--name: a replication policy needs a name")
	case strings.TrimSpace(s.Dest.Name) == "":
		return usage("--dest-registry: a replication policy needs a destination")
	case s.ReplaceCount < -1:
		return usage("--dest-namespace-replace-count %d: -1 (Harbor's legacy flattening), 0 (keep the path) or the number of leading components to replace", s.ReplaceCount)
	case s.DestNamespace != "" && !namespacePattern.MatchString(s.DestNamespace):
		return usage("--dest-namespace %q: not a repository path (lower-case letters, digits, . _ - and /)", s.DestNamespace)
	}
	switch s.Trigger {
	case "manual", "event_based":
		if s.Cron != "" {
			return usage("--cron: only a scheduled trigger (--trigger-type scheduled) has a cron")
		}
		return "", nil, nil
	case "scheduled":
		if strings.TrimSpace(s.Cron) == "" {
			return usage("--cron: a scheduled trigger needs a cron, e.g. \"0 2 * * *\"")
		}
		c, translated, err := Cron(s.Cron, true)
		if err != nil {
			return "", nil, exitcode.With(exitcode.Usage, fmt.Errorf("--cron: %w", err))
		}
		var tr *CronTranslation
		if translated {
			tr = &CronTranslation{From: s.Cron, To: c}
		}
		return c, tr, nil
	}
	return usage("--trigger-type %q: manual, scheduled or event_based", s.Trigger)
}

// PutReplication brings the endpoint and the policy to what the spec says: each created when
// missing, updated with the differences named when they differ, left alone when they agree.
// With dryRun nothing is written.
func (h *Harbor) PutReplication(ctx context.Context, s ReplicationSpec, dryRun bool) (*ReplicationPut, error) {
	cron, tr, err := checkSpec(s)
	if err != nil {
		return nil, err
	}
	h.replMu.Lock()
	h.replListed = false // backups list them again
	h.replMu.Unlock()
	res := &ReplicationPut{DryRun: dryRun, Cron: tr, Notes: []string{}, Policy: PutStep{Name: s.Name, Changes: []registry.SettingChange{}}}
	if s.Deletion && s.Trigger != "event_based" {
		res.Notes = append(res.Notes, "Harbor replicates deletions only with an event_based trigger; --deletion has no effect on a "+s.Trigger+" policy")
	}
	destID, err := h.putEndpoint(ctx, s.Dest, dryRun, res)
	if err != nil {
		return res, err
	}
	cur, err := h.policyNamed(ctx, s.Name)
	if err != nil {
		return res, err
	}
	want := wantPolicy(s, cron, destID)
	if cur == nil {
		if dryRun {
			res.Policy.Status = "would-create"
			return res, nil
		}
		const op = "createReplicationPolicy"
		a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: "/replication/policies", body: policyBody(want), ok: []int{http.StatusCreated}})
		if err != nil {
			return res, err
		}
		if res.Policy.ID, err = idFromLocation(op, a, "/replication/policies/"); err != nil {
			return res, err
		}
		res.Policy.Status = "created"
		return res, nil
	}
	if cur.srcID != 0 {
		return res, exitcode.With(exitcode.Usage, fmt.Errorf("replication policy %q pulls from %s into this Harbor; regctl manages push policies (from local) and will not turn it around: rename it or delete it in Harbor", s.Name, cur.Source))
	}
	res.Policy.ID = cur.ID
	if res.Endpoint.Status == "would-create" {
		want.destID = -1 // an endpoint not yet there is another destination
	}
	ch := policyChanges(*cur, want)
	if len(ch) == 0 {
		res.Policy.Status = string(registry.StatusUnchanged)
		return res, nil
	}
	res.Policy.Changes = ch
	if dryRun {
		res.Policy.Status = "would-update"
		return res, nil
	}
	body := policyBody(want)
	body["id"] = cur.ID
	if _, err := h.api.do(ctx, request{op: "updateReplicationPolicy", method: http.MethodPut, path: "/replication/policies/" + strconv.FormatInt(cur.ID, 10), body: body}); err != nil {
		return res, err
	}
	res.Policy.Status = "updated"
	return res, nil
}

// ReplicationTask is one repository an execution copied.
type ReplicationTask struct {
	ID          int64  `json:"id"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Status      string `json:"status"`
	// Log is the last line of a failed task's log (bounded, control characters removed).
	Log string `json:"log,omitempty"`
}

// ReplicationRun is a finished execution.
type ReplicationRun struct {
	ID         int64             `json:"id"`
	Policy     string            `json:"policy"`
	PolicyID   int64             `json:"policyId"`
	Status     string            `json:"status"`
	StatusText string            `json:"statusText,omitempty"`
	Total      int               `json:"total"`
	Failed     int               `json:"failed"`
	Succeeded  int               `json:"succeeded"`
	Tasks      []ReplicationTask `json:"tasks"`
}

// replicationWait bounds the wait for an execution (pollJob).
const replicationWait = 6 * time.Hour

// RunReplication starts the named policy and waits for the execution to finish: its status and
// tasks. An execution that ends other than Success is an error (exit 1) naming the failed tasks.
func (h *Harbor) RunReplication(ctx context.Context, name string) (*ReplicationRun, error) {
	p, err := h.policyNamed(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, exitcode.With(exitcode.NotFound, fmt.Errorf("harbor has no replication policy named %q (replication get lists them)", name))
	}
	if !p.Enabled {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("replication policy %q is disabled; Harbor runs only enabled policies (replication put --enabled)", name))
	}
	const op = "startReplication"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodPost, path: "/replication/executions", body: map[string]int64{"policy_id": p.ID}, ok: []int{http.StatusCreated}})
	if err != nil {
		return nil, err
	}
	eid, err := idFromLocation(op, a, "/replication/executions/")
	if err != nil {
		return nil, err
	}
	run := &ReplicationRun{ID: eid, Policy: p.Name, PolicyID: p.ID, Tasks: []ReplicationTask{}}
	err = pollJob(ctx, replicationWait, func() (bool, error) {
		if err := h.replicationExecution(ctx, run); err != nil {
			return false, err
		}
		return taskDone(run.Status), nil
	})
	if errors.Is(err, errStillRunning) {
		return run, fmt.Errorf("harbor replication execution %d: still %s after %s", eid, run.Status, replicationWait)
	}
	if err != nil {
		return run, err
	}
	if err := h.replicationTasks(ctx, run); err != nil {
		return run, err
	}
	if !taskSucceeded(run.Status) {
		var failed []string
		for _, t := range run.Tasks {
			if t.Status != "Success" && t.Status != "Succeed" {
				s := t.Source + " → " + t.Destination + ": " + t.Status
				if t.Log != "" {
					s += " (" + t.Log + ")"
				}
				failed = append(failed, s)
			}
		}
		msg := fmt.Sprintf("harbor getReplicationExecution: execution %d of %q ended %s", eid, name, run.Status)
		if run.StatusText != "" {
			msg += ": " + run.StatusText
		}
		if len(failed) > 0 {
			msg += "; failed: " + strings.Join(failed, "; ")
		}
		return run, errors.New(msg)
	}
	return run, nil
}

func (h *Harbor) replicationExecution(ctx context.Context, run *ReplicationRun) error {
	const op = "getReplicationExecution"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodGet, path: "/replication/executions/" + strconv.FormatInt(run.ID, 10)})
	if err != nil {
		return err
	}
	var x struct {
		ID         *int64 `json:"id"`
		PolicyID   int64  `json:"policy_id"`
		Status     string `json:"status"`
		StatusText string `json:"status_text"`
		Total      int    `json:"total"`
		Failed     int    `json:"failed"`
		Succeed    int    `json:"succeed"`
	}
	if err := decode(op, a, &x); err != nil {
		return err
	}
	switch {
	case x.ID == nil || *x.ID != run.ID:
		return badAnswer(op, "asked for execution %d, the answer is another", run.ID)
	case x.PolicyID != run.PolicyID:
		return badAnswer(op, "execution %d belongs to policy %d, not %d", run.ID, x.PolicyID, run.PolicyID)
	case !knownTaskStatus(x.Status):
		return badAnswer(op, "execution %d has status %q, which Harbor does not have", run.ID, clean(x.Status, 40))
	case x.Total < 0 || x.Failed < 0 || x.Succeed < 0:
		return badAnswer(op, "execution %d has negative task counts", run.ID)
	}
	run.Status, run.StatusText = x.Status, clean(x.StatusText, 300)
	run.Total, run.Failed, run.Succeeded = x.Total, x.Failed, x.Succeed
	return nil
}

// maxLogLines bounds how many failed tasks' logs are read.
const maxLogLines = 10

func (h *Harbor) replicationTasks(ctx context.Context, run *ReplicationRun) error {
	const op = "listReplicationTasks"
	base := "/replication/executions/" + strconv.FormatInt(run.ID, 10) + "/tasks"
	err := h.api.list(ctx, request{op: op, method: http.MethodGet, path: base}, func(i int, raw json.RawMessage) error {
		var t struct {
			ID     *int64 `json:"id"`
			Src    string `json:"src_resource"`
			Dst    string `json:"dst_resource"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &t); err != nil || t.ID == nil || *t.ID <= 0 {
			return badAnswer(op, "task %d has no id", i)
		}
		if !knownTaskStatus(t.Status) {
			return badAnswer(op, "task %d has status %q, which Harbor does not have", *t.ID, clean(t.Status, 40))
		}
		run.Tasks = append(run.Tasks, ReplicationTask{ID: *t.ID, Source: clean(t.Src, 200), Destination: clean(t.Dst, 200), Status: t.Status})
		return nil
	})
	if err != nil {
		return err
	}
	logs := 0
	for i := range run.Tasks {
		t := &run.Tasks[i]
		if taskSucceeded(t.Status) || logs >= maxLogLines {
			continue
		}
		logs++
		a, err := h.api.do(ctx, request{op: "getReplicationLog", method: http.MethodGet, path: base + "/" + strconv.FormatInt(t.ID, 10) + "/log"})
		if err != nil {
			t.Log = "(the log could not be read: " + clean(err.Error(), 120) + ")"
			continue
		}
		t.Log = lastLine(string(a.body))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return clean(strings.TrimSpace(lines[len(lines)-1]), 200)
}
