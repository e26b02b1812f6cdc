#!/usr/bin/env bash
# Installs what switchboard's tests and dev mode need on Debian, once:
# PostgreSQL server binaries, SIPp (sip-tester), Kamailio (the SIP front-end
# of deploy/), Chromium, versitygw (S3), helm and docker-compose (to check
# deploy/), promtool (to check the alert rules), staticcheck and
# govulncheck. Idempotent; fails loudly when something cannot be installed.
set -euo pipefail

need=()
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || need+=(postgresql)
if [ "${1:-}" != "--postgres-only" ]; then
	command -v sipp >/dev/null || need+=(sip-tester)
	command -v kamailio >/dev/null || need+=(kamailio)
	command -v chromium >/dev/null || need+=(chromium)
	command -v unshare >/dev/null || need+=(util-linux)
	command -v ip >/dev/null || need+=(iproute2)
fi

# versitygw, a real S3 gateway over a folder, for the recordings tests. It
# is a Go program: built from the module proxy into Go's bin folder.
if [ "${1:-}" != "--postgres-only" ]; then
	gobin="$(go env GOPATH)/bin"
	if ! command -v versitygw >/dev/null && [ ! -x "$gobin/versitygw" ]; then
		echo "deps: building versitygw (S3-compatible server for tests)" >&2
		GOBIN="$gobin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	fi
	# helm renders and lints deploy/helm; docker-compose validates
	# deploy/compose.yaml (neither talks to a cluster or an engine).
	if ! command -v helm >/dev/null && [ ! -x "$gobin/helm" ]; then
		echo "deps: building helm (to check deploy/helm)" >&2
		GOBIN="$gobin" go install helm.sh/helm/v3/cmd/helm@v3.17.3
	fi
	command -v docker-compose >/dev/null || need+=(docker-compose)
	# promtool checks the alert rules of deploy/prometheus and the chart;
	# Debian ships it in the prometheus package (the server is not started).
	command -v promtool >/dev/null || need+=(prometheus)
fi

# The static checks scripts/test.sh runs: staticcheck, and govulncheck with
# the vulnerability database's indexer (scripts/vulncheck.sh says why).
# Pinned versions, from the module proxy.
[ "${1:-}" = "--postgres-only" ] || for tool in honnef.co/go/tools/cmd/staticcheck@v0.8.2 golang.org/x/vuln/cmd/govulncheck@v1.9.0 \
	golang.org/x/vulndb/cmd/indexdb@v0.0.0-20261105234957-e22db6528018; do
	name=${tool%@*}
	name=${name##*/}
	stamp="$gobin/.$name.version"
	if [ ! -x "$gobin/$name" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$tool" ]; then
		echo "deps: building $tool" >&2
		GOBIN="$gobin" go install "$tool"
		echo "$tool" >"$stamp"
	fi
done

[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
	echo "deps: missing ${need[*]} and no apt-get to install them; install them by hand" >&2
	exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
