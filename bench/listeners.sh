#!/usr/bin/env bash
# Cost of each transport of mqgate on this machine, out of process: QoS 0
# fan-in messages per broker CPU-second and broker RSS per idle connection,
# over plain TCP, TLS, WebSocket and secure WebSocket, with the load
# generator bench/cmd/mqload; Debian's mosquitto as a reference over TCP and
# TLS (its Debian build has no WebSocket support: a `protocol websockets`
# listener fails to start).
#
# Builds mqgate and mqload into a temporary directory and makes a
# self-signed ECDSA P-256 certificate for 127.0.0.1 with openssl. Every run
# gets a freshly started broker with the one listener it measures, on
# 127.0.0.1, stopped by its pid afterwards (also on exit, through a trap).
# A round runs fanin, then conns, over every transport of every broker.
# TLS clients trust the certificate (-cafile); wss clients skip the check
# (-insecure): the handshake is the same either way for the broker.
#
# The tables report, per transport and broker, the BEST round: fanin the
# one with the highest msg/s, conns the one with the lowest bytes per
# connection (the least disturbed by the rest of the machine).
#
# Environment (all optional):
#   ROUNDS     rounds                                   (3)
#   DURATION   measured interval of a fanin run         (4s)
#   CONNS      idle connections of a conns run           (3000)
#   BUDGET     seconds for the whole run; runs that would not fit are skipped (300)
#   MOSQUITTO  mosquitto binary; empty = no reference    (/usr/sbin/mosquitto if present)
#   RESULTS    file to keep the JSON result lines in (default: a temporary file)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
CONNS=${CONNS:-3000}
BUDGET=${BUDGET:-300}

# shellcheck source=bench/lib.sh
. bench/lib.sh
mosquitto_default
bench_setup

# Both sides of CONNS connections live on this machine.
if (($(ulimit -n) < CONNS + 200)); then
	ulimit -n $((CONNS + 200)) 2>/dev/null || die "open files limit $(ulimit -n) is below CONNS + 200; lower CONNS"
fi

log "building mqload and mqgate"
go build -o "$tmp/mqload" ./bench/cmd/mqload || die "mqload: build failed"
go build -o "$tmp/mqgate" ./cmd/mqgate || die "mqgate: build failed"

cert=$tmp/cert.pem
key=$tmp/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$key" -out "$cert" 2>"$tmp/openssl.log" || die "openssl: $(cat "$tmp/openssl.log")"

# write_mqgate TRANSPORT PORT: a config with the one listener of TRANSPORT.
write_mqgate() {
	local tr=$1 port=$2 kind
	case $tr in
	tcp) kind=tcp ;; tls) kind=ssl ;; ws) kind=ws ;; wss) kind=wss ;;
	esac
	{
		echo "listener.tcp.external = off"
		echo "listener.$kind.bench = 127.0.0.1:$port"
		echo "listener.$kind.bench.max_connections = 0"
		if [[ $tr == tls || $tr == wss ]]; then
			echo "listener.$kind.bench.certfile = $cert"
			echo "listener.$kind.bench.keyfile = $key"
		fi
		echo "broker.sys_interval = 0"
		echo "log.level = warn"
	} >"$tmp/mqgate-$tr.conf"
}

# write_mosquitto TRANSPORT PORT: the same for mosquitto, configured as
# bench/run.sh configures it (no persistence, unbounded queues).
write_mosquitto() {
	local tr=$1 port=$2
	{
		# Started as root, mosquitto would switch to the mosquitto user,
		# which cannot read the certificate in this private directory.
		echo "user $(id -un)"
		echo "listener $port 127.0.0.1"
		if [[ $tr == tls ]]; then
			echo "certfile $cert"
			echo "keyfile $key"
		fi
		echo "allow_anonymous true"
		echo "persistence false"
		echo "max_queued_messages 1000000"
		echo "max_inflight_messages 0"
		echo "sys_interval 0"
		echo "log_dest none"
	} >"$tmp/mosquitto-$tr.conf"
}

