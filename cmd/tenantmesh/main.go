// Command tenantmesh runs the control plane (`tenantmesh serve`) and
// manages tenants, tiers, API keys and the audit trail in etcd.
package main

import "os"

func main() {
	os.Exit(execute(newRootCmd(os.Stdin, os.Stdout, os.Stderr), os.Args[1:]))
}
