package replicate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/registry"
)

// ParsePlatforms reads --platforms: "linux/amd64,linux/arm64/v8" (os/arch[/variant], comma- or
// space-separated). Each needs an OS and an architecture.
func ParsePlatforms(list string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		parts := strings.Split(f, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
			return nil, fmt.Errorf("--platforms: %q is not os/arch[/variant] (e.g. linux/amd64, linux/arm64/v8): %w", f, exitcode.ErrUsage)
		}
		p := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		out = append(out, p)
	}
	if len(out) == 0 && strings.TrimSpace(list) != "" {
		return nil, fmt.Errorf("--platforms: %q names no platform: %w", list, exitcode.ErrUsage)
	}
	return out, nil
}

func platformWanted(p *v1.Platform, want []v1.Platform) bool {
	for _, w := range want {
		if p.OS == w.OS && p.Architecture == w.Architecture && (w.Variant == "" || p.Variant == w.Variant) {
			return true
		}
	}
	return false
}

// filterIndex narrows an index to the wanted platforms: their images, the buildx attestation
// manifests that describe them, and entries that name no platform. Every other field is kept as it
// is. An index that keeps everything is returned unchanged (same digest); a narrowed one is a new
// manifest with a new digest, which is why --platforms says so per tag.
func filterIndex(m *fetched, want []v1.Platform) (*fetched, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(m.raw, &doc); err != nil {
		return nil, fmt.Errorf("index %s: %v: %w", m.parsed.Digest, err, registry.ErrBadAnswer)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil || len(entries) != len(m.parsed.Children) {
		return nil, fmt.Errorf("index %s: its manifests list cannot be read: %w", m.parsed.Digest, registry.ErrBadAnswer)
	}
	kept := map[string]bool{}
	for _, c := range m.parsed.Children {
		if c.Platform != nil && c.Platform.OS != "unknown" && platformWanted(c.Platform, want) {
			kept[c.Digest.String()] = true
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("index %s has no image for --platforms %s", m.parsed.Digest, platformList(want))
	}
	var keep []json.RawMessage
	var children []v1.Descriptor
	for i, c := range m.parsed.Children {
		ref := c.Annotations["vnd.docker.reference.digest"]
		switch {
		case kept[c.Digest.String()]:
		case ref != "" && kept[ref]: // the attestation of a kept image
		case c.Platform == nil:
		default:
			continue
		}
		keep = append(keep, entries[i])
		children = append(children, c)
	}
	if len(keep) == len(entries) {
		return m, nil
	}
	list, err := json.Marshal(keep)
	if err != nil {
		return nil, err
	}
	doc["manifests"] = list
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	parsed := *m.parsed
	parsed.Digest, parsed.Size, parsed.Children = d, size, children
	return &fetched{raw: raw, parsed: &parsed}, nil
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
