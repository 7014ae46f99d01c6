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
#   emqx   batch1000's rule plus one rule per lifecycle event (client.connect
#          to session.terminated, nine), each posting its events one by one,
#          as an EMQX 4 configuration that batches its messages would have
#   down   the per-event rule with nothing listening at the URL: every event
#          goes to the outbox and stays there (the breaker is open)
#   down1000  batch1000's rule with nothing listening at the URL: an outage
#          of batch1000's receiver (PAIR_WITH=batch1000 CONFIGS=down1000)
#
# Every run gets a freshly started broker (and receiver) on 127.0.0.1 and a
# fresh data directory; both are stopped by pid afterwards, also on exit. The
# table reports, per scenario and configuration, the best round (highest
# msg/s), and how many events the receiver got in that round.
#
# Environment (all optional):
#   SCENARIOS  mqload scenarios             (fanin qos1)
#   CONFIGS    configurations               (none up batch down; batch1000, emqx, down1000 on request)
#   ROUNDS     rounds per configuration     (3)
#   DURATION   measured interval per run    (4s)
#   WARMUP     load before the measured interval, whole seconds or a
#              fraction of one (0.5s; 60s with PAIRED): a longer one leaves
#              the fresh process's first page faults and heap growth out of
#              the figure. At 10,000 msg/s a no-rule broker takes 30-40 s to
#              reach its first garbage collection (64 MB heap floor) and
#              touches a fresh page per 4 KB it allocates until then, 10-13
#              µs each on a virtual machine (1.5-5% of its CPU, measured); a
#              broker with a rule allocates more, collects sooner, and stops
#              faulting sooner. The table shows each best round's faults
#              (broker_minor_faults), and a note names every run that took
#              more than one per 100 messages
#   BUDGET     seconds for the whole run; runs that would not fit are skipped (240)
#   RESULTS    file to keep the JSON result lines in (default: a temporary file)
#   EXTRA_CONF config lines added to every configuration, one per line
#              (e.g. "web.hook.outbox.sync_interval = 0s")
#   PAIRED     when set, each configuration runs at the same time as a
#              no-rule broker of its own (both brokers on BROKER_CPUS, both
#              load generators on LOAD_CPUS), and the median is of these
#              pairs' ratios: the two share the machine's speed of the
#              moment, which on a shared machine drifts by 2x within
#              minutes. For rate-limited scenarios (latency) only: in a
#              saturating one the two brokers would split the core.
#              The table adds the medians of the pairs' ratios of the p50
#              and p99 latencies (above 1: the configuration's messages
#              took longer), of the broker's user and system CPU-seconds
#              and write system calls (above 1: more), and with PROFILE of
#              the MQTT path's msg/CPU-s.
#   PAIR_WITH  with PAIRED, the configuration that each of CONFIGS runs
#              beside instead of none, and that the table compares with:
#              PAIR_WITH=batch1000 CONFIGS=down1000 measures what an outage
#              of the receiver costs against the same rule with the
#              receiver up (up, one event per POST, falls behind at 10,000
#              events/s, and would be partly down itself)
#   BASE       a git revision: with PAIRED, each configuration (none too)
#              runs beside the same configuration built from BASE instead
#              of beside a no-rule broker, labelled <config>@base, and the
#              tables compare the two builds: what a change did, without
#              the spread of the no-rule brokers between pairs (their
#              msg/CPU-s moved by 2x within a series)
#   RECV_CPUS  a taskset list to pin the receivers to (default: not pinned).
#              On loopback the broker's write of a request also runs the
#              receiver's TCP receive and wakes it: when the receiver runs
#              on another core, each wake-up is an inter-processor
#              interrupt, which is dear in a virtual machine. Unpinned, the
#              scheduler picks its core per run, and batch1000's HTTP write
#              cost moved by up to 5% of the broker's CPU between runs of
#              one build
#   PROFILE    directory to write a broker CPU profile of each run to
#              (<config>-<scenario>-<round>.prof, for go tool pprof); the
#              table then also shows the dispatcher's share of the
#              profile's samples (hook_cpu_pct: goroutines labelled
#              mqgate=webhook) and the msg/CPU-s of the rest, the MQTT
#              path (mqtt_path_msg_per_cpu_s), and the same without the
#              CPU of the runtime's monitor thread, which the profiler
#              does not sample (mqtt_path_less_monitor_msg_per_cpu_s;
#              see hook_share). The profile starts WARMUP
#              after the broker (mqgate serve -cpuprofile-after), so that
#              it covers the measured interval, give or take the second
#              the load takes to start and the broker to stop; a BASE
#              build without that flag makes both builds' profiles cover
#              their whole runs, warm-up included, as before it
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

