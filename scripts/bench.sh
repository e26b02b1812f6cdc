#!/usr/bin/env bash
# Measures switchboard on this machine and writes docs/performance.md:
# the hot-path Go benchmarks, then the load tool's standard scenarios
# against the real binary on its embedded default (private PostgreSQL),
# everything on loopback. Usage: scripts/bench.sh [calls ...]
# (default scenarios: 100 500 1000 concurrent calls). SOAK="calls duration
# hold" sets the soak (default 100 10m 5s), JANUS="calls ..." the side by
# side with Janus (default: bench-janus.sh's).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --postgres-only
command -v sipp >/dev/null || { echo "bench: sipp missing: run scripts/deps.sh" >&2; exit 1; }
if ! command -v kamailio >/dev/null; then
	echo "bench: installing kamailio (the signalling ceiling reference)" >&2
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kamailio >/dev/null
fi

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(100 500 1000)
work=$(mktemp -d)
chmod 755 "$work"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/switchboard" ./cmd/switchboard
go build -o "$work/switchboard-load" ./cmd/switchboard-load
out=docs/performance.md
rows="$work/rows.md"
cps="$work/cps.md"

echo "bench: Go benchmarks" >&2
benches=$(go test -run '^$' -bench . -benchmem ./ ./callctl/ ./sip/ ./webrtc/ ./metadata/ ./metrics/ 2>/dev/null | grep -E '^Benchmark' || true)
# What one answered inbound call costs PostgreSQL, counted on a real server
# (the test asserts it: the count is fixed by the call's course).
stmts=$(go test -count=1 -run '^TestStatementsPerCall$' -v ./cmd/switchboard/ 2>&1 | sed -n 's/.*one call: \([0-9]*\) statements naming it, \([0-9]*\) COPYs.*/\1 statements and \2 COPYs/p' | head -1)
# Recording: sealing and sealing plus upload to a real S3 server
# (versitygw), next to the machine's raw AES-256-GCM.
recbench=$(CI=true go test -run '^$' -bench 'SealSegment|RawAEAD|RecordOneMinuteToS3|RecorderTap|AudioRange' -benchmem ./recordings/ 2>&1 | grep -E '^Benchmark' || true)
mbs() { echo "$recbench" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i }'; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
for calls in "${scenarios[@]}"; do
	start_service
	hold=30s; duration=$((calls / 50 + 40))s
	echo "bench: $calls concurrent calls" >&2
	"$work/switchboard-load" -database-url "$db" -http-url "http://127.0.0.1:$http" -metrics-url "http://127.0.0.1:$metrics/metrics" -sip-addr "127.0.0.1:$sip" \
		-pid "$pid" -calls "$calls" -rate 50 -hold "$hold" -duration "$duration" -markdown "$rows" >&2
	stop_service
done

for rate in 200 500; do
	start_service
	echo "bench: signalling alone, $rate calls/s" >&2
	"$work/switchboard-load" -database-url "$db" -http-url "http://127.0.0.1:$http" -metrics-url "http://127.0.0.1:$metrics/metrics" -sip-addr "127.0.0.1:$sip" \
		-pid "$pid" -calls 800 -rate "$rate" -hold 1s -duration 20s -media=false -markdown "$cps" >&2
	stop_service
done

# The same SIPp load through switchboard: SIPp's UAC → switchboard (a
# queue with no operators forwards each call) → SIPp's UAS, every call's
# record written.
sbsipp="$work/sbsipp.md"
for rate in 200 500 1000 2000; do
	start_service
	echo "bench: SIPp through switchboard, $rate calls/s" >&2
	# A rate past what the machine carries can fail outright: say so in
	# its row and go on to the others.
	"$work/switchboard-load" -sipp -database-url "$db" -sip-addr "127.0.0.1:$sip" -pid "$pid" -metrics-url "http://127.0.0.1:$metrics/metrics" \
		-rate "$rate" -hold 1s -duration 20s -markdown "$sbsipp" >&2 ||
		printf '| %s | the run failed (see the log) | | | | | | |\n' "$rate" >>"$sbsipp"
	stop_service
done

