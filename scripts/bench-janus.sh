#!/usr/bin/env bash
# switchboard side by side with Janus's SIP plugin, on this machine, in one
# run: the same SIP-side load (the load tool's sipgo trunks, a 20 ms PCMU
# pattern both ways) at the same concurrency, with the emulated browsers
# (pion) attached first to switchboard, then to Janus (Debian's package,
# installed here when missing). Writes a Markdown section with both sets of
# figures and the switchboard/Janus ratios.
#
# Usage: scripts/bench-janus.sh [-o section.md] [calls ...]
# (default 100 250 500). Without -o the section replaces the one at the end
# of docs/performance.md.
#
# Janus's ICE agent (libnice) gathers no loopback candidates, so the whole
# run happens in a private network namespace (unshare -n) holding loopback
# and one veth pair with a private address: nothing leaves the machine, and
# both services see the same network. Needs root (or sudo) for that.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
	out=""
	if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
	./scripts/deps.sh --postgres-only
	if ! command -v janus >/dev/null; then
		echo "bench-janus: installing janus" >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends janus >/dev/null
	fi
	if ! command -v kamailio >/dev/null; then
		echo "bench-janus: installing kamailio (the registrar Janus's handles register with)" >&2
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kamailio >/dev/null
	fi
	command -v janus kamailio unshare ip >/dev/null || { echo "bench-janus: janus, kamailio, unshare and ip are needed" >&2; exit 1; }
	work=$(mktemp -d)
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	go build -o "$work/switchboard" ./cmd/switchboard
	go build -o "$work/switchboard-load" ./cmd/switchboard-load
	$sudo env PATH="$PATH" unshare -n -- "$0" --inside "$work" "$@"
	section="$work/section.md"
	if [ -n "$out" ]; then
		cp "$section" "$out"
	else
		f=docs/performance.md
		awk '/^## Side by side with Janus/{exit} {print}' "$f" >"$work/head.md"
		cat "$work/head.md" "$section" >"$f"
		echo "bench-janus: wrote $f" >&2
	fi
	exit 0
fi

# Inside the namespace.
work=$2; shift 2
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(100 250 500)
ip link set lo up
ip link add sb0 type veth peer name sb1
ip addr add 10.77.0.1/24 dev sb0
ip link set sb0 up
ip link set sb1 up

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run_switchboard() {
	local calls=$1 http sip metrics db pid
	start_service || exit 1
	pids+=("$pid")
	echo "bench-janus: switchboard, $calls concurrent calls" >&2
	"$work/switchboard-load" -database-url "$db" -http-url "http://127.0.0.1:$http" -metrics-url "http://127.0.0.1:$metrics/metrics" -sip-addr "127.0.0.1:$sip" \
		-pid "$pid" -calls "$calls" -rate 50 -hold 30s -duration "$((calls / 50 + 40))s" -json "$work/sb-$calls.json" >&2
	stop_service
}