# start BROKER TRANSPORT PORT: start a fresh broker, set broker_pid.
start() {
	local b=$1 tr=$2 port=$3
	if [[ $b == mqgate ]]; then
		write_mqgate "$tr" "$port"
		start_mqgate "$tmp/mqgate-$tr.conf" "$tmp/mqgate-$tr.log" "$port"
		return
	fi
	write_mosquitto "$tr" "$port"
	start_server "mosquitto $tr" "$tmp/mosquitto-$tr.log" "$port" "$MOSQUITTO" -c "$tmp/mosquitto-$tr.conf"
}

# target TRANSPORT PORT: mqload's address flags for TRANSPORT.
target() {
	case $1 in
	tcp) echo "-addr 127.0.0.1:$2" ;;
	tls) echo "-addr 127.0.0.1:$2 -tls -cafile $cert" ;;
	ws) echo "-addr ws://127.0.0.1:$2/mqtt" ;;
	wss) echo "-addr wss://127.0.0.1:$2/mqtt -insecure" ;;
	esac
}

configs=("mqgate tcp" "mqgate tls" "mqgate ws" "mqgate wss")
if [[ -n $MOSQUITTO ]]; then
	configs+=("mosquitto tcp" "mosquitto tls")
fi

# A run's worst case: DURATION and 6 s.
run_times 4 6

for round in $(seq 1 "$ROUNDS"); do
	for scenario in fanin conns; do
		for c in "${configs[@]}"; do
			read -r b tr <<<"$c"
			run_fits || continue
			label="$b-$tr"
			port=$(free_port) || die "no free port"
			if ! start "$b" "$tr" "$port"; then
				start_failed "$scenario" "$label" "$round"
				continue
			fi
			extra=(-duration "$DURATION")
			[[ $scenario == conns ]] && extra=(-conns "$CONNS")
			# shellcheck disable=SC2046 # target's words are separate flags
			timeout "$limit" "$tmp/mqload" $(target "$tr" "$port") -pid "$broker_pid" \
				-scenario "$scenario" -label "$label" -round "$round" "${extra[@]}" -json >"$tmp/run.json"
			save_result "$scenario" "$label" "$round" $?
			end_run "$label"
		done
	done
done

echo
awk -v configs="$(printf '%s-' "${configs[@]}" | tr ' ' '-')" "$awk_lib"'
counted() {
	if (sc == "fanin") {
		best(b)
	} else if (sc == "conns") {
		r = num("bytes_per_conn")
		if (!((b) in per) || r < per[b]) { per[b] = r; alive[b] = num("alive") }
	}
}
END {
	n = split(configs, parts, "-")
	k = 0
	for (i = 1; i + 1 <= n; i += 2) { k++; name[k] = parts[i] "-" parts[i + 1]; brk[k] = parts[i] }
	printf "| broker | transport | fanin msg/s | msg per broker CPU-s | per CPU-s vs tcp | broker CPU %% | KiB per idle conn | idle conns |\n"
	printf "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
	for (i = 1; i <= k; i++) {
		b = name[i]; base = brk[i] "-tcp"; split(b, p, "-")
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2],
			(b in rate) ? commas(rate[b]) : "-", (b in cpu) ? commas(cpu[b]) : "-",
			(b in cpu) ? ratio(cpu[b], cpu[base]) : "-", (b in pct) ? sprintf("%.0f", pct[b]) : "-",
			(b in per) ? sprintf("%.1f", per[b] / 1024) : "-", (b in alive) ? commas(alive[b]) : "-"
		if (bad["fanin", b] + bad["conns", b] > 0)
			nbad = nbad sprintf(" %s: %d", b, bad["fanin", b] + bad["conns", b])
	}
	if (nbad != "") print "\nrounds with errors or loss, not counted:" nbad
}' "$RESULTS"
echo
echo "best of $ROUNDS rounds: fanin = highest msg/s over $DURATION, conns = lowest RSS growth per connection over $CONNS idle connections"
run_summary
