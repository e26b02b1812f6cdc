# Shared by the benchmark scripts (bench.sh, soak.sh, bench-janus.sh):
# sourced, not run. They build switchboard and switchboard-load into $work.

# port prints a free TCP port on loopback.
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_service runs `switchboard dev` (its own PostgreSQL, in
# $work/data) on free loopback ports and sets pid, http, sip, metrics and db; it
# fails, showing the service's log, if the service does not come up.
start_service() {
	http=$(port); sip=$(port); metrics=$(port)
	rm -rf "$work/data"; mkdir -p "$work/data"; chmod 755 "$work/data"
	SWITCHBOARD_WEBRTC_LOOPBACK=true SWITCHBOARD_RTP_PORTS= SWITCHBOARD_LOG_LEVEL=warn \
		SWITCHBOARD_HTTP_ADDR=127.0.0.1:$http SWITCHBOARD_SIP_ADDR=127.0.0.1:$sip \
		SWITCHBOARD_METRICS_ADDR=127.0.0.1:$metrics \
		"$work/switchboard" dev -data-dir "$work/data" >"$work/service.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ -s "$work/data/switchboard-dev.json" ] && break; sleep 0.2; done
	db=$(sed -n 's/.*"database_url": *"\([^"]*\)".*/\1/p' "$work/data/switchboard-dev.json" 2>/dev/null)
	[ -n "$db" ] || { echo "switchboard did not start:" >&2; tail "$work/service.log" >&2; return 1; }
}

# stop_service stops what start_service started.
stop_service() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
