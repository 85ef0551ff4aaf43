package harbortest

import (
	"context"
	"encoding/json"

	"net/http"
	"strings"
	"time"
)

// VulnReportMIME is the report type Harbor's scanners produce and regctl asks for.
const VulnReportMIME = "application/vnd.security.vulnerability.report; version=1.1"

// Vulnerability is one finding of a scan, as Harbor's vulnerability report lists it.
type Vulnerability struct {
	ID          string
	Package     string
	Version     string
	FixVersion  string
	Severity    string // Harbor's spelling: Critical, High, Medium, Low, Negligible, Unknown
	Description string
	Links       []string
	CVSS3       float64
}

// Scanner scans repository@digest on the emulator's data plane, as Harbor's scanner adapter does.
// Tests plug in a real scanner (regctl's trivy engine); without one, scans succeed with what
// SetVulnerabilities set (nothing by default).
type Scanner func(ctx context.Context, repository, digest string) ([]Vulnerability, error)

// scanJob is one artifact's last scan.
type scanJob struct {
	reportID   string
	status     string // Pending, Running, Success, Error
	start, end time.Time
	vulns      []Vulnerability
	err        string
}

// SetVulnerabilities decides what a scan of repository@digest reports when no Scanner is set.
func (e *Emulator) SetVulnerabilities(repository, digest string, v []Vulnerability) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fixedVulns[repository+"@"+digest] = v
}

// startScan answers scanArtifact: 202, and the scan runs in the background as Harbor's job service
// runs it; the artifact's scan_overview shows Running until it ends. Images only: an index has no
// layers of its own (422); a Harbor without a scanner answers 412 (its controller's
// PreconditionFailed, which its spec does not list).
func (e *Emulator) startScan(w http.ResponseWriter, r *http.Request, who principal, p *project, rp *repository, a *artifact) {
	if !who.can(e, p.name, "scan", "create") {
		denied(w, who, "scan artifacts of "+rp.name)
		return
	}
	if strings.Contains(a.manifestType, "index") || strings.Contains(a.manifestType, "manifest.list") || a.accessory != "" {
		writeErr(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "the configured scanner does not support scanning the artifact "+a.digest)
		return
	}
	if len(e.scanners) == 0 {
		writeErr(w, http.StatusPreconditionFailed, "PRECONDITION", "no available scanner for project "+p.name)
		return
	}
	if r.ContentLength > 0 {
		var body struct {
			ScanType string `json:"scan_type"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || (body.ScanType != "" && body.ScanType != "vulnerability") {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "scan_type must be vulnerability (the emulator has no SBOM scanner)")
			return
		}
	}
	key := rp.name + "@" + a.digest
	if j := e.scans[key]; j != nil && (j.status == "Running" || j.status == "Pending") {
		writeErr(w, http.StatusConflict, "CONFLICT", "a scan of "+key+" is running")
		return
	}
	job := &scanJob{reportID: randomSecret()[:16], status: "Running", start: e.now()}
	e.scans[key] = job
	scanner, fixed := e.scanner, e.fixedVulns[key]
	e.scanWG.Add(1)
	go func() {
		defer e.scanWG.Done()
		vulns, err := fixed, error(nil)
		if scanner != nil {
			vulns, err = scanner(context.Background(), rp.name, a.digest)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		job.end = e.now()
		if err != nil {
			job.status, job.err = "Error", err.Error()
			return
		}
		job.status, job.vulns = "Success", vulns
	}()
	w.WriteHeader(http.StatusAccepted)
}

// severityRank orders Harbor's severities for a report's overall severity.
var severityRank = map[string]int{"None": 0, "Unknown": 1, "Negligible": 2, "Low": 3, "Medium": 4, "High": 5, "Critical": 6}

func (j *scanJob) severity() string {
	top := "None"
	for _, v := range j.vulns {
		if severityRank[v.Severity] > severityRank[top] {
			top = v.Severity
		}
	}
	return top
}

// scanOverview is the artifact's scan_overview: NativeReportSummary by report MIME type.
func (e *Emulator) scanOverview(rp *repository, a *artifact) map[string]any {
	j := e.scans[rp.name+"@"+a.digest]
	if j == nil {
		return nil
	}
	counts := map[string]int{}
	fixable := 0
	for _, v := range j.vulns {
		counts[v.Severity]++
		if v.FixVersion != "" {
			fixable++
		}
	}
	sum := map[string]any{"report_id": j.reportID, "scan_status": j.status, "start_time": ts(j.start), "complete_percent": 0,
		"scanner": map[string]any{"name": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"}}
	if j.status == "Success" || j.status == "Error" {
		sum["end_time"], sum["complete_percent"] = ts(j.end), 100
		sum["duration"] = int64(j.end.Sub(j.start).Seconds())
	}
	if j.status == "Success" {
		sum["severity"] = j.severity()
		sum["summary"] = map[string]any{"total": len(j.vulns), "fixable": fixable, "summary": counts}
	}
	return map[string]any{VulnReportMIME: sum}
}

// vulnerabilities answers getVulnerabilitiesAddition: the report JSON by MIME type ({} before a
// scan finished), as Harbor's handler writes it.
func (e *Emulator) vulnerabilities(w http.ResponseWriter, who principal, p *project, rp *repository, a *artifact) {
	if !who.can(e, p.name, "artifact-addition", "read") && !who.can(e, p.name, "artifact", "read") {
		denied(w, who, "read the vulnerabilities of "+rp.name)
		return
	}
	j := e.scans[rp.name+"@"+a.digest]
	if j == nil || j.status != "Success" {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	vulns := []map[string]any{}
	for _, v := range j.vulns {
		item := map[string]any{"id": v.ID, "package": v.Package, "version": v.Version, "fix_version": v.FixVersion,
			"severity": v.Severity, "description": v.Description, "links": v.Links, "artifact_digests": []string{a.digest}}
		if v.Links == nil {
			item["links"] = []string{}
		}
		if v.CVSS3 > 0 {
			item["preferred_cvss"] = map[string]any{"score_v3": v.CVSS3}
		}
		vulns = append(vulns, item)
	}
	report := map[string]any{"generated_at": ts(j.end), "artifact": map[string]any{"repository": rp.name, "digest": a.digest},
		"scanner":  map[string]any{"name": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"},
		"severity": j.severity(), "vulnerabilities": vulns}
	writeJSON(w, http.StatusOK, map[string]any{VulnReportMIME: report})
}

// ScanStatus is the last scan of repository@digest: its status and error, for tests.
func (e *Emulator) ScanStatus(repository, digest string) (status, errMsg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j := e.scans[repository+"@"+digest]; j != nil {
		return j.status, j.err
	}
	return "", ""
}
