package harbor

import (
	"context"
	"errors"

	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// vulnReportMIME is the report type regctl asks Harbor for (X-Accept-Vulnerabilities): the one
// Harbor's scanner adapters produce since v2.1.
const vulnReportMIME = "application/vnd.security.vulnerability.report; version=1.1"

// scanWait and maxScanPolls bound how long NativeScan waits for Harbor's scan job (pollJob).
const (
	scanWait     = 30 * time.Minute
	maxScanPolls = 2000
	// noReportPolls: Harbor writes the report's summary (Pending) before it answers 202, so an
	// artifact that still shows none after this many polls has no scan coming.
	noReportPolls = 5
)

// NativeScan starts Harbor's scan of repo@digest (scanArtifact), polls the artifact's
// scan_overview until the job ends, and reads the report (getVulnerabilitiesAddition). A scan
// that ends in Error or Stopped is an error naming the status; an index cannot be scanned by
// Harbor (422, exit 2: scan its platforms).
func (h *Harbor) NativeScan(ctx context.Context, repo string, digest v1.Hash) ([]registry.Finding, error) {
	project, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	art := repoPath(project, name) + "/artifacts/" + url.PathEscape(digest.String())
	accept := http.Header{"X-Accept-Vulnerabilities": {vulnReportMIME}}
	_, err = h.api.do(ctx, request{op: "scanArtifact", method: http.MethodPost, path: art + "/scan",
		body: map[string]string{"scan_type": "vulnerability"}, ok: []int{http.StatusAccepted}})
	switch {
	case err == nil:
	case statusOf(err) == http.StatusConflict: // a scan already running (scan on push): wait for it
	case statusOf(err) == http.StatusPreconditionFailed:
		return nil, exitcode.With(exitcode.Error, fmt.Errorf("%s: Harbor has no scanner for project %s (regctl harbor health shows it): %w", repo, project, err))
	case statusOf(err) == http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("%s@%s: Harbor's scanner cannot scan this artifact (an index: scan a platform with --platform): %w", repo, digest, err)
	default:
		return nil, err
	}

	var findings []registry.Finding
	poll := 0
	err = pollJob(ctx, scanWait, func() (bool, error) {
		status, err := h.scanStatus(ctx, art, accept)
		if err != nil {
			return false, err
		}
		if status == "" && poll >= noReportPolls {
			return false, badAnswer("getArtifact", "%s@%s: Harbor accepted the scan but shows no report for it after %d polls", repo, digest, poll+1)
		}
		switch status {
		case "Success":
			findings, err = h.scanReport(ctx, art, accept, repo, digest)
			return true, err
		case "Error", "Stopped":
			return false, fmt.Errorf("harbor getArtifact: the scan of %s@%s ended %s (the scanner's log is in Harbor: artifact → Vulnerabilities)", repo, digest, status)
		}
		if poll++; poll > maxScanPolls {
			return false, fmt.Errorf("harbor scanArtifact: the scan of %s@%s is still %q after %d polls", repo, digest, status, maxScanPolls)
		}
		return false, nil
	})
	if errors.Is(err, errStillRunning) {
		return nil, fmt.Errorf("harbor scanArtifact: the scan of %s@%s is still running after %s", repo, digest, scanWait)
	}
	if err != nil {
		return nil, err
	}
	return findings, nil
}

// scanStatus is the scan_status of the artifact's report summary ("" while Harbor has none yet).
func (h *Harbor) scanStatus(ctx context.Context, art string, accept http.Header) (string, error) {
	const op = "getArtifact"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodGet, path: art, header: accept,
		query: url.Values{"with_scan_overview": {"true"}, "with_tag": {"false"}}})
	if err != nil {
		return "", err
	}
	var dto struct {
		Overview map[string]*struct {
			Status *string `json:"scan_status"`
		} `json:"scan_overview"`
	}
	if err := decode(op, a, &dto); err != nil {
		return "", err
	}
	sum := dto.Overview[vulnReportMIME]
	if sum == nil {
		return "", nil // the job has not written its summary yet
	}
	if sum.Status == nil {
		return "", badAnswer(op, "scan_overview has no scan_status")
	}
	switch s := *sum.Status; s {
	case "Success", "Error", "Stopped", "Pending", "Running", "Scheduled", "":
		return s, nil
	default:
		return "", badAnswer(op, "scan_overview's scan_status %q is none of Harbor's", clean(s, 40))
	}
}

// scanReport reads and checks Harbor's vulnerability report.
func (h *Harbor) scanReport(ctx context.Context, art string, accept http.Header, repo string, digest v1.Hash) ([]registry.Finding, error) {
	const op = "getVulnerabilitiesAddition"
	a, err := h.api.do(ctx, request{op: op, method: http.MethodGet, path: art + "/additions/vulnerabilities", header: accept})
	if err != nil {
		return nil, err
	}
	var byType map[string]*struct {
		Vulnerabilities *[]struct {
			ID            string   `json:"id"`
			Package       string   `json:"package"`
			Version       string   `json:"version"`
			FixVersion    string   `json:"fix_version"`
			Severity      string   `json:"severity"`
			Description   string   `json:"description"`
			Links         []string `json:"links"`
			PreferredCVSS *struct {
				ScoreV3 *float64 `json:"score_v3"`
			} `json:"preferred_cvss"`
		} `json:"vulnerabilities"`
	}
	if err := decode(op, a, &byType); err != nil {
		return nil, err
	}
	rep := byType[vulnReportMIME]
	if rep == nil || rep.Vulnerabilities == nil {
		return nil, badAnswer(op, "%s@%s: the scan ended Success but the answer has no %s report with vulnerabilities", repo, digest, vulnReportMIME)
	}
	out := make([]registry.Finding, 0, len(*rep.Vulnerabilities))
	for i, v := range *rep.Vulnerabilities {
		sev, ok := harborSeverity(v.Severity)
		switch {
		case v.ID == "" || v.Package == "":
			return nil, badAnswer(op, "vulnerabilities[%d] has no id or package", i)
		case !ok:
			return nil, badAnswer(op, "vulnerabilities[%d] (%s): severity %q is none of Harbor's", i, clean(v.ID, 40), clean(v.Severity, 20))
		}
		f := registry.Finding{VulnerabilityID: v.ID, PkgName: v.Package, InstalledVersion: v.Version, FixedVersion: v.FixVersion,
			Severity: sev, Title: clean(v.Description, 200)}
		if len(v.Links) > 0 {
			f.URL = v.Links[0]
		}
		if v.PreferredCVSS != nil && v.PreferredCVSS.ScoreV3 != nil && *v.PreferredCVSS.ScoreV3 >= 0 && *v.PreferredCVSS.ScoreV3 <= 10 {
			f.CVSS = *v.PreferredCVSS.ScoreV3
		}
		out = append(out, f)
	}
	return out, nil
}

// harborSeverity maps Harbor's severities onto trivy's: Negligible is LOW (as Harbor's own
// ordering puts it below Low), None and Unknown are UNKNOWN.
func harborSeverity(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "critical":
		return "CRITICAL", true
	case "high":
		return "HIGH", true
	case "medium":
		return "MEDIUM", true
	case "low", "negligible":
		return "LOW", true
	case "unknown", "none", "":
		return "UNKNOWN", true
	}
	return "", false
}

var _ registry.NativeScanner = (*Harbor)(nil)
