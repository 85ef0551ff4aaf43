package harbor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/regctl-dev/regctl/internal/exitcode"
)

// Check is one line of a health report.
type Check struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok | fail | unknown
	Detail string `json:"detail,omitempty"`
}

// HealthReport is what `regctl harbor health` prints: the install check of the guide's §3.1.
type HealthReport struct {
	Registry string  `json:"registry"`
	URL      string  `json:"url"`
	Version  string  `json:"version,omitempty"`
	Healthy  bool    `json:"healthy"`
	Checks   []Check `json:"checks"`
}

// Health pings the API, reads component health (health), the version (getSystemInfo) and the
// registered scanners (listScanners). Every check runs; a failed one is a "fail" line, not an
// early return, so one run shows everything that is wrong. A check the credentials may not make
// (scanners need a system permission) is "unknown", not "fail".
func (h *Harbor) Health(ctx context.Context) *HealthReport {
	rep := &HealthReport{Registry: h.name, URL: redact(h.api.base)}
	add := func(name, status, detail string) { rep.Checks = append(rep.Checks, Check{name, status, detail}) }

	if a, err := h.api.do(ctx, request{op: "getPing", method: http.MethodGet, path: "/ping"}); err != nil {
		add("ping", "fail", err.Error())
	} else if body := string(bytes.TrimSpace(a.body)); body != "Pong" {
		add("ping", "fail", fmt.Sprintf("harbor getPing: the answer is %q, not Pong (not a Harbor API?)", clean(preview(a.body), 40)))
	} else {
		add("ping", "ok", "Pong")
	}

	if a, err := h.api.do(ctx, request{op: "getHealth", method: http.MethodGet, path: "/health"}); err != nil {
		add("health", "fail", err.Error())
	} else {
		var dto struct {
			Status     string `json:"status"`
			Components []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
				Error  string `json:"error"`
			} `json:"components"`
		}
		switch err := decode("getHealth", a, &dto); {
		case err != nil:
			add("health", "fail", err.Error())
		case dto.Status == "" || len(dto.Components) == 0:
			add("health", "fail", "harbor getHealth: the answer has no status or no components")
		default:
			sort.Slice(dto.Components, func(i, j int) bool { return dto.Components[i].Name < dto.Components[j].Name })
			for i, c := range dto.Components {
				name := "component " + clean(c.Name, 40)
				if c.Name == "" {
					name = fmt.Sprintf("component [%d]", i)
				}
				switch {
				case c.Status == "healthy":
					add(name, "ok", "healthy")
				case c.Error != "":
					add(name, "fail", clean(c.Status, 20)+": "+clean(c.Error, 200))
				default:
					add(name, "fail", clean(c.Status, 20))
				}
			}
			if dto.Status != "healthy" && !hasFail(rep.Checks) {
				add("health", "fail", "overall status "+clean(dto.Status, 20)+" with every component healthy")
			}
		}
	}

	if a, err := h.api.do(ctx, request{op: "getSystemInfo", method: http.MethodGet, path: "/systeminfo"}); err != nil {
		add("version", "fail", err.Error())
	} else {
		var dto struct {
			Version  string `json:"harbor_version"`
			ReadOnly bool   `json:"read_only"`
		}
		switch err := decode("getSystemInfo", a, &dto); {
		case err != nil:
			add("version", "fail", err.Error())
		case dto.Version == "":
			add("version", "unknown", "systeminfo has no harbor_version (Harbor shows it only to signed-in users: check the credentials)")
		default:
			rep.Version = clean(dto.Version, 40)
			add("version", "ok", rep.Version)
		}
		if dto.ReadOnly {
			add("read-only", "fail", "Harbor is in read-only mode: pushes and deletes are refused")
		}
	}

	var scanners []json.RawMessage
	a, err := h.api.do(ctx, request{op: "listScanners", method: http.MethodGet, path: "/scanners"})
	if err == nil {
		err = decode("listScanners", a, &scanners)
	}
	switch {
	case exitcode.Of(err) == exitcode.Auth:
		add("scanner", "unknown", "listing scanners needs an admin or a system robot with scanner:list")
	case err != nil:
		add("scanner", "fail", err.Error())
	default:
		add(scannerCheck(scanners))
	}
	rep.Healthy = !hasFail(rep.Checks)
	return rep
}

// scannerCheck: a Harbor needs an enabled default scanner for scan on push and native scans.
func scannerCheck(raw []json.RawMessage) (string, string, string) {
	var names []string
	def := ""
	for i, r := range raw {
		var s struct {
			Name      string `json:"name"`
			Disabled  bool   `json:"disabled"`
			IsDefault bool   `json:"is_default"`
			Version   string `json:"version"`
		}
		if err := json.Unmarshal(r, &s); err != nil || s.Name == "" {
			return "scanner", "fail", fmt.Sprintf("harbor listScanners: scanners[%d] is not a scanner registration", i)
		}
		n := clean(s.Name, 40)
		if s.Disabled {
			n += " (disabled)"
		} else if s.IsDefault {
			def = clean(s.Name, 40) + " " + clean(s.Version, 20)
		}
		names = append(names, n)
	}
	switch {
	case len(names) == 0:
		return "scanner", "fail", "no scanner registered: scan on push and regctl scan --engine native cannot run (the chart's trivy.enabled)"
	case def == "":
		return "scanner", "fail", "no enabled default scanner among " + strings.Join(names, ", ")
	}
	return "scanner", "ok", strings.TrimSpace(def) + " (default)"
}

func hasFail(cs []Check) bool {
	for _, c := range cs {
		if c.Status == "fail" {
			return true
		}
	}
	return false
}
