package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/report"
)

// Set by `make build` (-ldflags -X); a plain `go build` leaves them empty
// and the module's build information speaks instead.
var (
	commit    string
	buildDate string
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	Go        string `json:"go"`
}

func currentVersion() versionInfo {
	return versionInfo{Version: report.BuildVersion(), Commit: commit, BuildDate: buildDate, Go: runtime.Version()}
}

func (v versionInfo) String() string {
	s := "manage-licenses " + v.Version
	if v.Commit != "" {
		s += ", commit " + v.Commit
	}
	if v.BuildDate != "" {
		s += ", built " + v.BuildDate
	}
	return s + ", " + v.Go
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, build date and Go version",
		Example: "  manage-licenses version\n  manage-licenses --json version",
		RunE: func(*cobra.Command, []string) error {
			if a.jsonOut {
				return a.printJSON(currentVersion())
			}
			fmt.Fprintln(a.stdout, currentVersion())
			return nil
		},
	}
}
