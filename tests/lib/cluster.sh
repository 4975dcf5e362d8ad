# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/cluster.sh - a small Kubernetes-like cluster of network namespaces
# on one machine, for the end-to-end tests of bpflbd.  Source it from bash:
#
#     . "$(dirname "$0")/../lib/cluster.sh"
#     cluster_find_tools "$1"     # where peerd/peerc were built
#     cluster_trap                # clean up on every exit, also on failure/^C
#     cluster_up 3
#     cluster_start_peerd 1 1 web-1
#     out=$(peerc_in client tcp "$(cluster_node_ip 1)" 30080)
#
# Needs root, iproute2 (ip), nsenter (util-linux) and sysctl (procps).  Every
# function works with `set -euo pipefail` as well as without.  Under pipefail a
# pipe never ends in `grep -q`: it exits at the first match, the writer then
# dies of SIGPIPE and the pipe fails although it matched (seen under ASan,
# where bpflbctl writes slower).  Tests use `grep >/dev/null PATTERN`.
#
# Topology (nothing is created in the root namespace; every veth is created
# directly inside its namespaces, so no interface name ever appears there):
#
#   ${P}client --+
#   ${P}ext -----+-- ${P}fabric (bridge br0: the node network) --+-- ${P}n1 -- ${P}n1p1 ...
#                                                                +-- ${P}n2 -- ${P}n2p1 ...
#                                                                +-- ${P}nN -- ${P}nNp1 ...
#
# Addressing plan (node network 10.99.0.0/24, pod CIDR of node i 10.244.i.0/24):
#
#   namespace    interface        address            MAC                  routes
#   ${P}fabric   br0 + ports      (none)             -                    -
#                ports: client, ext, n1..nN (the fabric ends of the veths)
#   ${P}client   eth0             10.99.0.100/24     02:00:0a:63:00:64    connected /24 only, plus
#                                                                         LB IPs via cluster_route_lbip
#   ${P}ext      eth0             10.99.0.200/24     02:00:0a:63:00:c8    connected /24 only (an
#                                                                         "internet" server: no pod routes,
#                                                                         so pods reach it only via SNAT)
#   ${P}n<i>     eth0             10.99.0.<i>/24     02:00:0a:63:00:<i>   10.244.<k>.0/24 via 10.99.0.<k>
#                                                                         for every other node k
#                lxc<j>           10.244.<i>.1/32    02:fe:0a:f4:<i>:<j+1>  10.244.<i>.<j+1>/32 dev lxc<j>
#                                 (same gateway address on every pod veth)   src 10.244.<i>.1
#   ${P}n<i>p<j> eth0             10.244.<i>.<j+1>/32 02:00:0a:f4:<i>:<j+1>  10.244.<i>.1 dev eth0 (link),
#                                                                         default via 10.244.<i>.1
#   (MAC bytes are hex of the address bytes.)  Node i is 1..99, pod j 1..253.
#
#   Pod j of node i ("pod <i>/<j>") is 10.244.<i>.<j+1>: pod 1 is .2, pod 2 is
#   .3, ...  Pods have a /32 and route everything through their node (L3, the
#   Cilium way), so pod-to-pod traffic passes the node even on the same node.
#   A hostnet pod (cluster_add_pod I J hostnet) has no namespace of its own: it
#   is the node namespace and has the node IP.
#
#   Source addresses as a pod sees them (no load balancer involved): from its
#   own node 10.244.<i>.1; from another node that node's 10.99.0.<k>; from a
#   pod the pod IP.
#
# Kernel settings: ip_forward=1 in nodes; rp_filter=0 (all, default and every
# interface) in every namespace, because DSR and load balancing produce
# asymmetric paths (request via node A, reply from node B) that strict or loose
# reverse path filtering would drop; ICMP redirects off (nodes forward
# fabric->fabric after DNAT to another node and must not teach the client a
# shortcut); IPv6 disabled on every link (captures stay quiet: no RS, DAD or
# MLD); lo is up everywhere.
#
# Running commands in a namespace: use in_ns (nsenter --net=/run/netns/NAME),
# NOT `ip netns exec`: ip netns exec remounts /sys in a new mount namespace,
# which hides the shared bpffs at /sys/fs/bpf that bpflbd pins into.
#
# Exported variables:
#   P            per-run prefix of every namespace name, "bl<pid>-" (override
#                with BPFLB_PREFIX: 1-12 letters/digits and a final '-', unique per run)
#   CLIENT_NS FABRIC_NS EXT_NS   namespace names;  CLIENT_IP EXT_IP  their IPs
#   FABRIC_CIDR  10.99.0.0/24;  CLUSTER_NODES  node count after cluster_up
#   PEERD PEERC  tool paths (cluster_find_tools)
#   CLUSTER_STATE  this run's state directory (pids, hooks, logs);
#   CLUSTER_LOGDIR its logs/ (peerd logs, cluster_bg logs).  Set
#                BPFLB_KEEP_LOGS=1 to keep the directory after cluster_down.
#
# Functions:
#   cluster_up [NODES=3]           build the cluster: fabric, client, ext, NODES nodes with pod 1 each
#   cluster_down                   kill tracked processes, run exit hooks, delete the namespaces; idempotent
#   cluster_trap                   trap EXIT/INT/TERM/HUP/PIPE -> cluster_down (cluster_up calls it if no EXIT trap)
#   cluster_gc                     clean up after earlier runs whose shell died without cleaning up
#                                  (SIGKILL, e.g. a ctest timeout); cluster_up calls it
#   cluster_on_exit CMD...         register cleanup run by cluster_down before the namespaces go (LIFO,
#                                  each in a subshell; one argument is eval'd, several are one command)
#   cluster_add_pod NODE IDX [hostnet]  add pod IDX on node NODE (hostnet: the node ns itself)
#   cluster_del_pod NODE IDX       stop the pod's processes (its peerd also for hostnet pods) and
#                                  delete its namespace and veth
#   cluster_route_lbip IP NODE [NS]  (re)point IP/32 at node NODE's fabric IP in NS (default client)
#   cluster_unroute_lbip IP [NS]   remove that route
#   cluster_node_ns I / cluster_node_ip I       node namespace / fabric IP
#   cluster_pod_ns I J / cluster_pod_ip I J     pod namespace / IP (node's for hostnet pods)
#   cluster_pod_cidr I / cluster_pod_gw I       10.244.I.0/24 / 10.244.I.1
#   in_ns NS CMD...                run CMD in namespace NS (full name or short: client, n1, n1p1, ext)
#   cluster_find_tools [DIR]       set PEERD/PEERC from DIR, $BPFLB_BUILD or the PATH
#   cluster_start_peerd NODE POD NAME [PEERD-ARGS...]  start peerd in the pod (tcp 8080, udp 8081),
#                                  wait until it listens, track its pid
#   cluster_stop_peerd NODE POD    stop that peerd (simulates a dead backend)
#   peerc_in NS PEERC-ARGS...      run peerc in namespace NS
#   cluster_bg NS LOG CMD...       start CMD in NS in the background (output to LOG), track its pid in
#                                  CLUSTER_BG_PID; do not call it inside $(...)
#   cluster_track_pid PID [NS] [TAG]  have cluster_down stop process PID
#   cluster_kill_pid PID           stop a tracked process now (TERM, then KILL after 3 s)
#   cluster_dump [NS...]           print addresses, routes and neighbours (for failure reports)
#   wait_for CMD [TIMEOUT_S=10] [INTERVAL_S=0.1]  eval the string CMD (output discarded) until it
#                                  succeeds; returns 1 (and logs) on timeout; fractions allowed
#   log MSG...                     timestamped message on stderr
#   fail MSG...                    "FAIL: MSG (file:line)" on stderr and exit 1 (the trap cleans up)
#
# Signals: INT/TERM/HUP/PIPE end the test through the EXIT trap; signals are
# held back while cluster_down runs, so a second ^C does not cut the cleanup
# short.  Known bash 5.2 flaw: a trap firing while bash parses a $(...) can
# fail with "interrupt trap: ... unexpected EOF" (a few percent of random
# signals); that signal is lost and the test goes on (and still cleans up
# when it ends), so send it again.  A test killed with SIGKILL leaves its
# namespaces behind; the next cluster_up (cluster_gc) removes them.