# The machine's signalling ceiling: SIPp → Kamailio (stateful proxy, tm) →
# SIPp UAS, calls held 1 s, at rising rates.
kam="$work/kamailio.md"
printf '| calls/s asked | SIPp calls | successful | failed |\n|---|---|---|---|\n' >"$kam"
for rate in 500 1000 2000; do
	kport=$(port); uport=$(port); cport=$(port)
	mkdir -p "$work/kamrun"
	sed "s/LISTEN_PORT/$kport/; s/UAS_PORT/$uport/g; s/CHILDREN/4/" testdata/kamailio/proxy.cfg >"$work/kam.cfg"
	kamailio -f "$work/kam.cfg" -D -E -m 256 -M 32 -Y "$work/kamrun" >"$work/kam.log" 2>&1 &
	kpid=$!
	sipp -sn uas -i 127.0.0.1 -p "$uport" -nostdin >/dev/null 2>&1 &
	upid=$!
	sleep 1
	echo "bench: Kamailio ceiling, $rate calls/s" >&2
	n=$((rate * 20))
	( cd "$work" && sipp -sn uac -i 127.0.0.1 -p "$cport" -r "$rate" -m "$n" -l $((rate * 3)) -d 1000 -nostdin \
		-timeout 90s -trace_stat -stf stat.csv "127.0.0.1:$kport" >/dev/null 2>&1 ) || true
	ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)if($i=="SuccessfulCall(C)")s=i; if(!s)exit} END{print $s}' "$work/stat.csv" 2>/dev/null)
	bad=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)if($i=="FailedCall(C)")f=i} END{print $f}' "$work/stat.csv" 2>/dev/null)
	printf '| %s | %s | %s | %s |\n' "$rate" "$n" "${ok:-?}" "${bad:-?}" >>"$kam"
	kill "$upid" "$kpid" 2>/dev/null; wait "$upid" "$kpid" 2>/dev/null || true
	rm -f "$work/stat.csv"
done

# A soak: many short calls for a bounded time, what they leave behind.
echo "bench: soak" >&2
# shellcheck disable=SC2086
./scripts/soak.sh -o "$work/soak.md" ${SOAK:-100 10m 5s}

# The same SIP-side load through Janus's SIP plugin, side by side.
echo "bench: side by side with Janus" >&2
# shellcheck disable=SC2086
./scripts/bench-janus.sh -o "$work/janus.md" ${JANUS:-}

# The closing assessment against the issue's targets is written by hand
# from these figures: kept across runs, at the end.
targets="$work/targets.md"
sed -n '/^## Targets/,$p' "$out" >"$targets" 2>/dev/null || true

