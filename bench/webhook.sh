#!/usr/bin/env bash
# The MQTT path's cost of web hooks: messages per broker CPU-second of
# mqgate with a message.publish rule against mqgate with no rule, on this
# machine, with the load generator bench/cmd/mqload and the receiver
# bench/cmd/hookrecv (each its own process, so the broker's CPU figure holds
# the broker and its dispatcher only).
#
# Configurations:
#   none   no web hook rule
#   up     a message.publish rule, one event per POST, receiver answering 200
#   batch  the same rule with "batch": {"max_size": 100, "max_delay": "10ms"}
#   batch1000  the same with "batch": {"max_size": 1000, "max_delay": "100ms"}:
#          a tenth of the POSTs
#   down   the per-event rule with nothing listening at the URL: every event
#          goes to the outbox and stays there (the breaker is open)
#
# Every run gets a freshly started broker (and receiver) on 127.0.0.1 and a
# fresh data directory; both are stopped by pid afterwards, also on exit. The
# table reports, per scenario and configuration, the best round (highest
# msg/s), and how many events the receiver got in that round.
#
# Environment (all optional):
#   SCENARIOS  mqload scenarios             (fanin qos1)
#   CONFIGS    configurations               (none up batch down; batch1000 on request)
#   ROUNDS     rounds per configuration     (3)
#   DURATION   measured interval per run    (4s)
#   WARMUP     load before the measured interval, whole seconds or a
#              fraction of one (0.5s): a longer one leaves the fresh
#              process's first page faults and heap growth out of the figure
#   BUDGET     seconds for the whole run; runs that would not fit are skipped (240)
#   RESULTS    file to keep the JSON result lines in (default: a temporary file)
#   EXTRA_CONF config lines added to every configuration, one per line
#              (e.g. "web.hook.outbox.sync_interval = 0s")
#   PROFILE    directory to write a broker CPU profile of each run to
#              (<config>-<scenario>-<round>.prof, for go tool pprof); the
#              table then also shows the dispatcher's share of the
#              profile's samples (hook_cpu_pct: goroutines labelled
#              mqgate=webhook) and the msg/CPU-s of the rest, the MQTT
#              path (mqtt_path_msg_per_cpu_s)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

SCENARIOS=${SCENARIOS:-"fanin qos1"}
CONFIGS=${CONFIGS:-"none up batch down"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
WARMUP=${WARMUP:-0.5s}
BUDGET=${BUDGET:-240}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
recv_pid=""
cleanup() {
	stop_pid "$recv_pid"
	bench_cleanup
}
trap cleanup EXIT

# write_conf NAME PORT RPORT DATA: the config of configuration NAME,
# listening on 127.0.0.1:PORT, posting to 127.0.0.1:RPORT.
write_conf() {
	local name=$1 port=$2 rport=$3 data=$4
	{
		echo "listener.tcp.external = 127.0.0.1:$port"
		echo "management.listener.http ="
		echo "broker.sys_interval = 0"
		echo "log.level = warn"
		echo "node.data_dir = $data"
		echo "web.hook.url = http://127.0.0.1:$rport/hook"
		case $name in
		up | down) echo 'web.hook.rule.message.publish.1 = {"action": "on_message_publish"}' ;;
		batch) echo 'web.hook.rule.message.publish.1 = {"action": "on_message_publish", "batch": {"max_size": 100, "max_delay": "10ms"}}' ;;
		batch1000) echo 'web.hook.rule.message.publish.1 = {"action": "on_message_publish", "batch": {"max_size": 1000, "max_delay": "100ms"}}' ;;
		esac
		if [[ -n ${EXTRA_CONF:-} ]]; then
			printf '%s\n' "$EXTRA_CONF"
		fi
	} >"$tmp/$name.conf"
}