SCENARIOS=${SCENARIOS:-"fanin qos1"}
CONFIGS=${CONFIGS:-"none up batch down"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
if [[ -n ${PAIRED:-} ]]; then
	WARMUP=${WARMUP:-60s}
else
	WARMUP=${WARMUP:-0.5s}
fi
BUDGET=${BUDGET:-240}
if [[ -n ${BASE:-} && -z ${PAIRED:-} ]]; then
	echo "webhook.sh: BASE compares two builds side by side: it needs PAIRED=1" >&2
	exit 2
fi
PAIR_WITH=${PAIR_WITH:-none}
if [[ $PAIR_WITH != none && ( -z ${PAIRED:-} || -n ${BASE:-} ) ]]; then
	echo "webhook.sh: PAIR_WITH runs each configuration beside another: it needs PAIRED=1, and not BASE" >&2
	exit 2
fi
if [[ -n ${PAIRED:-} ]]; then
	for scenario in $SCENARIOS; do
		[[ $scenario == latency ]] || { echo "webhook.sh: PAIRED runs two brokers on the same cores at once: scenario $scenario saturates them, use latency" >&2; exit 2; }
	done
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
recv_pids=() broker_pids=() load_pids=() ports=()
cleanup() {
	for pid in "${load_pids[@]}" "${broker_pids[@]}" "${recv_pids[@]}"; do
		stop_pid "$pid"
	done
	bench_cleanup
}
trap cleanup EXIT
recv_pin=()
if [[ -n ${RECV_CPUS:-} ]]; then recv_pin=(taskset -c "$RECV_CPUS"); fi

# write_conf NAME PORT RPORT DATA [FILE]: the config of configuration NAME,
# listening on 127.0.0.1:PORT, posting to 127.0.0.1:RPORT, in
# $tmp/FILE.conf (FILE: NAME).
write_conf() {
	local name=$1 port=$2 rport=$3 data=$4 file=${5:-$1}
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
		batch1000 | down1000) echo 'web.hook.rule.message.publish.1 = {"action": "on_message_publish", "batch": {"max_size": 1000, "max_delay": "100ms"}}' ;;
		emqx)
			echo 'web.hook.rule.message.publish.1 = {"action": "on_message_publish", "batch": {"max_size": 1000, "max_delay": "100ms"}}'
			local ev
			for ev in client.connect client.connack client.connected client.disconnected client.subscribe \
				client.unsubscribe session.subscribed session.unsubscribed session.terminated; do
				echo "web.hook.rule.$ev.1 = {\"action\": \"on_${ev/./_}\"}"
			done
			;;
		esac
		if [[ -n ${EXTRA_CONF:-} ]]; then
			printf '%s\n' "$EXTRA_CONF"
		fi
	} >"$tmp/$file.conf"
}

# hook_share PROF RUN [BIN]: adds to the result line in RUN the dispatcher's share
# of the broker's CPU samples in PROF (the goroutines labelled
# mqgate=webhook: outbox writer, endpoint workers, HTTP client) as
# hook_cpu_pct, and the messages per CPU-second of the rest, the MQTT path
# (connections, routing, the event hand-off, the runtime), as
# mqtt_path_msg_per_cpu_s. The Go profiler does not sample the runtime's
# monitor thread (sysmon), so that figure counts the monitor's CPU in the
# MQTT path; mqtt_path_less_monitor_msg_per_cpu_s leaves it out (the
# broker's CPU less broker_monitor_cpu_sec, then less the dispatcher's
# share). A blocking system call or a timer of the dispatcher wakes the
# monitor, which then polls while the broker's processor is busy: with
# the receiver down it took 1.2-1.8% of the broker's CPU, without a rule
# 0.1% (webhook/README.md).
hook_share() {
	local pct
	pct=$(go tool pprof -tagfocus=mqgate=webhook -nodefraction=0 -top "${3:-$tmp/mqgate}" "$1" 2>/dev/null |
		sed -n 's/.*accounting for [^,]*, \([0-9.]*\)% of .*/\1/p' | head -1)
	awk -v p="${pct:-0}" '
	function field(name) {
		if (!match($0, "\"" name "\":[0-9.eE+-]+")) return -1
		return substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3) + 0
	}
	{
		v = field("msgs_per_cpu_sec")
		if (v >= 0) {
			path = p < 100 ? v * 100 / (100 - p) : 0
			cpu = field("broker_cpu_sec"); mon = field("broker_monitor_cpu_sec")
			less = (mon >= 0 && cpu > mon) ? path * cpu / (cpu - mon) : 0
			sub(/}$/, sprintf(",\"hook_cpu_pct\":%.1f,\"mqtt_path_msg_per_cpu_s\":%.0f,\"mqtt_path_less_monitor_msg_per_cpu_s\":%.0f}", p, path, less))
		}
		print
	}' "$2" >"$2.tmp" && mv "$2.tmp" "$2"
}

