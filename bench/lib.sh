# shellcheck shell=bash
# Shell functions shared by the benchmark scripts under bench/ (sourced,
# not run, from the repository's root). The caller calls bench_setup, which
# makes the temporary directory tmp, and builds mqgate into $tmp/mqgate.

log() { printf '%s\n' "$*" >&2; }

# die MESSAGE: log MESSAGE after the script's name and exit 1.
die() {
	log "${0##*/}: $*"
	exit 1
}

# mosquitto_default: an unset MOSQUITTO becomes /usr/sbin/mosquitto if that
# is there, else empty (no mosquitto reference); a set one stays.
mosquitto_default() {
	if [[ -z ${MOSQUITTO+x} ]]; then
		MOSQUITTO=""
		if [[ -x /usr/sbin/mosquitto ]]; then MOSQUITTO=/usr/sbin/mosquitto; fi
	fi
}

# bench_setup: make the temporary directory tmp, empty RESULTS (by default
# $tmp/results.jsonl) and, on exit, stop the broker and remove tmp.
bench_setup() {
	tmp=$(mktemp -d)
	RESULTS=${RESULTS:-$tmp/results.jsonl}
	: >"$RESULTS"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	stop_broker
	rm -rf "$tmp"
}

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

# wait_listen PORT PID: wait up to 10 s for PID to accept connections on
# 127.0.0.1:PORT.
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

# MQGATE__* variables of the caller's environment would override the config
# files: run mqgate without them (and without GOMAXPROCS).
unset_env=(-u GOMAXPROCS)
while IFS= read -r v; do
	unset_env+=(-u "$v")
done < <(compgen -e | grep '^MQGATE__')

run_mqgate() { env "${unset_env[@]}" "$tmp/mqgate" "$@"; }

# BROKER_CPUS and LOAD_CPUS (taskset lists such as 0 and 1), when set, pin
# the broker and the load generator to those CPUs: each then has its own
# core and does not compete with the other for it.
broker_pin=()
load_pin=()
if [[ -n ${BROKER_CPUS:-} ]]; then broker_pin=(taskset -c "$BROKER_CPUS"); fi
# shellcheck disable=SC2034 # for the scripts' mqload command lines
if [[ -n ${LOAD_CPUS:-} ]]; then load_pin=(taskset -c "$LOAD_CPUS"); fi

broker_pid=""

# start_server NAME LOG PORT COMMAND...: start COMMAND in the background,
# its output to LOG, set broker_pid and wait until it listens on
# 127.0.0.1:PORT; if it does not, show the end of LOG, stop it and fail.
start_server() {
	local name=$1 logf=$2 port=$3
	shift 3
	"$@" >"$logf" 2>&1 &
	broker_pid=$!
	if ! wait_listen "$port" "$broker_pid"; then
		log "$name: did not start listening on 127.0.0.1:$port; its log:"
		tail -n 20 "$logf" >&2
		stop_broker
		return 1
	fi
}

# start_mqgate CONF LOG PORT [ARGS...]: start mqgate serve -c CONF ARGS...,
# logging to LOG, wait until it listens on PORT, set broker_pid. The binary
# is $tmp/mqgate, or $mqgate_bin when the call sets it
# (mqgate_bin=PATH start_mqgate ...).
start_mqgate() {
	local conf=$1 logf=$2 port=$3
	shift 3
	start_server "$conf" "$logf" "$port" \
		"${broker_pin[@]}" env "${unset_env[@]}" "${mqgate_bin:-$tmp/mqgate}" serve -c "$conf" "$@"
}

