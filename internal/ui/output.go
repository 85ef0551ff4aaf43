package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"gopkg.in/yaml.v3"
)

// Format is the -o output format.
type Format string

const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatTable, FormatJSON, FormatYAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: must be one of table, json, yaml", s)
}

// WriteJSON writes v as indented JSON with a trailing newline: the stable machine format.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteYAML writes v as YAML. It goes through JSON first so that YAML and JSON use the same field
// names (the json tags) and omit the same empty fields.
func WriteYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := yaml.Unmarshal(raw, &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

// Table is a result rendered as rows. On a terminal it is drawn with lipgloss; on a pipe it is plain,
// tab-aligned text with an upper-case header, stable for grep and awk.
type Table struct {
	Headers []string
	Rows    [][]string
}

// Render writes the table for a terminal (tty) or a pipe.
func (t Table) Render(w io.Writer, tty, color bool) error {
	if !tty {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.Headers, "\t")))
		for _, r := range t.Rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	headerStyle := lipgloss.NewStyle().Bold(true).Padding(0, 1)
	cellStyle := lipgloss.NewStyle().Padding(0, 1)
	if !color {
		headerStyle = lipgloss.NewStyle().Padding(0, 1)
	}
	tbl := table.New().
		Border(lipgloss.RoundedBorder()).
		Headers(t.Headers...).
		Rows(t.Rows...).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				return headerStyle
			}
			return cellStyle
		})
	_, err := fmt.Fprintln(w, tbl.Render())
	return err
}

// Render writes v in the chosen format; table() builds the table form only when it is needed.
func Render(s *IOStreams, f Format, v any, table func() Table) error {
	switch f {
	case FormatJSON:
		return WriteJSON(s.Out, v)
	case FormatYAML:
		return WriteYAML(s.Out, v)
	default:
		return table().Render(s.Out, s.OutTTY, s.ColorOut())
	}
}
