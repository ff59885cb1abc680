package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// printYAML writes v as YAML (through its JSON form, so field names are
// those of the manifests).
func printYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	return nil
}

// printStructured writes v as JSON or YAML per -o; it reports false for
// -o table, which the caller prints itself.
func (g *globals) printStructured(v any) (bool, error) {
	switch g.output {
	case "json":
		return true, printJSON(g.stdout, v)
	case "yaml":
		return true, printYAML(g.stdout, v)
	}
	return false, nil
}

// printTable writes aligned columns with an upper-case header.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// orNone shows empty cells as kubectl does.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
