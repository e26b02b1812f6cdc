#!/usr/bin/env bash
# Checks switchboard's code and modules against the Go vulnerability
# database with govulncheck (installed by scripts/deps.sh).
#
# Where the database comes from: govulncheck reads https://vuln.go.dev by
# default, which the test machines cannot reach (only the Go module proxy
# and the package registries are). The same reports are published as the
# golang.org/x/vulndb module (its data/osv folder); its newest version on
# the module proxy is indexed into a local database with that module's own
# cmd/indexdb, once per version, and govulncheck reads it with -db file://.
# The reports are as fresh as the module's newest version (the proxy serves
# the repository's latest commit). If the proxy cannot be asked, the check
# fails: a vulnerability check that silently skips is no check.
#
# Which toolchain: the standard library is checked at the version go.mod's
# toolchain line names (GOTOOLCHAIN=auto fetches it from the module proxy),
# which is what release builds (the Dockerfile) use; a machine whose go env
# says GOTOOLCHAIN=local may run the tests with an older patch release.
set -euo pipefail
cd "$(dirname "$0")/.."

gobin="$(go env GOPATH)/bin"
version=$(go list -m -f '{{.Version}}' golang.org/x/vulndb@latest)
db="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/vulndb/$version"
if [ ! -f "$db/index/modules.json" ]; then
	echo "vulncheck: indexing golang.org/x/vulndb@$version" >&2
	src=$(go mod download -json "golang.org/x/vulndb@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	mkdir -p "${db%/*}"
	tmp=$(mktemp -d "$db.tmp.XXXXXX")
	"$gobin/indexdb" -vulns "$src/data/osv" -out "$tmp"
	rm -rf "$db"
	mv "$tmp" "$db"
fi
GOTOOLCHAIN=auto "$gobin/govulncheck" -db "file://$db" ./...
