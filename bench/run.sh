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

tmp=$(mktemp -d)
RESULTS=${RESULTS:-$tmp/results.jsonl}
: >"$RESULTS"
broker_pid=""

cleanup() {
	if [[ -n $broker_pid ]]; then
		stop_broker
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# A port in 20000..32767: below Linux's ephemeral range (32768..60999), so
# no outgoing connection holds it; checked free by trying to connect.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 12768))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# wait_listen PORT PID: wait up to 10 s for the broker to accept connections.
wait_listen() {
	local port=$1 pid=$2
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

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
		"$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/$name.log" 2>&1 &
		;;
	mqgate)
		env -u GOMAXPROCS \
			MQGATE__LISTENER__TCP__EXTERNAL="127.0.0.1:$port" \
			MQGATE__BROKER__SYS_INTERVAL=0 \
			MQGATE__LOG__LEVEL=warn \
			"$tmp/mqgate" serve >"$tmp/$name.log" 2>&1 &
		;;
	esac
	broker_pid=$!
	if ! wait_listen "$port" "$broker_pid"; then
		log "$name: did not start listening on 127.0.0.1:$port; its log:"
		tail -n 20 "$tmp/$name.log" >&2
		stop_broker
		return 1
	fi
}

# stop_broker: end the broker this script started, by its pid.
stop_broker() {
	local pid=$broker_pid
	broker_pid=""
	[[ -n $pid ]] || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
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

# A run's worst case: warm-up, measurement, drain and connection set-up.
secs=${DURATION%s}
[[ $secs =~ ^[0-9]+$ ]] || secs=5
per_run=$((secs + 4))
limit=$((secs + 60))

failed=0
skipped=0
for round in $(seq 1 "$ROUNDS"); do
	for scenario in $SCENARIOS; do
		for broker in "${brokers[@]}"; do
			if ((SECONDS + per_run > BUDGET)); then
				skipped=$((skipped + 1))
				continue
			fi
			port=$(free_port) || {
				log "no free port"
				exit 1
			}
			if ! start_broker "$broker" "$port"; then
				printf '{"scenario":"%s","broker":"%s","round":%d,"error":"broker did not start"}\n' \
					"$scenario" "$broker" "$round" >>"$RESULTS"
				failed=$((failed + 1))
				continue
			fi
			timeout "$limit" "$tmp/mqload" -addr "127.0.0.1:$port" -pid "$broker_pid" \
				-scenario "$scenario" -label "$broker" -round "$round" \
				-duration "$DURATION" -conns "$CONNS" -json >"$tmp/run.json"
			rc=$?
			if [[ -s $tmp/run.json ]]; then
				cat "$tmp/run.json" >>"$RESULTS"
			else
				printf '{"scenario":"%s","broker":"%s","round":%d,"error":"mqload exited with status %d and no result"}\n' \
					"$scenario" "$broker" "$round" "$rc" >>"$RESULTS"
			fi
			if ((rc != 0)); then
				failed=$((failed + 1))
			fi
			if ! kill -0 "$broker_pid" 2>/dev/null; then
				log "$broker: exited during the run; its log:"
				tail -n 20 "$tmp/$broker.log" >&2
			fi
			stop_broker
		done
	done
done

echo
"$tmp/mqload" -table "$RESULTS"
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); whole run ${SECONDS}s"
if ((skipped > 0)); then
	echo "$skipped runs skipped to stay within ${BUDGET}s"
fi
if ((failed > 0)); then
	echo "$failed runs failed (see above)"
	exit 1
fi