if [[ -n "${_BPFLB_CLUSTER_SH:-}" ]]; then
	return 0
fi
_BPFLB_CLUSTER_SH=1

P="${BPFLB_PREFIX:-bl$$-}"
if [[ ! "$P" =~ ^[A-Za-z0-9]{1,12}-$ ]]; then
	echo "cluster.sh: bad prefix '$P' (1-12 of A-Z a-z 0-9, then '-')" >&2
	return 1
fi
CLIENT_NS="${P}client"
FABRIC_NS="${P}fabric"
EXT_NS="${P}ext"
CLIENT_IP=10.99.0.100
EXT_IP=10.99.0.200
FABRIC_CIDR=10.99.0.0/24
CLUSTER_NODES=0
# State belongs to the shell that sourced this file (a test started by another
# test must not inherit, and so clean up, its parent's cluster).
CLUSTER_STATE=""
CLUSTER_LOGDIR=""
export P CLIENT_NS FABRIC_NS EXT_NS CLIENT_IP EXT_IP FABRIC_CIDR CLUSTER_NODES

# ---------------------------------------------------------------- messages

log() {
	local t="${EPOCHREALTIME:-}" ms=000
	[[ -n "$t" ]] && ms="${t#*.}" && ms="${ms:0:3}"
	printf '%(%H:%M:%S)T.%s %s\n' -1 "$ms" "$*" >&2
}

