#!/usr/bin/env bash
# Side-by-side benchmark of mosquitto and mqgate on this machine.
#
# Builds mqload and mqgate, then runs ROUNDS rounds; a round runs every
# scenario against each broker in turn, so the brokers alternate (mosquitto,
# mqgate, mosquitto, mqgate, ...) and the rounds of one scenario are spread
# over the whole run. Every run gets a freshly started broker on 127.0.0.1, so
# that no run inherits the heap or the state of the one before (this matters
# most for bytes per idle connection). The table reports, per broker, the BEST
# round: the highest msg/s (lowest p99 for latency, fewest bytes per
# connection for conns); the best round is the one least disturbed by whatever
# else the machine was doing. If the budget runs out, whole late rounds are
# skipped rather than whole scenarios.
#
# Environment (all optional):
#   SCENARIOS  scenarios to run          (fanin fanout qos1 latency conns)
#   ROUNDS     rounds per broker          (3)
#   DURATION   measured interval per run  (5s)
#   CONNS      idle connections for conns (10000)
#   BUDGET     seconds for the whole run; runs that would not fit are skipped (340)
#   RESULTS    file to keep the JSON result lines in (default: a temporary file)
#   MOSQUITTO  the mosquitto binary       (/usr/sbin/mosquitto)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

SCENARIOS=${SCENARIOS:-"fanin fanout qos1 latency conns"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-10000}
BUDGET=${BUDGET:-340}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup

# start_broker NAME PORT: start a fresh broker, set broker_pid.
start_broker() {
	local name=$1 port=$2
	case $name in
	mosquitto)
		# Settings chosen to be fair to mosquitto:
		# - persistence false: mqgate keeps nothing on disk in these runs either.
		# - max_queued_messages 1000000 and max_inflight_messages 0 (no cap):
		#   mqload's own windows (20000 QoS 0 deliveries, 1000 QoS 1 messages
		#   outstanding, 64 unacknowledged per publisher) already bound every
		#   queue, so neither broker needs to drop; mosquitto's defaults (1000
		#   queued, 20 in flight) would drop or throttle qos1 for it alone.
		# - set_tcp_nodelay true: Go sets TCP_NODELAY on every socket, so mqgate
		#   has it; without it mosquitto's latency would include Nagle delays.
		# - sys_interval 0, errors and warnings only, no connection messages:
		#   mqgate runs with $SYS off and log level warn.
		cat >"$tmp/mosquitto.conf" <<-EOF
			listener $port 127.0.0.1
			allow_anonymous true
			persistence false
			max_queued_messages 1000000
			max_inflight_messages 0
			set_tcp_nodelay true
			sys_interval 0
			log_dest stderr
			log_type error
			log_type warning
			connection_messages false
		EOF
		start_server "$name" "$tmp/$name.log" "$port" "$MOSQUITTO" -c "$tmp/mosquitto.conf"
		;;
	mqgate)
		start_server "$name" "$tmp/$name.log" "$port" env -u GOMAXPROCS \
			MQGATE__LISTENER__TCP__EXTERNAL="127.0.0.1:$port" \
			MQGATE__BROKER__SYS_INTERVAL=0 \
			MQGATE__LOG__LEVEL=warn \
			"$tmp/mqgate" serve
		;;
	esac
}

# Both brokers and mqload hold 10,000 sockets in conns: use the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

log "building mqload"
if ! go build -o "$tmp/mqload" ./bench/cmd/mqload; then
	log "mqload: build failed"
	exit 1
fi

brokers=()
if [[ -x $MOSQUITTO ]]; then
	brokers+=(mosquitto)
	log "mosquitto: $("$MOSQUITTO" -h 2>&1 | head -n 1)"
else
	log "mosquitto: $MOSQUITTO not found (apt-get install -y mosquitto), skipped"
fi
log "building mqgate"
if go build -o "$tmp/mqgate" ./cmd/mqgate >"$tmp/mqgate-build.log" 2>&1; then
	brokers+=(mqgate)
else
	log "mqgate: build failed, skipped; the first lines of the build output:"
	head -n 15 "$tmp/mqgate-build.log" >&2
fi
if [[ ${#brokers[@]} -eq 0 ]]; then
	log "no broker to measure"
	exit 1
fi

# A run's worst case: DURATION and 4 s.
run_times 5 4

for round in $(seq 1 "$ROUNDS"); do
	for scenario in $SCENARIOS; do
		for broker in "${brokers[@]}"; do
			run_fits || continue
			port=$(free_port) || die "no free port"
			if ! start_broker "$broker" "$port"; then
				start_failed "$scenario" "$broker" "$round"
				continue
			fi
			timeout "$limit" "$tmp/mqload" -addr "127.0.0.1:$port" -pid "$broker_pid" \
				-scenario "$scenario" -label "$broker" -round "$round" \
				-duration "$DURATION" -conns "$CONNS" -json >"$tmp/run.json"
			save_result "$scenario" "$broker" "$round" $?
			end_run "$broker" "$tmp/$broker.log"
		done
	done
done

echo
"$tmp/mqload" -table "$RESULTS"
echo
run_summary
