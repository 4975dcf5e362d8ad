# shellcheck shell=bash
# SPDX-License-Identifier: BSD-2-Clause
#
# bench/lib/common.sh - helpers of the benchmark parts (scale.sh,
# throughput.sh): a bpflbd per node started and reloaded with timestamps taken
# as its log lines arrive, iptables rules in a node, CPU time from /proc/stat.
# Source after tests/lib/cluster.sh and tests/lib/bpflb.sh.

# Every log line of a daemon, prefixed with the time it was written
# ($EPOCHREALTIME when the line arrived; bpflbd writes stderr unbuffered).
bench_ts_lines() {
	local l
	while IFS= read -r l; do
		printf '%s %s\n' "$EPOCHREALTIME" "$l"
	done
}

# Seconds (float) between two $EPOCHREALTIME values.
bench_dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }

# Time of the first line after line number SKIP of FILE that matches RE,
# waiting up to TIMEOUT seconds; prints the line's timestamp.
bench_wait_line() {
	local file="$1" skip="$2" re="$3" timeout="${4:-120}" t
	local deadline=$((SECONDS + ${timeout%.*} + 1))
	while ((SECONDS < deadline)); do
		t=$(tail -n +"$((skip + 1))" "$file" 2>/dev/null | awk -v re="$re" '$0 ~ re { print $1; exit }')
		if [[ -n $t ]]; then
			echo "$t"
			return 0
		fi
		sleep 0.01
	done
	return 1
}

bench_lines() { wc -l <"$1" 2>/dev/null || echo 0; }

# bench_bpflb_start I: start node I's bpflbd (config from bpflb_config) and wait
# until it runs.  Sets BENCH_START_S (seconds from exec to "running") and
# BENCH_PID.  Cleanup (daemon, --cleanup, pins) is registered with the cluster.
bench_bpflb_start() {
	local i="$1" logf t0 t1 n
	logf="$(bpflb_log "$i")"
	touch "$logf"
	n=$(bench_lines "$logf")
	if [[ ! -f $CLUSTER_STATE/bpflbd-node$i.registered ]]; then
		cluster_on_exit _bpflb_cleanup_node "$i"
		touch "$CLUSTER_STATE/bpflbd-node$i.registered"
	fi
	t0=$EPOCHREALTIME
	nsenter --net="/run/netns/$(cluster_node_ns "$i")" -- "$BPFLBD" --config "$(bpflb_ini "$i")" \
		</dev/null 2> >(bench_ts_lines >>"$logf") >/dev/null &
	BENCH_PID=$!
	echo "$BENCH_PID" >"$CLUSTER_STATE/bpflbd-node$i.pid"
	disown "$BENCH_PID"
	if ! t1=$(bench_wait_line "$logf" "$n" "running: mode|err: " 300) ||
		[[ $(tail -n +"$((n + 1))" "$logf" | grep -c 'running: mode') -eq 0 ]]; then
		sed 's/^/  bpflbd: /' "$logf" | tail -20 >&2
		fail "bpflbd on node $i did not start"
	fi
	# shellcheck disable=SC2034 # the caller reads it
	BENCH_START_S=$(bench_dt "$t0" "$t1")
}

# bench_bpflb_stop I: SIGTERM node I's daemon (pins stay), wait for its end.
bench_bpflb_stop() {
	local i="$1" pid
	pid="$(bpflb_pid "$i")"
	kill -TERM "$pid" 2>/dev/null || true
	wait_for "! kill -0 $pid 2>/dev/null" 30 0.05 || fail "bpflbd on node $i did not stop"
	rm -f "$CLUSTER_STATE/bpflbd-node$i.pid"
}

# bench_bpflb_fresh I: stop node I's daemon and remove its datapath and pins,
# so that the next start loads everything from scratch.
bench_bpflb_fresh() {
	local i="$1"
	[[ -f $CLUSTER_STATE/bpflbd-node$i.pid ]] && bench_bpflb_stop "$i"
	in_ns "$(cluster_node_ns "$i")" "$BPFLBD" --config "$(bpflb_ini "$i")" --cleanup \
		>/dev/null 2>&1 || true
	rm -rf "$(bpflb_pin "$i")"
}

# bench_bpflb_reload I: SIGHUP; prints the seconds until "reload done" (fails
# the run on "reload failed").
bench_bpflb_reload() {
	local i="$1" logf n t0 t1
	logf="$(bpflb_log "$i")"
	n=$(bench_lines "$logf")
	t0=$EPOCHREALTIME
	kill -HUP "$(bpflb_pid "$i")"
	t1=$(bench_wait_line "$logf" "$n" "reload done|reload failed" 300) ||
		fail "bpflbd on node $i did not finish its reload"
	if tail -n +"$((n + 1))" "$logf" | grep >/dev/null "reload failed"; then
		tail -n +"$((n + 1))" "$logf" >&2
		fail "bpflbd on node $i refused the reload"
	fi
	bench_dt "$t0" "$t1"
}

# Resident set of a process in kB.
bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# iptables in namespace NS with the chosen backend (legacy or nft).
bench_ipt_restore() {
	local ns="$1" file="$2"
	in_ns "$ns" "iptables-${BENCH_IPT:-legacy}-restore" <"$file"
}

bench_ipt_flush() {
	local ns="$1" t
	for t in nat filter; do
		in_ns "$ns" "iptables-${BENCH_IPT:-legacy}" -t "$t" -F 2>/dev/null || true
		in_ns "$ns" "iptables-${BENCH_IPT:-legacy}" -t "$t" -X 2>/dev/null || true
	done
}

# Machine-wide CPU time from /proc/stat, in USER_HZ ticks:
# "busy user system softirq irq" (busy = everything but idle and iowait).
bench_cpu_ticks() {
	awk '$1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, $2 + $3, $4, $8, $7; exit }' /proc/stat
}