fail() {
	local where="${BASH_SOURCE[1]:-?}:${BASH_LINENO[0]:-?}"
	printf 'FAIL: %s (%s)\n' "$*" "${where##*/}" >&2
	exit 1
}

# "1.5" -> 1500000 (microseconds)
_cl_us() {
	local s="$1" int frac
	int="${s%%.*}"
	frac=""
	[[ "$s" == *.* ]] && frac="${s#*.}"
	frac="${frac}000000"
	echo $((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

_cl_now_us() {
	local t="$EPOCHREALTIME"
	echo $((10#${t%.*} * 1000000 + 10#${t#*.}))
}

wait_for() {
	local cmd="$1" timeout="${2:-10}" interval="${3:-0.1}" deadline
	deadline=$(($(_cl_now_us) + $(_cl_us "$timeout")))
	while :; do
		if eval "$cmd" >/dev/null 2>&1; then
			return 0
		fi
		if (($(_cl_now_us) >= deadline)); then
			log "timed out after ${timeout}s waiting for: $cmd"
			return 1
		fi
		sleep "$interval"
	done
}

# ---------------------------------------------------------------- state

# The state directory holds, one entry per line:
#   netns  namespaces this run created        pids   "PID STARTTIME NS TAG"
#   exit   cleanup commands (eval'd, LIFO)    pods   "NODE IDX ns|hostnet"
#   owner  "PID STARTTIME PIDNS PREFIX" of the shell that owns the run
# Files, not shell variables, so that functions called in subshells count too.
_cl_init() {
	if [[ -n "${CLUSTER_STATE:-}" && -d "$CLUSTER_STATE" ]]; then
		return 0
	fi
	CLUSTER_STATE="$(mktemp -d "${TMPDIR:-/tmp}/bpflb-${P}XXXXXX")" ||
		fail "cannot create a state directory"
	# Who owns this run: cluster_gc collects the run once this shell is gone.
	echo "$$ $(_cl_starttime $$) $(readlink /proc/$$/ns/pid) $P" >"$CLUSTER_STATE/owner"
	CLUSTER_LOGDIR="$CLUSTER_STATE/logs"
	mkdir -p "$CLUSTER_LOGDIR"
	: >"$CLUSTER_STATE/netns"
	: >"$CLUSTER_STATE/pids"
	: >"$CLUSTER_STATE/exit"
	: >"$CLUSTER_STATE/pods"
	export CLUSTER_STATE CLUSTER_LOGDIR
}

_cl_need_state() {
	[[ -n "${CLUSTER_STATE:-}" && -d "$CLUSTER_STATE" ]] ||
		fail "no cluster state: call cluster_trap or cluster_up first (in the main shell)"
}

cluster_on_exit() {
	(($# > 0)) || fail "cluster_on_exit: no command"
	_cl_need_state
	if (($# == 1)); then
		printf '%s\n' "$1" >>"$CLUSTER_STATE/exit"
	else
		local q
		q="$(printf '%q ' "$@")"
		printf '%s\n' "$q" >>"$CLUSTER_STATE/exit"
	fi
}

# Start time of a live process (fails for a gone or zombie process).
_cl_starttime() {
	local stat
	local -a f
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	# after "comm) ": state is field 1, starttime field 20
	read -r -a f <<<"$stat"
	[[ "${f[0]}" != Z && "${f[0]}" != X ]] || return 1
	echo "${f[19]}"
}

cluster_track_pid() {
	local pid="$1" ns="${2:--}" tag="${3:--}" st
	_cl_need_state
	st="$(_cl_starttime "$pid")" || st=0
	echo "$pid $st $ns $tag" >>"$CLUSTER_STATE/pids"
}

# True if PID is still the process that was tracked (guards against pid
# reuse).  STARTTIME 0 means it was gone already when tracked: never ours.
_cl_same_proc() {
	local pid="$1" st="$2" now
	[[ "$st" != 0 ]] || return 1
	now="$(_cl_starttime "$pid")" || return 1
	[[ "$now" == "$st" ]]
}

# Stops the given "PID STARTTIME" pairs: TERM, then KILL after 3 s.
_cl_stop_procs() {
	local - # no set -e here: races (a process exiting meanwhile) are normal
	set +e
	local -a alive=() signaled=()
	local pid st i
	while (($# >= 2)); do
		pid="$1" st="$2"
		shift 2
		if _cl_same_proc "$pid" "$st"; then
			kill -TERM "$pid" 2>/dev/null && alive+=("$pid" "$st") && signaled+=("$pid")
		fi
	done
	for ((i = 0; i < 30 && ${#alive[@]} > 0; i++)); do
		local -a still=()
		local j
		for ((j = 0; j < ${#alive[@]}; j += 2)); do
			_cl_same_proc "${alive[j]}" "${alive[j + 1]}" && still+=("${alive[j]}" "${alive[j + 1]}")
		done
		alive=("${still[@]}")
		((${#alive[@]} > 0)) && sleep 0.1
	done
	for ((i = 0; i < ${#alive[@]}; i += 2)); do
		log "pid ${alive[i]} ignored SIGTERM, killing it"
		kill -KILL "${alive[i]}" 2>/dev/null || true
	done
	# Reap those that are our own children (others: wait fails at once).
	for pid in "${signaled[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	return 0
}

cluster_kill_pid() {
	local want="$1" pid st ns tag
	_cl_need_state
	local -
	set +e
	while read -r pid st ns tag; do
		[[ "$pid" == "$want" ]] && _cl_stop_procs "$pid" "$st"
	done <"$CLUSTER_STATE/pids"
	wait "$want" 2>/dev/null || true
	return 0
}

# Stops tracked processes of namespace NS (all when NS is empty), and any
# other process still living in NS (all of them were started by this run).
_cl_stop_ns_procs() {
	local - want="${1:-}" pid st ns tag
	set +e
	local -a pairs=()
	[[ -f "$CLUSTER_STATE/pids" ]] || return 0
	while read -r pid st ns tag; do
		[[ -z "$want" || "$ns" == "$want" ]] && pairs+=("$pid" "$st")
	done <"$CLUSTER_STATE/pids"
	((${#pairs[@]} > 0)) && _cl_stop_procs "${pairs[@]}"
	if [[ -n "$want" && -e "/run/netns/$want" ]]; then
		pairs=()
		for pid in $(ip netns pids "$want" 2>/dev/null); do
			pairs+=("$pid" "$(_cl_starttime "$pid" || echo 0)")
		done
		((${#pairs[@]} > 0)) && _cl_stop_procs "${pairs[@]}"
	fi
	return 0
}

# ---------------------------------------------------------------- names

_cl_num() {
	local v="$1" what="$2" lo="$3" hi="$4"
	if [[ ! "$v" =~ ^[0-9]+$ ]] || ((10#$v < lo || 10#$v > hi)); then
		fail "$what must be $lo..$hi, got '$v'"
	fi
}

cluster_node_ns() { echo "${P}n$1"; }
cluster_node_ip() { echo "10.99.0.$1"; }
cluster_pod_cidr() { echo "10.244.$1.0/24"; }
cluster_pod_gw() { echo "10.244.$1.1"; }

_cl_pod_kind() {
	local n i k
	[[ -n "${CLUSTER_STATE:-}" && -f "$CLUSTER_STATE/pods" ]] || return 1
	while read -r n i k; do
		if [[ "$n" == "$1" && "$i" == "$2" ]]; then
			echo "$k"
			return 0
		fi
	done <"$CLUSTER_STATE/pods"
	return 1
}

cluster_pod_ns() {
	if [[ "$(_cl_pod_kind "$1" "$2")" == hostnet ]]; then
		cluster_node_ns "$1"
	else
		echo "${P}n$1p$2"
	fi
}

cluster_pod_ip() {
	if [[ "$(_cl_pod_kind "$1" "$2")" == hostnet ]]; then
		cluster_node_ip "$1"
	else
		echo "10.244.$1.$(($2 + 1))"
	fi
}

# Short names (client, n1, n1p2, ...) are accepted where the full name does
# not exist.
_cl_ns() {
	if [[ -e "/run/netns/$1" ]]; then
		echo "$1"
	elif [[ -e "/run/netns/$P$1" ]]; then
		echo "$P$1"
	else
		echo "$1"
	fi
}

in_ns() {
	local ns
	(($# >= 2)) || fail "usage: in_ns NS CMD..."
	ns="$(_cl_ns "$1")"
	shift
	[[ -e "/run/netns/$ns" ]] || {
		echo "in_ns: no namespace '$ns'" >&2
		return 127
	}
	nsenter --net="/run/netns/$ns" -- "$@"
}

_cl_mac() { # 02:XX + the four bytes of an IPv4 address, in hex
	local pre="$1" IFS=.
	local -a b
	read -r -a b <<<"$2"
	printf '02:%s:%02x:%02x:%02x:%02x' "$pre" "${b[0]}" "${b[1]}" "${b[2]}" "${b[3]}"
}

# ---------------------------------------------------------------- building

_cl_sysctls_common=(
	net.ipv4.conf.all.rp_filter=0
	net.ipv4.conf.default.rp_filter=0
	net.ipv4.conf.all.accept_redirects=0
	net.ipv4.conf.default.accept_redirects=0
	net.ipv4.conf.all.send_redirects=0
	net.ipv4.conf.default.send_redirects=0
	net.ipv6.conf.default.disable_ipv6=1
)

# New namespace with lo up and the common sysctls (set before any link exists,
# so new links inherit them from "default").
_cl_mkns() {
	local ns="$1"
	[[ -e "/run/netns/$ns" ]] && fail "namespace $ns exists already (stale run? remove it by hand)"
	# Recorded first: a signal between the two steps must not leak it.
	echo "$ns" >>"$CLUSTER_STATE/netns"
	ip netns add "$ns" || fail "ip netns add $ns failed"
	ip -n "$ns" link set dev lo up || fail "lo up in $ns failed"
	in_ns "$ns" sysctl -q -w "${_cl_sysctls_common[@]}" >/dev/null ||
		fail "sysctls in $ns failed"
}

# Per-interface sysctls, in case a link did not inherit "default".
_cl_ifsysctls() {
	local ns="$1" dev
	shift
	local -a kv=()
	for dev in "$@"; do
		kv+=("net.ipv4.conf.$dev.rp_filter=0" "net.ipv6.conf.$dev.disable_ipv6=1")
	done
	in_ns "$ns" sysctl -q -w "${kv[@]}" >/dev/null || fail "interface sysctls in $ns failed"
}

# Plugs namespace NS into the fabric bridge: port PORT in the fabric, eth0 in NS.
_cl_fabric_attach() {
	local ns="$1" port="$2" ip="$3"
	ip -n "$FABRIC_NS" link add name "$port" type veth peer name eth0 netns "$ns" ||
		fail "veth $port<->$ns/eth0 failed"
	_cl_ifsysctls "$FABRIC_NS" "$port"
	ip -n "$FABRIC_NS" link set dev "$port" master br0 up || fail "bridge port $port failed"
	_cl_ifsysctls "$ns" eth0
	ip -n "$ns" link set dev eth0 address "$(_cl_mac 00 "$ip")" up || fail "eth0 up in $ns failed"
	ip -n "$ns" addr add "$ip/24" dev eth0 || fail "address $ip in $ns failed"
}

cluster_up() {
	local n="${1:-3}" i k
	_cl_num "$n" "cluster_up: node count" 1 99
	_cl_init
	[[ -n "$(trap -p EXIT)" ]] || cluster_trap
	command -v nsenter >/dev/null || fail "nsenter (util-linux) is missing"
	command -v sysctl >/dev/null || fail "sysctl (procps) is missing"
	((EUID == 0)) || fail "cluster_up needs root"
	cluster_gc
	if ip netns list 2>/dev/null | grep >/dev/null "^${P}"; then
		fail "namespaces with prefix $P exist already: $(ip netns list | grep "^${P}" | tr '\n' ' ')"
	fi
	CLUSTER_NODES="$n"
	export CLUSTER_NODES
	log "cluster_up: prefix $P, $n node(s), state $CLUSTER_STATE"

	_cl_mkns "$FABRIC_NS"
	ip -n "$FABRIC_NS" link add name br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 ||
		fail "bridge in $FABRIC_NS failed"
	_cl_ifsysctls "$FABRIC_NS" br0
	ip -n "$FABRIC_NS" link set dev br0 up || fail "br0 up failed"

	_cl_mkns "$CLIENT_NS"
	_cl_fabric_attach "$CLIENT_NS" client "$CLIENT_IP"
	_cl_mkns "$EXT_NS"
	_cl_fabric_attach "$EXT_NS" ext "$EXT_IP"

	for ((i = 1; i <= n; i++)); do
		local ns
		ns="$(cluster_node_ns "$i")"
		_cl_mkns "$ns"
		in_ns "$ns" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null || fail "ip_forward in $ns failed"
		_cl_fabric_attach "$ns" "n$i" "$(cluster_node_ip "$i")"
		for ((k = 1; k <= n; k++)); do
			((k == i)) && continue
			ip -n "$ns" route add "$(cluster_pod_cidr "$k")" via "$(cluster_node_ip "$k")" dev eth0 ||
				fail "route to pods of node $k in $ns failed"
		done
	done
	for ((i = 1; i <= n; i++)); do
		cluster_add_pod "$i" 1
	done
	log "cluster_up: done"
}

cluster_add_pod() {
	local node="$1" idx="$2" kind="${3:-}" nns pns ip gw host
	_cl_need_state
	_cl_num "$node" "cluster_add_pod: node" 1 "$CLUSTER_NODES"
	_cl_num "$idx" "cluster_add_pod: pod index" 1 253
	[[ -z "$kind" || "$kind" == hostnet ]] || fail "cluster_add_pod: third argument must be 'hostnet'"
	_cl_pod_kind "$node" "$idx" >/dev/null && fail "pod $node/$idx exists already"
	if [[ "$kind" == hostnet ]]; then
		echo "$node $idx hostnet" >>"$CLUSTER_STATE/pods"
		return 0
	fi
	nns="$(cluster_node_ns "$node")"
	pns="${P}n${node}p${idx}"
	ip="10.244.$node.$((idx + 1))"
	gw="$(cluster_pod_gw "$node")"
	host="lxc$idx"
	_cl_mkns "$pns"
	echo "$node $idx ns" >>"$CLUSTER_STATE/pods"
	ip -n "$nns" link add name "$host" type veth peer name eth0 netns "$pns" ||
		fail "veth $nns/$host<->$pns/eth0 failed"
	_cl_ifsysctls "$nns" "$host"
	_cl_ifsysctls "$pns" eth0
	if ! { ip -n "$nns" link set dev "$host" address "$(_cl_mac fe "$ip")" up &&
		ip -n "$nns" addr add "$gw/32" dev "$host" &&
		ip -n "$nns" route add "$ip/32" dev "$host" scope link src "$gw"; }; then
		fail "node side of pod $node/$idx failed"
	fi
	if ! { ip -n "$pns" link set dev eth0 address "$(_cl_mac 00 "$ip")" up &&
		ip -n "$pns" addr add "$ip/32" dev eth0 &&
		ip -n "$pns" route add "$gw/32" dev eth0 scope link &&
		ip -n "$pns" route add default via "$gw" dev eth0; }; then
		fail "pod side of pod $node/$idx failed"
	fi
}

cluster_del_pod() {
	local node="$1" idx="$2" kind ns
	_cl_need_state
	kind="$(_cl_pod_kind "$node" "$idx")" || fail "cluster_del_pod: no pod $node/$idx"
	if [[ -f "$CLUSTER_STATE/peerd-$node-$idx" ]]; then
		cluster_stop_peerd "$node" "$idx"
	fi
	if [[ "$kind" == ns ]]; then
		ns="$(cluster_pod_ns "$node" "$idx")"
		_cl_stop_ns_procs "$ns"
		ip netns delete "$ns" || fail "ip netns delete $ns failed"
	fi
	local tmp="$CLUSTER_STATE/pods.tmp"
	awk -v n="$node" -v i="$idx" '!($1 == n && $2 == i)' "$CLUSTER_STATE/pods" >"$tmp" &&
		mv "$tmp" "$CLUSTER_STATE/pods"
}

cluster_route_lbip() {
	local ipa="$1" node="$2" ns
	ns="$(_cl_ns "${3:-$CLIENT_NS}")"
	[[ "$ipa" == */* ]] || ipa="$ipa/32"
	ip -n "$ns" route replace "$ipa" via "$(cluster_node_ip "$node")" dev eth0 ||
		fail "route $ipa via node $node in $ns failed"
}

cluster_unroute_lbip() {
	local ipa="$1" ns
	ns="$(_cl_ns "${2:-$CLIENT_NS}")"
	[[ "$ipa" == */* ]] || ipa="$ipa/32"
	ip -n "$ns" route del "$ipa" 2>/dev/null || true
}

# ---------------------------------------------------------------- teardown

cluster_down() {
	local - # restores set -e etc. on return: cleanup must run to the end
	set +e
	if [[ -z "${CLUSTER_STATE:-}" || ! -d "$CLUSTER_STATE" ]]; then
		return 0
	fi
	# Signals arriving now (a second ^C, the parent test stopping us) are
	# held back until the cleanup is complete, then delivered again.
	local saved_traps pending=""
	saved_traps="$(trap -p INT TERM HUP PIPE)"
	trap 'pending=INT' INT
	trap 'pending=TERM' TERM
	trap 'pending=HUP' HUP
	trap 'pending=PIPE' PIPE
	_cl_down
	trap - INT TERM HUP PIPE
	eval "$saved_traps"
	if [[ -n "$pending" ]]; then
		kill -s "$pending" "$BASHPID"
	fi
	return 0
}

_cl_down() {
	local -a hooks=() nss=()
	local i ns leftover
	mapfile -t hooks <"$CLUSTER_STATE/exit"
	for ((i = ${#hooks[@]} - 1; i >= 0; i--)); do
		[[ -n "${hooks[i]}" ]] || continue
		(eval "${hooks[i]}") </dev/null || log "cluster_down: exit hook failed: ${hooks[i]}"
	done
	: >"$CLUSTER_STATE/exit"
	_cl_stop_ns_procs ""
	_cl_del_namespaces "$CLUSTER_STATE/netns" "$P"
	leftover="$(ip netns list 2>/dev/null | awk -v p="$P" 'index($1, p) == 1 {print $1}')"
	[[ -z "$leftover" ]] || log "cluster_down: namespaces left: $leftover"
	_cl_sanitizer_reports
	if [[ "${BPFLB_KEEP_LOGS:-0}" == 1 ]]; then
		rm -f "$CLUSTER_STATE/owner" # not for cluster_gc
		log "cluster_down: logs kept in $CLUSTER_STATE"
	else
		rm -rf "$CLUSTER_STATE"
	fi
	CLUSTER_STATE=""
	CLUSTER_LOGDIR=""
	return 0
}

# Deletes the namespaces listed in FILE plus those of the naming scheme with
# PREFIX (in case the list missed one), newest first, after stopping whatever
# still runs in them.
_cl_del_namespaces() {
	local - file="$1" pre="$2" ns i pid
	set +e
	local -a nss=() pairs
	[[ -f "$file" ]] && mapfile -t nss <"$file"
	while read -r ns _; do
		[[ "$ns" =~ ^${pre}(client|fabric|ext|n[0-9]+(p[0-9]+)?)$ ]] && nss+=("$ns")
	done < <(ip netns list 2>/dev/null)
	# Pods first, the fabric last (reverse creation order).
	for ((i = ${#nss[@]} - 1; i >= 0; i--)); do
		ns="${nss[i]}"
		[[ -n "$ns" && -e "/run/netns/$ns" ]] || continue
		pairs=()
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			pairs+=("$pid" "$(_cl_starttime "$pid" || echo 0)")
		done
		((${#pairs[@]} == 0)) || _cl_stop_procs "${pairs[@]}"
		ip netns delete "$ns" 2>/dev/null || log "ip netns delete $ns failed"
	done
}

cluster_gc() {
	local - d pid st pidns pre mypidns p s
	set +e
	local -a pairs
	mypidns="$(readlink /proc/self/ns/pid)"
	for d in "${TMPDIR:-/tmp}"/bpflb-*; do
		[[ -f "$d/owner" && "$d" != "${CLUSTER_STATE:-}" ]] || continue
		read -r pid st pidns pre <"$d/owner" || continue
		# Only runs of our pid namespace, whose owner is provably gone.
		[[ "$pidns" == "$mypidns" && "$pre" =~ ^[A-Za-z0-9]{1,12}-$ ]] || continue
		_cl_same_proc "$pid" "$st" && continue
		log "cluster_gc: cleaning up after dead run $pre (pid $pid, $d); its exit hooks are skipped"
		pairs=()
		while read -r p s _; do
			[[ -n "$p" ]] && pairs+=("$p" "$s")
		done <"$d/pids"
		((${#pairs[@]} == 0)) || _cl_stop_procs "${pairs[@]}"
		_cl_del_namespaces "$d/netns" "$pre"
		rm -rf "$d"
	done
	return 0
}

# Under a sanitizer build (scripts/test-asan.sh) the daemons and tools a test
# started write their reports to their logs, where no exit status shows them:
# once every process is stopped, a report in a log fails the test.
_CL_SANITIZER_FAILED=0
_cl_sanitizer_reports() {
	local f
	while read -r f; do
		log "sanitizer report in $(basename "$f"):"
		grep -E -A40 "$_CL_SANITIZER_RE" "$f" | head -n 60 >&2
		_CL_SANITIZER_FAILED=1
	done < <(grep -rlE "$_CL_SANITIZER_RE" "$CLUSTER_LOGDIR" 2>/dev/null)
}
_CL_SANITIZER_RE='^==[0-9]+==ERROR: (Address|Leak)Sanitizer|: runtime error: '

_cl_on_exit_trap() {
	local rc=$?
	# From here on signals must not abort the cleanup (cluster_down holds
	# them back too, but a signal could arrive before it gets there).
	trap : INT TERM HUP PIPE
	trap - EXIT
	cluster_down
	if ((rc == 0 && _CL_SANITIZER_FAILED)); then
		log "FAIL: sanitizer reports (above)"
		rc=1
	fi
	exit "$rc"
}

_cl_on_signal() {
	# First: no recursion when the message itself raises SIGPIPE (stderr
	# is a closed pipe), no second ^C cutting the cleanup short.
	trap : INT TERM HUP PIPE
	log "caught SIG$1, cleaning up"
	exit "$2" # runs the EXIT trap
}

cluster_trap() {
	trap _cl_on_exit_trap EXIT
	trap '_cl_on_signal INT 130' INT
	trap '_cl_on_signal TERM 143' TERM
	trap '_cl_on_signal HUP 129' HUP
	# A test whose stdout reader went away (| head, a dead parent) must
	# still clean up: bash would otherwise die of SIGPIPE without the trap.
	trap '_cl_on_signal PIPE 141' PIPE
	_cl_init
}

# ---------------------------------------------------------------- processes

cluster_find_tools() {
	local dir="${1:-${BPFLB_BUILD:-}}" d
	if [[ -n "${PEERD:-}" && -x "${PEERD:-}" && -n "${PEERC:-}" && -x "${PEERC:-}" ]]; then
		return 0
	fi
	if [[ -n "$dir" ]]; then
		for d in "$dir/tests/tools" "$dir/tools" "$dir" "$dir/tests"; do
			if [[ -x "$d/peerd" && -x "$d/peerc" ]]; then
				PEERD="$(cd "$d" && pwd)/peerd"
				PEERC="$(cd "$d" && pwd)/peerc"
				export PEERD PEERC
				return 0
			fi
		done
		fail "peerd/peerc not found under $dir (build the peerd and peerc targets)"
	fi
	if ! PEERD="$(command -v peerd)" || ! PEERC="$(command -v peerc)"; then
		fail "peerd/peerc not found: pass the build directory or set BPFLB_BUILD"
	fi
	export PEERD PEERC
}

cluster_bg() {
	local ns logf
	(($# >= 3)) || fail "usage: cluster_bg NS LOG CMD..."
	_cl_need_state
	ns="$(_cl_ns "$1")"
	logf="$2"
	shift 2
	[[ -e "/run/netns/$ns" ]] || fail "cluster_bg: no namespace $ns"
	# nsenter execs CMD, so $! is CMD's pid.
	nsenter --net="/run/netns/$ns" -- "$@" </dev/null >"$logf" 2>&1 &
	CLUSTER_BG_PID=$!
	cluster_track_pid "$CLUSTER_BG_PID" "$ns" "$(basename "$1")"
}

cluster_start_peerd() {
	local node="$1" pod="$2" name="$3" ns logf pid
	(($# >= 3)) || fail "usage: cluster_start_peerd NODE POD NAME [PEERD-ARGS...]"
	shift 3
	cluster_find_tools "${BPFLB_BUILD:-}"
	_cl_pod_kind "$node" "$pod" >/dev/null || fail "cluster_start_peerd: no pod $node/$pod"
	ns="$(cluster_pod_ns "$node" "$pod")"
	(($# > 0)) || set -- --tcp 8080 --udp 8081
	logf="$CLUSTER_LOGDIR/peerd-$name.log"
	cluster_bg "$ns" "$logf" "$PEERD" --name "$name" --verbose "$@"
	pid="$CLUSTER_BG_PID"
	# The pid file of the pod: cluster_stop_peerd finds it there.
	echo "$pid" >"$CLUSTER_STATE/peerd-$node-$pod"
	if ! wait_for "grep -q '^READY' '$logf'" 5 0.05; then
		sed 's/^/  peerd: /' "$logf" >&2
		fail "peerd $name in pod $node/$pod did not start"
	fi
}

cluster_stop_peerd() {
	local pidf="$CLUSTER_STATE/peerd-$1-$2"
	_cl_need_state
	[[ -f "$pidf" ]] || fail "cluster_stop_peerd: no peerd in pod $1/$2"
	cluster_kill_pid "$(cat "$pidf")"
	rm -f "$pidf"
}

peerc_in() {
	local ns="$1"
	(($# >= 2)) || fail "usage: peerc_in NS PEERC-ARGS..."
	shift
	cluster_find_tools "${BPFLB_BUILD:-}"
	in_ns "$ns" "$PEERC" "$@"
}

cluster_dump() {
	local ns
	local -a nss=("$@")
	if ((${#nss[@]} == 0)); then
		mapfile -t nss < <(ip netns list 2>/dev/null | awk -v p="$P" 'index($1, p) == 1 {print $1}')
	fi
	for ns in "${nss[@]}"; do
		ns="$(_cl_ns "$ns")"
		echo "=== $ns"
		ip -n "$ns" -br addr
		ip -n "$ns" route
		ip -n "$ns" neigh
	done
}
