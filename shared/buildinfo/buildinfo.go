// Package buildinfo says which build a binary is: the module version, the
// commit and the build date, the same way for every program and the report.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows of its own build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	Go        string `json:"go"`
}

// Read returns this binary's build. commit and date are what `make build`
// stamped with -ldflags -X (empty otherwise); without them the Go
// toolchain's VCS stamp (revision and commit time) speaks instead.
func Read(commit, date string) Info {
	in := Info{Version: "(devel)", Commit: commit, BuildDate: date, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && in.Commit == "" && len(s.Value) >= 12:
			in.Commit = s.Value[:12]
		case s.Key == "vcs.time" && in.BuildDate == "":
			in.BuildDate = s.Value
		}
	}
	// A pseudo-version already ends in the commit: say it once.
	if in.Commit != "" && strings.HasSuffix(strings.TrimSuffix(in.Version, "+dirty"), in.Commit) {
		in.Commit = ""
	}
	return in
}

// String is one line: "NAME VERSION, commit C, built D, goX".
func (in Info) String(name string) string {
	s := name + " " + in.Version
	if in.Commit != "" {
		s += ", commit " + in.Commit
	}
	if in.BuildDate != "" {
		s += ", built " + in.BuildDate
	}
	return s + ", " + in.Go
}

// Short is the version and commit, for a report's footer.
func (in Info) Short() string {
	if in.Commit == "" {
		return in.Version
	}
	return in.Version + " " + in.Commit
}