# stop_pid PID: end a process this script started: SIGTERM, then SIGKILL
# after 5 s.
stop_pid() {
	local pid=$1
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

# stop_broker: end the broker started by start_server or start_mqgate.
stop_broker() {
	local pid=$broker_pid
	broker_pid=""
	stop_pid "$pid"
}

# run_times DEFAULT SLACK: for the runs of DURATION (its whole seconds, or
# DEFAULT seconds when it is not a whole number of seconds), set per_run, a
# run's worst case (warm-up, measurement, drain and connection set-up: SLACK
# seconds more), and limit, mqload's timeout; zero the failed and skipped
# counts.
run_times() {
	secs=${DURATION%s}
	[[ $secs =~ ^[0-9]+$ ]] || secs=$1
	per_run=$((secs + $2))
	# shellcheck disable=SC2034 # for the scripts' mqload command lines
	limit=$((secs + 60))
	failed=0
	skipped=0
}

# run_fits: whether one more run fits in BUDGET seconds; a run that does not
# is counted as skipped.
run_fits() {
	if ((SECONDS + per_run > BUDGET)); then
		skipped=$((skipped + 1))
		return 1
	fi
}

# result_error SCENARIO LABEL ROUND ERROR: a result line for a run that
# gave none, in RESULTS.
result_error() {
	printf '{"scenario":"%s","broker":"%s","round":%d,"error":"%s"}\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# start_failed SCENARIO LABEL ROUND: the result line of a run whose broker
# did not start; the run counts as failed.
start_failed() {
	result_error "$1" "$2" "$3" "broker did not start"
	failed=$((failed + 1))
}

# save_result SCENARIO LABEL ROUND RC: mqload's result line ($tmp/run.json)
# into RESULTS, or an error line when it wrote none; with a nonzero exit
# status RC the run counts as failed.
save_result() {
	if [[ -s $tmp/run.json ]]; then
		cat "$tmp/run.json" >>"$RESULTS"
	else
		result_error "$1" "$2" "$3" "mqload exited with status $4 and no result"
	fi
	if (($4 != 0)); then
		failed=$((failed + 1))
	fi
}

# end_run LABEL [LOG]: say so if the broker exited during the run (with the
# end of its LOG, if given), then stop it.
end_run() {
	if ! kill -0 "$broker_pid" 2>/dev/null; then
		if [[ -n ${2:-} ]]; then
			log "$1: exited during the run; its log:"
			tail -n 20 "$2" >&2
		else
			log "$1: exited during the run"
		fi
	fi
	stop_broker
}

# warmup_note RESULTS: a line for each run in RESULTS whose broker took more
# than one minor page fault per 100 messages in its measured interval
# (mqload's broker_minor_faults): it was still growing its heap, and its
# msg/CPU-s pays for that (why and how long: WARMUP in webhook.sh).
warmup_note() {
	awk "$awk_lib"'
{
	f = num("broker_minor_faults"); m = num("msgs")
	if (m > 0 && f > m / 100)
		printf "note: %s %s round %d took %s page faults in its measured interval (%.3f per message): it was still touching fresh memory; a longer WARMUP leaves that out\n", str("scenario"), str("broker"), num("round"), commas(f), f / m
}' "$1"
}

# run_summary: the machine, the whole run's time and the skipped runs; exit 1
# when a run failed.
run_summary() {
	echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); whole run ${SECONDS}s"
	if ((skipped > 0)); then
		echo "$skipped runs skipped to stay within ${BUDGET}s"
	fi
	if ((failed > 0)); then
		echo "$failed runs failed (see above)"
		exit 1
	fi
}

# awk_lib: awk functions for mqload's JSON result lines, to put before an
# awk program. num(KEY) and str(KEY) are the numeric and string field KEY of
# the line ($0); commas(X) is X rounded, with thousands separators;
# ratio(A, B) is A / B with two decimals, "-" when B is not positive.
# counted() sets sc and b to the line's scenario and broker and is false
# for a line with an error or lost messages, which it counts in bad[sc, b].
# best(K) keeps the line's msg/s, msg per CPU-second and broker CPU % in
# rate[K], cpu[K] and pct[K] when K has none yet or a lower msg/s there, and
# says whether it did.
# shellcheck disable=SC2016 # awk's $0, not the shell's
awk_lib='
function num(key,   m) {
	if (match($0, "\"" key "\":-?[0-9.eE+-]+")) {
		m = substr($0, RSTART, RLENGTH)
		sub(/^[^:]*:/, "", m)
		return m + 0
	}
	return 0
}
function str(key,   m) {
	if (match($0, "\"" key "\":\"[^\"]*\"")) {
		m = substr($0, RSTART, RLENGTH)
		sub(/^[^:]*:"/, "", m)
		sub(/"$/, "", m)
		return m
	}
	return ""
}
function commas(x,   s, r) {
	s = sprintf("%.0f", x)
	r = ""
	while (length(s) > 3) {
		r = "," substr(s, length(s) - 2) r
		s = substr(s, 1, length(s) - 3)
	}
	return s r
}
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
function counted() {
	sc = str("scenario"); b = str("broker")
	if (index($0, "\"error\":") || num("lost") > 0) { bad[sc, b]++; return 0 }
	return 1
}
function best(k,   r) {
	r = num("msgs_per_sec")
	if ((k in rate) && r <= rate[k]) return 0
	rate[k] = r; cpu[k] = num("msgs_per_cpu_sec"); pct[k] = num("broker_cpu_pct")
	return 1
}
'

# compare_table SCENARIOS CONFIGS RESULTS [EXTRA] [MEDIANS]: from mqload's JSON
# result lines in RESULTS, a table of the best round (highest msg/s) of each
# scenario and configuration, its msg per broker CPU-second and the ratio
# of that to the first configuration's, and the median of the per-round
# ratios (the runs of a round share the machine's mood; the best rounds
# may not). EXTRA names more numeric fields of the lines to show, space
# separated; MEDIANS names numeric fields whose per-round ratios to the
# first configuration's get a median column each (for a latency such as
# p50 or p99, above 1 is slower). Rounds with an error or lost messages do
# not count.
compare_table() {
	awk -v scenarios="$1" -v configs="$2" -v extra="${4:-}" -v medians="${5:-}" "$awk_lib"'
counted() {
	rd = num("round")
	rc[sc, b, rd, 0] = num("msgs_per_cpu_sec")
	for (y = 1; y <= ny; y++)
		rc[sc, b, rd, y] = num(yl[y])
	if (rd > maxround) maxround = rd
	if (best(sc SUBSEP b))
		for (x = 1; x <= nx; x++)
			ex[sc, b, x] = num(xl[x])
}
# median of the per-round ratios c / base of field f (0: per CPU-second,
# else the f-th of MEDIANS) in sc: the runs of one round ran back to back,
# or side by side, so they share the machine'"'"'s mood.
function median(sc, c, base, f,   k, m, v, i, j, t) {
	m = 0
	for (k = 1; k <= maxround; k++)
		if ((sc, base, k, f) in rc && (sc, c, k, f) in rc && rc[sc, base, k, f] > 0)
			v[++m] = rc[sc, c, k, f] / rc[sc, base, k, f]
	if (m == 0) return "-"
	for (i = 2; i <= m; i++)
		for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
	return sprintf("%.2f", m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2)
}
BEGIN { nx = split(extra, xl, " "); ny = split(medians, yl, " ") }
END {
	ns = split(scenarios, sl, " ")
	nc = split(configs, cl, " ")
	head = ""
	rule = ""
	for (x = 1; x <= nx; x++) {
		head = head " | " xl[x]
		rule = rule " ---: |"
	}
	for (y = 1; y <= ny; y++) {
		head = head " | median " yl[y] " ratio"
		rule = rule " ---: |"
	}
	printf "| scenario | configuration | msg/s | msg/CPU-s | ratio per CPU-s | median of round ratios | broker CPU %%%s | rounds not counted |\n", head
	printf "| --- | --- | ---: | ---: | ---: | ---: | ---: |%s ---: |\n", rule
	for (i = 1; i <= ns; i++) {
		sc = sl[i]
		for (j = 1; j <= nc; j++) {
			c = cl[j]
			if (!((sc, c) in rate)) {
				printf "| %s | %s | no result |\n", sc, c
				continue
			}
			printf "| %s | %s | %s | %s | %s | %s | %.0f", sc, c, commas(rate[sc, c]), commas(cpu[sc, c]), ratio(cpu[sc, c], cpu[sc, cl[1]]), median(sc, c, cl[1], 0), pct[sc, c]
			for (x = 1; x <= nx; x++)
				printf " | %s", commas(ex[sc, c, x])
			for (y = 1; y <= ny; y++)
				printf " | %s", median(sc, c, cl[1], y)
			printf " | %d |\n", bad[sc, c]
		}
	}
}' "$3"
}