log "building mqload, hookrecv and mqgate"
go build -o "$tmp/mqload" ./bench/cmd/mqload || die "mqload: build failed"
go build -o "$tmp/hookrecv" ./bench/cmd/hookrecv || die "hookrecv: build failed"
go build -o "$tmp/mqgate" ./cmd/mqgate || die "mqgate: build failed"
if [[ -n ${BASE:-} ]]; then
	log "building mqgate at $BASE"
	mkdir "$tmp/base-src"
	git archive "$BASE" | tar -x -C "$tmp/base-src" || die "BASE $BASE: no such revision"
	(cd "$tmp/base-src" && go build -o "$tmp/mqgate-base" ./cmd/mqgate) || die "mqgate at $BASE: build failed"
	rm -rf "$tmp/base-src"
fi

# Profiles leave the warm-up out where every build can (see PROFILE).
profile_after=()
if [[ -n ${PROFILE:-} ]]; then
	profile_after=(-cpuprofile-after "$WARMUP")
	for bin in "$tmp/mqgate" ${BASE:+"$tmp/mqgate-base"}; do
		usage=$("$bin" serve -h 2>&1) # exits 2
		[[ $usage == *-cpuprofile-after* ]] || profile_after=()
	done
fi

# A run's worst case: DURATION, WARMUP and 6 s.
warm=${WARMUP%s}
warm=${warm%%.*}
run_times 4 $((6 + ${warm:-0}))
limit=$((limit + ${warm:-0} + 1)) # mqload's timeout covers the warm-up too

# binary LABEL: the mqgate of a run labelled LABEL: the one built from BASE
# for <config>@base, this tree's otherwise.
binary() {
	if [[ $1 == *@base ]]; then echo "$tmp/mqgate-base"; else echo "$tmp/mqgate"; fi
}

# start_run CONF SCENARIO ROUND SLOT [LABEL]: start CONF's receiver (up and batch
# configurations) and broker in the background, their pids in the SLOT'th
# place of recv_pids and broker_pids, the broker's port in ports. Returns 1
# (with the failure in RESULTS) if the broker did not start. start_load
# then starts the load.
start_run() {
	local conf=$1 scenario=$2 round=$3 slot=$4 label=${5:-$1} port rport prof=()
	port=$(free_port) || die "no free port"
	rport=$(free_port) || die "no free port"
	recv_pids[slot]=""
	if [[ $conf == up || $conf == batch* || $conf == emqx ]]; then
		"${recv_pin[@]}" "$tmp/hookrecv" -addr "127.0.0.1:$rport" >"$tmp/recv-$slot.json" 2>"$tmp/recv-$slot.log" &
		recv_pids[slot]=$!
		wait_listen "$rport" "${recv_pids[slot]}" || die "hookrecv did not start: $(cat "$tmp/recv-$slot.log")"
	fi
	write_conf "$conf" "$port" "$rport" "$tmp/data-$slot" "$label"
	if [[ -n ${PROFILE:-} ]]; then
		mkdir -p "$PROFILE"
		prof=(-cpuprofile "$PROFILE/$label-$scenario-$round.prof" "${profile_after[@]}")
	fi
	if ! mqgate_bin=$(binary "$label") start_mqgate "$tmp/$label.conf" "$tmp/$label.log" "$port" "${prof[@]}"; then
		start_failed "$scenario" "$label" "$round"
		stop_pid "${recv_pids[slot]}"
		recv_pids[slot]=""
		return 1
	fi
	broker_pids[slot]=$broker_pid
	broker_pid=""
	ports[slot]=$port
}

# start_load LABEL SCENARIO ROUND SLOT: start the load generator on the
# broker that start_run started in SLOT, its pid in the SLOT'th place of
# load_pids; its result is labelled LABEL (start_run's LABEL, or CONF).
start_load() {
	local label=$1 scenario=$2 round=$3 slot=$4
	timeout "$limit" "${load_pin[@]}" "$tmp/mqload" -addr "127.0.0.1:${ports[slot]}" -pid "${broker_pids[slot]}" \
		-scenario "$scenario" -label "$label" -round "$round" \
		-duration "$DURATION" -warmup "$WARMUP" -json >"$tmp/run-$slot.json" &
	load_pids[slot]=$!
}

