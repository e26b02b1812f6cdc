#!/usr/bin/env bash
# A soak run: switchboard (`switchboard dev`, private PostgreSQL) under a
# steady load for a bounded time, many short calls cycling through the
# same operators, then the service's goroutines, heap and open files
# compared from before the first call to after the last. Writes a
# Markdown section to the -o file (default: stdout).
# Usage: scripts/soak.sh [-o file] [calls] [duration] [hold]
# (defaults: 100 concurrent calls, 10m, 5s each).
set -euo pipefail
cd "$(dirname "$0")/.."
out=/dev/stdout
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
calls=${1:-100}; duration=${2:-10m}; hold=${3:-5s}
./scripts/deps.sh --postgres-only

work=$(mktemp -d)
chmod 755 "$work"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/switchboard" ./cmd/switchboard
go build -o "$work/switchboard-load" ./cmd/switchboard-load
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
start_service

echo "soak: $calls concurrent calls of $hold for $duration" >&2
"$work/switchboard-load" -database-url "$db" -http-url "http://127.0.0.1:$http" -metrics-url "http://127.0.0.1:$metrics/metrics" -sip-addr "127.0.0.1:$sip" \
	-pid "$pid" -calls "$calls" -rate 50 -hold "$hold" -duration "$duration" -json "$work/soak.json" >&2

python3 - "$work/soak.json" "$calls" "$duration" "$hold" >"$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b, a = r["service_runtime_before"], r["service_runtime_after"]
fails = sum(r["failures"].values()) if r["failures"] else 0
loss = max(r["caller_to_operator"]["loss_pct"], r["operator_to_caller"]["loss_pct"])
corrupt = r["caller_to_operator"]["frames_corrupt"] + r["operator_to_caller"]["frames_corrupt"]
print("## Soak")
print()
print(f"Written by `scripts/soak.sh {sys.argv[2]} {sys.argv[3]} {sys.argv[4]}`: {sys.argv[2]} concurrent calls of {sys.argv[4]}, 50 new calls")
print(f"a second, for {sys.argv[3]}, through the same {r['config']['operators']} emulated operators (their connections stay up for the whole run).")
print("The service's own gauges (`/metrics`) with the operators connected, before the first call and once the")
print("last had ended: what calls leave behind.")
print()
print("| calls placed | answered | failed | worse loss | corrupt frames | goroutines | heap in use | open files | RSS with operators → peak |")
print("|---|---|---|---|---|---|---|---|---|")
print(f"| {r['calls_attempted']} | {r['calls_answered']} | {fails} | {loss:.3f}% | {corrupt} | "
      f"{b['goroutines']:.0f} → {a['goroutines']:.0f} | {b['heap_inuse_mb']:.1f} → {a['heap_inuse_mb']:.1f} MB | "
      f"{b['open_fds']:.0f} → {a['open_fds']:.0f} | {r['service_rss_mb_operators_connected']:.0f} → {r['service_rss_mb_peak']:.0f} MB |")
PY
