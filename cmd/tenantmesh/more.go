package main

import "github.com/spf13/cobra"

// moreCommands are the commands of the data-path parts (xDS, Envoy
// bootstraps, tokens, Kubernetes, shared services, demo). One line each,
// so parts can be added without touching root.go.
func moreCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		newXDSCmd(g),
		newEnvoyCmd(g),
		newTokenCmd(g),
		newDemoBackendCmd(g),
		newK8sCmd(g),
		newSharedCmd(g),
		newCertsCmd(g),
	}
}
