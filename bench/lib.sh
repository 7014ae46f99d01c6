# Shell functions shared by the benchmark scripts under bench/ (sourced,
# not run). The caller sets tmp (a temporary directory) and builds mqgate
# into $tmp/mqgate.

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
if [[ -n ${LOAD_CPUS:-} ]]; then load_pin=(taskset -c "$LOAD_CPUS"); fi

broker_pid=""

# start_mqgate CONF LOG PORT [ARGS...]: start mqgate serve -c CONF ARGS...,
# logging to LOG, wait until it listens on PORT, set broker_pid.
start_mqgate() {
	local conf=$1 logf=$2 port=$3
	shift 3
	"${broker_pin[@]}" env "${unset_env[@]}" "$tmp/mqgate" serve -c "$conf" "$@" >"$logf" 2>&1 &
	broker_pid=$!
	if ! wait_listen "$port" "$broker_pid"; then
		log "$conf: did not start listening on 127.0.0.1:$port; its log:"
		tail -n 20 "$logf" >&2
		stop_pid "$broker_pid"
		broker_pid=""
		return 1
	fi
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

# stop_broker: end the broker started by start_mqgate.
stop_broker() {
	local pid=$broker_pid
	broker_pid=""
	stop_pid "$pid"
}

# compare_table SCENARIOS CONFIGS RESULTS [EXTRA]: from mqload's JSON result
# lines in RESULTS, a table of the best round (highest msg/s) of each
# scenario and configuration, its msg per broker CPU-second and the ratio
# of that to the first configuration's; EXTRA names one more numeric field
# of the lines to show. Rounds with an error or lost messages do not count.
compare_table() {
	awk -v scenarios="$1" -v configs="$2" -v extra="${4:-}" '
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
{
	sc = str("scenario"); b = str("broker")
	if (index($0, "\"error\":") || num("lost") > 0) { bad[sc, b]++; next }
	r = num("msgs_per_sec")
	if (!((sc, b) in rate) || r > rate[sc, b]) {
		rate[sc, b] = r
		cpu[sc, b] = num("msgs_per_cpu_sec")
		pct[sc, b] = num("broker_cpu_pct")
		ex[sc, b] = extra != "" ? num(extra) : 0
	}
}
END {
	ns = split(scenarios, sl, " ")
	nc = split(configs, cl, " ")
	printf "| scenario | configuration | msg/s | msg/CPU-s | ratio per CPU-s | broker CPU %%%s | rounds not counted |\n", extra != "" ? " | " extra : ""
	printf "| --- | --- | ---: | ---: | ---: | ---: |%s ---: |\n", extra != "" ? " ---: |" : ""
	for (i = 1; i <= ns; i++) {
		sc = sl[i]
		for (j = 1; j <= nc; j++) {
			c = cl[j]
			if (!((sc, c) in rate)) {
				printf "| %s | %s | no result |\n", sc, c
				continue
			}
			ratio = (sc, cl[1]) in cpu && cpu[sc, cl[1]] > 0 ? sprintf("%.2f", cpu[sc, c] / cpu[sc, cl[1]]) : "-"
			printf "| %s | %s | %s | %s | %s | %.0f", sc, c, commas(rate[sc, c]), commas(cpu[sc, c]), ratio, pct[sc, c]
			if (extra != "")
				printf " | %s", commas(ex[sc, c])
			printf " | %d |\n", bad[sc, c]
		}
	}
}' "$3"
}
