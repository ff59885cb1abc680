package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildInfo describes the binary.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
			}
		}
	}
	return b
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(_ *cobra.Command, _ []string) error {
			b := currentBuild()
			if ok, err := g.printStructured(b); ok {
				return err
			}
			commit := b.Commit
			if commit == "" {
				commit = "unknown"
			}
			fmt.Fprintf(g.stdout, "tenantmesh %s (commit %s, %s)\n", b.Version, commit, b.GoVersion)
			return nil
		},
	}
}
