package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/buildinfo"
)

// Set by `make build` (-ldflags -X) for a release; otherwise the Go
// toolchain's VCS stamp speaks (buildinfo.Read).
var (
	commit    string
	buildDate string
)

func currentVersion() buildinfo.Info { return buildinfo.Read(commit, buildDate) }

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, build date and Go version",
		Example: "  manage-licenses version\n  manage-licenses --json version",
		RunE: func(*cobra.Command, []string) error {
			if a.jsonOut {
				return a.printJSON(currentVersion())
			}
			fmt.Fprintln(a.stdout, currentVersion().String("manage-licenses"))
			return nil
		},
	}
}
