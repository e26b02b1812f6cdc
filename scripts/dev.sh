#!/usr/bin/env bash
# Runs switchboard on its embedded default: installs PostgreSQL's server
# binaries when missing, then `switchboard dev` (private database, demo
# tenant, operator and trunk). Extra arguments go to `switchboard dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --postgres-only
exec go run ./cmd/switchboard dev "$@"