# finish_run LABEL SCENARIO ROUND SLOT: wait for the load generator started
# by start_run in SLOT, stop its broker and receiver, keep the result.
finish_run() {
	local label=$1 scenario=$2 round=$3 slot=$4 rc events=0
	wait "${load_pids[slot]}"
	rc=$?
	load_pids[slot]=""
	stop_pid "${broker_pids[slot]}"
	broker_pids[slot]=""
	if [[ -n ${recv_pids[slot]} ]]; then
		stop_pid "${recv_pids[slot]}"
		recv_pids[slot]=""
		events=$(sed -n 's/.*"events":\([0-9]*\).*/\1/p' "$tmp/recv-$slot.json")
	fi
	mv "$tmp/run-$slot.json" "$tmp/run.json"
	sed -i "s/}\$/,\"hook_events\":${events:-0}}/" "$tmp/run.json"
	if [[ -n ${PROFILE:-} ]]; then
		hook_share "$PROFILE/$label-$scenario-$round.prof" "$tmp/run.json" "$(binary "$label")"
	fi
	save_result "$scenario" "$label" "$round" "$rc"
	rm -rf "$tmp/data-$slot"
}

for round in $(seq 1 "$ROUNDS"); do
	for scenario in $SCENARIOS; do
		if [[ -z ${PAIRED:-} ]]; then
			for conf in $CONFIGS; do
				run_fits || continue
				start_run "$conf" "$scenario" "$round" 0 || continue
				start_load "$conf" "$scenario" "$round" 0
				finish_run "$conf" "$scenario" "$round" 0
			done
			continue
		fi
		# Paired: each configuration beside its own no-rule broker (or
		# PAIR_WITH's), both at once; the pair shares a round number of
		# its own. Both brokers
		# are started before either load, so that the two measured
		# intervals are the same seconds: a load started a second after
		# the other (the second broker's and receiver's start) measures its
		# broker for a last second alone on the core, which made the
		# second of two identical no-rule brokers 1.05 times as efficient
		# as the first (1.03, 1.12, 0.98, 1.08, 1.05), against 0.99,
		# 1.02, 0.99 with the loads started together.
		# With BASE, the twin is the same configuration built from BASE.
		i=0
		for conf in $CONFIGS; do
			i=$((i + 1))
			pair=$((round * 10 + i))
			if [[ -n ${BASE:-} ]]; then
				twin=("$conf" "$scenario" "$pair" 0 "$conf@base")
			elif [[ $conf == "$PAIR_WITH" ]]; then
				continue
			else
				twin=("$PAIR_WITH" "$scenario" "$pair" 0 "$PAIR_WITH")
			fi
			run_fits || continue
			label=${twin[4]}
			start_run "${twin[@]}" || continue
			if ! start_run "$conf" "$scenario" "$pair" 1; then
				start_load "$label" "$scenario" "$pair" 0
				finish_run "$label" "$scenario" "$pair" 0
				continue
			fi
			start_load "$label" "$scenario" "$pair" 0
			start_load "$conf" "$scenario" "$pair" 1
			finish_run "$label" "$scenario" "$pair" 0
			finish_run "$conf" "$scenario" "$pair" 1
		done
	done
done

echo
extra="hook_events broker_minor_faults"
medians=""
if [[ -n ${PROFILE:-} ]]; then
	extra+=" hook_cpu_pct mqtt_path_msg_per_cpu_s mqtt_path_less_monitor_msg_per_cpu_s"
	medians="mqtt_path_msg_per_cpu_s mqtt_path_less_monitor_msg_per_cpu_s"
fi
# Paired runs are of the latency scenario: the medians of the pairs'
# ratios of its latencies say whether a configuration slows the messages,
# and those of the broker's user and system CPU and its write system calls
# where a difference in CPU is: in the broker's own code or in the
# kernel's, and, in the kernel, more calls (fewer messages per write) or
# dearer ones.
if [[ -n ${PAIRED:-} ]]; then medians+=" p50 p99 broker_user_cpu_sec broker_sys_cpu_sec broker_write_calls"; fi
# The table compares with its first configuration: in paired runs that is
# the twins of the pairs (no rule, or PAIR_WITH), wherever CONFIGS names
# it, if at all.
table_configs=$CONFIGS
if [[ -n ${BASE:-} ]]; then
	for conf in $CONFIGS; do
		compare_table "$SCENARIOS" "$conf@base $conf" "$RESULTS" "$extra" "$medians"
		echo
	done
	echo "ratio = this build / the build of $BASE, per broker CPU-second, of the best rounds (highest msg/s of $ROUNDS rounds of $DURATION) and the median of the pairs' own ratios; trust the median"
	warmup_note "$RESULTS"
	run_summary
	exit
fi
if [[ -n ${PAIRED:-} ]]; then
	table_configs=$PAIR_WITH
	for conf in $CONFIGS; do
		[[ $conf == "$PAIR_WITH" ]] || table_configs+=" $conf"
	done
fi
compare_table "$SCENARIOS" "$table_configs" "$RESULTS" "$extra" "$medians"
echo "ratio = configuration / $PAIR_WITH, per broker CPU-second, of the best rounds (highest msg/s of $ROUNDS rounds of $DURATION) and the median of the rounds' own ratios; trust the median"
warmup_note "$RESULTS"
run_summary
