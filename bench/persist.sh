#!/usr/bin/env bash
# Cost of durability: QoS 1 throughput to a PERSISTENT subscriber (clean
# session 0) with mqgate's store.sync = none, batch and always, side by side
# with Debian's mosquitto with `persistence true`, out of process, measured
# with the load generator bench/cmd/mqload (scenario qos1 with -persistent:
# 4 QoS 1 publishers with 64 unacknowledged messages each, one persistent
# QoS 1 subscriber; any loss fails the run).
#
# What the modes mean: with batch and always, mqgate writes each message for
# the persistent session to its log and sends the PUBACK only once the log
# is durable (batch: one fsync for every write that arrived meanwhile;
# always: one fsync per write); none keeps everything in memory. mosquitto
# with persistence true saves its whole state to disk every
# autosave_interval (1800 s by default) and at shutdown: an acknowledged
# message is in memory only until then, so its figure is that of a broker
# that does not write per message.
#
# Every run gets a freshly started broker with an empty data directory, on
# 127.0.0.1, stopped by its pid afterwards (also on exit, through a trap).
# The table reports the best round of each configuration: msg/s, messages
# per broker CPU-second and the ratio to the first configuration.
#
# Environment (all optional):
#   ROUNDS     rounds                                   (2)
#   DURATION   measured interval of a run               (4s)
#   BUDGET     seconds for the whole run; runs that would not fit are skipped (240)
#   MOSQUITTO  mosquitto binary; empty = no reference    (/usr/sbin/mosquitto if present)
#   RESULTS    file to keep the JSON result lines in (default: a temporary file)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-4s}
BUDGET=${BUDGET:-240}

# shellcheck source=bench/lib.sh
. bench/lib.sh
mosquitto_default
bench_setup

log "building mqload and mqgate"
go build -o "$tmp/mqload" ./bench/cmd/mqload || die "mqload: build failed"
go build -o "$tmp/mqgate" ./cmd/mqgate || die "mqgate: build failed"

# start CONFIG PORT DATA: start a fresh broker of CONFIG with its state in
# DATA, set broker_pid.
start() {
	local c=$1 port=$2 data=$3
	mkdir -p "$data"
	if [[ $c == mqgate-* ]]; then
		{
			echo "listener.tcp.external = 127.0.0.1:$port"
			echo "listener.tcp.external.max_connections = 0"
			echo "node.data_dir = $data"
			echo "store.sync = ${c#mqgate-}"
			echo "mqtt.max_mqueue_len = 0"
			echo "broker.sys_interval = 0"
			echo "log.level = warn"
			echo "management.listener.http ="
		} >"$tmp/$c.conf"
		start_mqgate "$tmp/$c.conf" "$tmp/$c.log" "$port"
		return
	fi
	{
		echo "user $(id -un)"
		echo "listener $port 127.0.0.1"
		echo "allow_anonymous true"
		echo "persistence true"
		echo "persistence_location $data/"
		echo "max_queued_messages 1000000"
		echo "max_inflight_messages 0"
		echo "sys_interval 0"
		echo "log_dest none"
	} >"$tmp/$c.conf"
	start_server "$c" "$tmp/$c.log" "$port" "$MOSQUITTO" -c "$tmp/$c.conf"
}

configs=(mqgate-none mqgate-batch mqgate-always)
if [[ -n $MOSQUITTO ]]; then
	configs+=(mosquitto-persist)
fi

# A run's worst case: DURATION and 8 s.
run_times 4 8

for round in $(seq 1 "$ROUNDS"); do
	for c in "${configs[@]}"; do
		run_fits || continue
		port=$(free_port) || die "no free port"
		data=$tmp/data-$c-$round
		if ! start "$c" "$port" "$data"; then
			start_failed qos1 "$c" "$round"
			continue
		fi
		timeout "$limit" "$tmp/mqload" -addr "127.0.0.1:$port" -pid "$broker_pid" -scenario qos1 -persistent \
			-label "$c" -round "$round" -duration "$DURATION" -json >"$tmp/run.json"
		save_result qos1 "$c" "$round" $?
		end_run "$c"
		rm -rf "$data"
	done
done

echo
echo "QoS 1 to a persistent subscriber, best of $ROUNDS rounds of $DURATION"
compare_table "qos1" "${configs[*]}" "$RESULTS"
if ((skipped > 0)); then
	log "persist.sh: $skipped runs skipped to stay within BUDGET=$BUDGET s"
fi
if ((failed > 0)); then
	log "persist.sh: $failed runs failed (see the table's last column)"
	exit 1
fi