{
	echo "# Performance"
	echo
	echo "Written by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d). Figures are noisy on shared machines; compare runs on one machine."
	echo
	echo "## Machine"
	echo
	echo "- $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GB RAM, Linux $(uname -r)"
	echo "- $(go version)"
	echo
	echo "## Hot paths (\`go test -bench . -benchmem\`)"
	echo
	echo '```'
	echo "$benches"
	echo '```'
	echo
	echo "\`BenchmarkBridgeRelayMeasured\` is the relay with the delay it adds measured on each packet, as the service runs it"
	echo "(two clock reads); \`BenchmarkRelayDelay\` the histogram's share. \`BenchmarkSessionWriteRTP\` is the operator leg's send path"
	echo "per packet (header parse, SRTP, the socket write; its test peer's receiving included in the time). \`BenchmarkSessionMemory\`"
	echo "reports the heap one connected operator session holds (B/session: the growth over 100 connected sessions with"
	echo "their pion test peers, less 100 test peers' own): ICE-lite with DTLS-SRTP on the one shared UDP port, and a pion"
	echo "PeerConnection with a port per connection (\`-webrtc-udp-port off\`); the"
	echo "split between session and peer moves with the GC, their sum less so. One answered inbound call costs PostgreSQL"
	echo "${stmts:-?} (\`TestStatementsPerCall\`; transactions are shared by the writer's batches and not counted)."
	echo
	echo "## Recording: sealing and upload next to the machine's raw AEAD"
	echo
	echo '```'
	echo "$recbench"
	echo '```'
	echo
	echo "Raw AES-256-GCM over 64 KiB segments (the physical limit here): $(mbs BenchmarkRawAEAD) MB/s. Sealing audio"
	echo "records into segments (framing, AES-256-GCM, segment headers): $(mbs BenchmarkSealSegment) MB/s. Sealing and"
	echo "uploading one-minute, two-channel recordings (about 1 MB each) to versitygw on the same machine, one after"
	echo "the other: $(mbs BenchmarkRecordOneMinuteToS3) MB/s; four at a time: $(mbs BenchmarkRecordOneMinuteToS3Parallel) MB/s. The upload is bound by"
	echo "the S3 server sharing the machine (the client side spends about a fifth of a CPU). A recorded G.711 call produces 16 KB/s (both channels):"
	echo "at the sealing rate one core seals for about $(mbs BenchmarkSealSegment | awk '{printf "%d", $1 * 1e6 / 16000}') calls, and at the"
	echo "seal-and-upload rate the store keeps up with about $(mbs BenchmarkRecordOneMinuteToS3Parallel | awk '{printf "%d", $1 * 1e6 / 16000}') calls recorded at once."
	echo
	echo "## Whole system (\`switchboard-load\`)"
	echo
	echo "The binary runs \`switchboard dev\` (private PostgreSQL); \`switchboard-load\` runs beside it on the same"
	echo "machine with one emulated pion operator per call and sipgo trunks sending a 20 ms PCMU pattern both ways,"
	echo "50 new calls a second, each held 30 s. The load tool competes with the service for the same CPUs, so delay"
	echo "figures at high load measure the machine, not only the bridge. Loss counts gaps in the pattern's sequence"
	echo "(RFC 3550 A.3); every pattern frame that arrives is checked byte for byte. RSS per call is the service's"
	echo "growth from before the operators connected to the peak, divided by the calls held: a bridged call with"
	echo "its operator's media session (ICE-lite, DTLS-SRTP). It includes garbage the Go runtime has not returned yet."
	echo "\"In the service\" is the service's own measure of the delay it adds (\`switchboard_media_relay_delay_seconds\`,"
	echo "the worse direction): from the kernel's receive timestamp of each relayed packet to its hand-over to the kernel"
	echo "on the other leg, so it excludes the emulators' own queues that dominate the end-to-end figure beside it."
	echo
	echo "Command: \`scripts/bench.sh ${scenarios[*]}\`"
	echo
	cat "$rows"
	echo
	echo "## Signalling alone"
	echo
	echo "Calls held 1 s without audio, up to 800 at once, for 20 s: INVITE, 180, 200, ACK, BYE, with every call's"
	echo "record and timeline written to PostgreSQL. The 800 emulated operators run in the load tool on the same CPUs."
	echo
	cat "$cps"
	echo
	echo "## Signalling through switchboard under SIPp's load"
	echo
	echo "SIPp's built-in UAC → switchboard → SIPp's built-in UAS: the number's queue has no operators and sends"
	echo "each call on at once, so switchboard answers the caller when the UAS answers and carries both legs' SIP,"
	echo "with each call's record and timeline written to PostgreSQL (\"records completed\" counts them there)."
	echo "Calls held 1 s, 20 s at each rate, the same load as Kamailio's below; no browsers, no media."
	echo "Past what the machine carries the service sheds new calls with 503 (\`-overload-sip-delay\`,"
	echo "\`-overload-db-delay\`, on by default): SIPp counts them failed, and \"503s sent\" (from the service's"
	echo "\`/metrics\`; a retransmitted INVITE is answered again) says how many were. \"Achieved\" is successful"
	echo "calls over the time SIPp took, so a rate held past capacity shows as the best rate, not as a collapse."
	echo "Command: \`switchboard-load -sipp -rate R -hold 1s -duration 20s\`."
	echo
	cat "$sbsipp"
	echo
	echo "## Signalling ceiling of the machine: Kamailio"
	echo
	echo "SIPp's built-in UAC → Kamailio 5.6 as a stateful proxy (\`testdata/kamailio/proxy.cfg\`, 4 children) → SIPp's"
	echo "UAS, calls held 1 s, 20 s at each rate. No media, no database: the reference for what SIP handling alone"
	echo "costs here. switchboard's figures above also carry operators over WebSockets and a database write per call."
	echo
	cat "$kam"
	echo
	cat "$work/soak.md"
	echo
	cat "$work/janus.md"
	if [ -s "$targets" ]; then
		echo
		cat "$targets"
	fi
} > "$out"
echo "bench: wrote $out" >&2