# hook_share PROF RUN: adds to the result line in RUN the dispatcher's share
# of the broker's CPU samples in PROF (the goroutines labelled
# mqgate=webhook: outbox writer, endpoint workers, HTTP client) as
# hook_cpu_pct, and the messages per CPU-second of the rest, the MQTT path
# (connections, routing, the event hand-off, the runtime), as
# mqtt_path_msg_per_cpu_s.
hook_share() {
	local pct
	pct=$(go tool pprof -tagfocus=mqgate=webhook -nodefraction=0 -top "$tmp/mqgate" "$1" 2>/dev/null |
		sed -n 's/.*accounting for [^,]*, \([0-9.]*\)% of .*/\1/p' | head -1)
	awk -v p="${pct:-0}" '{
		if (match($0, /"msgs_per_cpu_sec":[0-9.eE+-]+/)) {
			v = substr($0, RSTART + 19, RLENGTH - 19) + 0
			sub(/}$/, sprintf(",\"hook_cpu_pct\":%.1f,\"mqtt_path_msg_per_cpu_s\":%.0f}", p, p < 100 ? v * 100 / (100 - p) : 0))
		}
		print
	}' "$2" >"$2.tmp" && mv "$2.tmp" "$2"
}

log "building mqload, hookrecv and mqgate"
go build -o "$tmp/mqload" ./bench/cmd/mqload || die "mqload: build failed"
go build -o "$tmp/hookrecv" ./bench/cmd/hookrecv || die "hookrecv: build failed"
go build -o "$tmp/mqgate" ./cmd/mqgate || die "mqgate: build failed"

# A run's worst case: DURATION, WARMUP and 6 s.
warm=${WARMUP%s}
warm=${warm%%.*}
run_times 4 $((6 + ${warm:-0}))

for round in $(seq 1 "$ROUNDS"); do
	for scenario in $SCENARIOS; do
		for conf in $CONFIGS; do
			run_fits || continue
			port=$(free_port) || die "no free port"
			rport=$(free_port) || die "no free port"
			if [[ $conf == up || $conf == batch* ]]; then
				"$tmp/hookrecv" -addr "127.0.0.1:$rport" >"$tmp/recv.json" 2>"$tmp/recv.log" &
				recv_pid=$!
				wait_listen "$rport" "$recv_pid" || die "hookrecv did not start: $(cat "$tmp/recv.log")"
			fi
			data=$tmp/data-$conf-$scenario-$round
			write_conf "$conf" "$port" "$rport" "$data"
			prof=()
			if [[ -n ${PROFILE:-} ]]; then
				mkdir -p "$PROFILE"
				prof=(-cpuprofile "$PROFILE/$conf-$scenario-$round.prof")
			fi
			if ! start_mqgate "$tmp/$conf.conf" "$tmp/$conf.log" "$port" "${prof[@]}"; then
				start_failed "$scenario" "$conf" "$round"
				stop_pid "$recv_pid"
				recv_pid=""
				continue
			fi
			timeout "$limit" "${load_pin[@]}" "$tmp/mqload" -addr "127.0.0.1:$port" -pid "$broker_pid" \
				-scenario "$scenario" -label "$conf" -round "$round" \
				-duration "$DURATION" -warmup "$WARMUP" -json >"$tmp/run.json"
			rc=$?
			stop_broker
			events=0
			if [[ -n $recv_pid ]]; then
				stop_pid "$recv_pid"
				recv_pid=""
				events=$(sed -n 's/.*"events":\([0-9]*\).*/\1/p' "$tmp/recv.json")
			fi
			sed -i "s/}\$/,\"hook_events\":${events:-0}}/" "$tmp/run.json"
			if [[ -n ${PROFILE:-} ]]; then
				hook_share "$PROFILE/$conf-$scenario-$round.prof" "$tmp/run.json"
			fi
			save_result "$scenario" "$conf" "$round" "$rc"
			rm -rf "$data"
		done
	done
done

echo
extra=hook_events
if [[ -n ${PROFILE:-} ]]; then extra="hook_events hook_cpu_pct mqtt_path_msg_per_cpu_s"; fi
compare_table "$SCENARIOS" "$CONFIGS" "$RESULTS" "$extra"
echo "ratio = configuration / none, per broker CPU-second, of the best rounds (highest msg/s of $ROUNDS rounds of $DURATION) and the median of the rounds' own ratios; trust the median"
run_summary
