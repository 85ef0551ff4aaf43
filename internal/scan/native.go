//lint:file-ignore SA1019 Severity is what trivy v0.74 itself reports and gates on (VendorSeverity is per source); findings parity with the trivy CLI needs it

package scan

import (
	"context"

	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/clock"
	"github.com/aquasecurity/trivy/pkg/types"

	"github.com/regctl-dev/regctl/internal/registry"
)

// NativeTarget turns a registry scanner's findings into a Target shaped like trivy's report, so the
// same gate, ignore file and report writers apply to `--engine native`.
func NativeTarget(ctx context.Context, ref, digest, engine string, findings []registry.Finding, o ScanOptions) (Target, error) {
	res := types.Result{Target: ref + " (" + engine + " scan)", Class: types.ClassOSPkg}
	for _, f := range findings {
		v := types.DetectedVulnerability{VulnerabilityID: f.VulnerabilityID, PkgName: f.PkgName, InstalledVersion: f.InstalledVersion,
			FixedVersion: f.FixedVersion, PrimaryURL: f.URL, SeveritySource: dbtypes.SourceID(engine)}
		v.Title, v.Severity = f.Title, f.Severity
		if f.FixedVersion != "" {
			v.Status = dbtypes.StatusFixed
		} else {
			v.Status = dbtypes.StatusAffected
		}
		if f.CVSS > 0 {
			v.CVSS = dbtypes.VendorCVSS{dbtypes.SourceID(engine): {V3Score: f.CVSS}}
		}
		res.Vulnerabilities = append(res.Vulnerabilities, v)
	}
	report := types.Report{SchemaVersion: 2, ArtifactName: ref, ArtifactType: "container_image", Results: types.Results{res}}
	gateResults, err := filterReport(clock.With(ctx, o.Now), &report, o)
	if err != nil {
		return Target{}, err
	}
	return Target{Reference: ref, Digest: digest, Report: report, GateResults: gateResults}, nil
}
