#!/usr/bin/env bash
# Runs every test of switchboard: formatting, vet, and the whole Go suite
# with the race detector, which includes the end-to-end tests against real
# PostgreSQL, SIPp and headless Chromium. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

# It builds and vets where Go users work: Linux (above), macOS and Windows.
# Code for one system goes in build-tagged files (x_unix.go, x_linux.go,
# x_other.go with //go:build !unix), never behind a runtime check.
for goos in darwin windows; do
	GOOS=$goos go build ./...
	GOOS=$goos go vet ./...
done

# Static analysis and known vulnerabilities: both must be clean.
# No staticcheck check is turned off; one that ever must be goes in a
# staticcheck.conf with the reason.
"$(go env GOPATH)/bin/staticcheck" ./...
./scripts/vulncheck.sh

# Missing dependencies fail tests instead of skipping them.
export CI="${CI:-true}"
go test -race -count=1 -timeout 20m "$@" ./...

# Every fuzz target of the parsers we own runs a bounded number of inputs
# on top of its corpus (testdata/fuzz); a failing input is saved there to
# commit. A count, not a duration: a duration's deadline can expire while
# a worker is busy on a loaded machine, and go test then fails the target
# with "context deadline exceeded" though no input failed.
if [ "$#" -eq 0 ]; then
	fuzztime="${FUZZTIME:-20000x}"
	for pkg in $(go list ./...); do
		dir=$(go list -f '{{.Dir}}' "$pkg")
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
			echo "fuzz: $pkg $target ($fuzztime)" >&2
			if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
				echo "$out" >&2
				exit 1
			fi
		done
	done
fi