run_janus() {
	local calls=$1 kport hport kpid jpid
	kport=$(port); hport=$(port)
	mkdir -p "$work/janus" "$work/kam"
	sed "s/LISTEN_PORT/$kport/; s/CHILDREN/2/" testdata/kamailio/registrar.cfg >"$work/kam/registrar.cfg"
	kamailio -f "$work/kam/registrar.cfg" -D -E -m 128 -M 16 -Y "$work/kam" >"$work/kam/kamailio.log" 2>&1 &
	kpid=$!; pids+=("$kpid")
	lib=$(dirname "$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/')")")
	cat >"$work/janus/janus.jcfg" <<-EOF
	general: {
		configs_folder = "$work/janus"
		plugins_folder = "$lib/plugins"
		transports_folder = "$lib/transports"
		events_folder = "$lib/events"
		loggers_folder = "$lib/loggers"
		debug_level = 3
	}
	media: { rtp_port_range = "20000-39999" }
	nat: { ice_enforce_list = "sb0" ice_tcp = false }
	plugins: { disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_videoroom.so,libjanus_voicemail.so" }
	transports: { disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so" }
	events: { broadcast = false }
	EOF
	cat >"$work/janus/janus.transport.http.jcfg" <<-EOF
	general: { json = "plain" base_path = "/janus" http = true port = $hport ip = "127.0.0.1" https = false }
	admin: { admin_http = false }
	EOF
	cat >"$work/janus/janus.plugin.sip.jcfg" <<-EOF
	general: { local_ip = "127.0.0.1" local_media_ip = "127.0.0.1" keepalive_interval = 0 behind_nat = false register_ttl = 3600 rtp_port_range = "40000-59999" }
	EOF
	janus -C "$work/janus/janus.jcfg" -F "$work/janus" >"$work/janus/janus.log" 2>&1 &
	jpid=$!; pids+=("$jpid")
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$hport/janus/info" >/dev/null && break; sleep 0.2; done
	curl -sf "http://127.0.0.1:$hport/janus/info" >/dev/null || { echo "bench-janus: janus did not start:" >&2; tail "$work/janus/janus.log" >&2; exit 1; }
	echo "bench-janus: Janus, $calls concurrent calls" >&2
	"$work/switchboard-load" -target janus -janus-url "http://127.0.0.1:$hport/janus" -sip-addr "127.0.0.1:$kport" \
		-pid "$jpid" -calls "$calls" -rate 50 -hold 30s -duration "$((calls / 50 + 40))s" -json "$work/janus-$calls.json" >&2 || true
	kill "$jpid" "$kpid"; wait "$jpid" "$kpid" 2>/dev/null || true
}

for calls in "${levels[@]}"; do
	run_switchboard "$calls"
	run_janus "$calls"
done

janus_version=$( (janus --version 2>/dev/null || true) | sed -n 's/^Janus version:.*(\(.*\)).*/\1/p' | head -1)
python3 - "$work" "${janus_version:-?}" "${levels[@]}" >"$work/section.md" <<'EOF'
import json, os, sys
work, version, levels = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(name):
    p = os.path.join(work, name)
    return json.load(open(p)) if os.path.exists(p) else None
def loss(r):
    return max(r["caller_to_operator"]["loss_pct"], r["operator_to_caller"]["loss_pct"])
def row(target, r, calls):
    if r is None:
        return f"| {target} | {calls} | did not run | | | | | |"
    return (f"| {target} | {r['peak_concurrent_calls']} | {r['calls_answered']}/{r['calls_attempted']} | "
            f"{r['setup_ms_p50']:.1f} / {r['setup_ms_p99']:.1f} ms | {loss(r):.3f}% | "
            f"{r['caller_to_operator']['delay_ms_p50']:.1f} / {r['caller_to_operator']['delay_ms_p99']:.1f} ms | "
            f"{r['service_cpu_s_per_call_minute']:.3f} | {r['service_rss_kb_per_call']:.0f} KB |")
def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "–"
print("## Side by side with Janus")
print()
print(f"Written by `scripts/bench-janus.sh {' '.join(levels)}` (also run by `scripts/bench.sh`). The same load tool, the same")
print("trunks and the same emulated browsers (pion, PCMU), 50 new calls a second, each held 30 s, on the same")
print(f"machine in one run: first attached to switchboard (`switchboard dev`), then to Janus {version}'s SIP plugin")
print("(Debian's package, HTTP API, one session and one SIP handle per browser, registered with a Kamailio")
print("registrar the trunks' INVITEs go through, `testdata/kamailio/registrar.cfg`). Both runs happen in a")
print("private network namespace with loopback and a veth pair, since Janus's ICE agent gathers no loopback")
print("candidates. CPU and memory are the service process's own (`/proc`); Kamailio's are not counted for Janus.")
print("Loss is the worse direction; delay is caller → browser.")
print()
print("| target | calls held | answered | setup p50 / p99 | loss | delay p50 / p99 | CPU-s per call-min | RSS per call |")
print("|---|---|---|---|---|---|---|---|")
ratios = []
for calls in levels:
    s, j = load(f"sb-{calls}.json"), load(f"janus-{calls}.json")
    print(row("switchboard", s, calls))
    print(row("Janus", j, calls))
    if s and j:
        ratios.append((calls, s, j))
print()
print("switchboard / Janus (below 1 is switchboard using less):")
print()
print("| calls | CPU per call-min | RSS per call | setup p50 | answered ratio |")
print("|---|---|---|---|---|")
for calls, s, j in ratios:
    print(f"| {calls} | {ratio(s['service_cpu_s_per_call_minute'], j['service_cpu_s_per_call_minute'])} | "
          f"{ratio(s['service_rss_kb_per_call'], j['service_rss_kb_per_call'])} | "
          f"{ratio(s['setup_ms_p50'], j['setup_ms_p50'])} | {ratio(s['answer_ratio'], j['answer_ratio'])} |")
held = lambda rs: max([r["peak_concurrent_calls"] for r in rs if r and r["answer_ratio"] >= 0.999 and loss(r) < 0.1] or [0])
sb = held([load(f"sb-{c}.json") for c in levels])
ja = held([load(f"janus-{c}.json") for c in levels])
print()
print(f"Most concurrent calls held with every call answered and < 0.1% loss in this run: switchboard {sb}, Janus {ja}.")
EOF
