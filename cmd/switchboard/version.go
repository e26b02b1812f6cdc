package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set when the binary is linked:
//
//	go build -ldflags "-X main.version=1.4.0" ./cmd/switchboard
//
// The Dockerfile sets it from its VERSION build argument.
var version = "dev"

// revision, when set the same way, names the revision the binary was built
// from where the toolchain cannot see the repository (a Docker build
// without .git); else the toolchain's VCS stamp does.
var revision = ""

// buildInfo is what this binary is: its version, the revision it was built
// from (from the Go toolchain's VCS stamp, "-dirty" if the tree had
// changes; "unknown" without one) and the Go version.
type buildInfo struct {
	Version, Revision, GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if b.Version == "" { // -X main.version= with an empty value
		b.Version = "dev"
	}
	if revision != "" {
		b.Revision = revision
		return b
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && b.Revision != "unknown" {
		b.Revision += "-dirty"
	}
	return b
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Prints the version, the revision it was built from and the Go version.", stderr)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	b := readBuildInfo()
	fmt.Fprintf(stdout, "switchboard %s (revision %s, %s)\n", b.Version, b.Revision, b.GoVersion)
	return nil
}
