#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A vendor's load-balancing mode, live.  lastpick (tests/plugins/lastpick/,
# built from the SDK alone, outside plugins/) is dropped into node 1's plugin
# directory beside the modes bpflb ships; its policy is visible from the
# client: every new flow goes to the service's last slot, so one backend
# answers every new connection, where snat spreads them over three.
#
#   snat -> (mode = lastpik: refused, names the modes) -> lastpick -> snat
#
# one SIGHUP each, under a TCP echo stream that must end intact.  lastpick's
# own pinned map counts its decisions (bpflbctl lastpick stats): exactly the
# new connections made under it, none under snat; the backend it last picked
# is the one that answered.
#
# Usage: vendor_mode.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: vendor_mode.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
VENDOR_SO="$1/tests/vendor-plugins/lastpick.so"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
[[ -f $VENDOR_SO ]] || fail "no $VENDOR_SO (build first)"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)
CONNS=12

cluster_trap
cluster_up 3
for i in 1 2 3; do
	cluster_start_peerd "$i" 1 "web-$i"
done

# The plugin directory an operator fills: bpflb's plugins, then the vendor's.
PLUGDIR="$CLUSTER_STATE/plugins"
install -d -m 0755 "$PLUGDIR"
install -m 0755 "$BPFLB_PLUGINS"/*.so "$PLUGDIR/"
install -m 0755 "$VENDOR_SO" "$PLUGDIR/"
BPFLB_PLUGINS="$PLUGDIR"

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3
INI

SOCK=$(bpflb_sock 1)
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }

# $CONNS new TCP connections through node 1: "COUNT NAME" per backend that answered.
answered() { # TAG
	local out
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count "$CONNS") || fail "[$1] TCP via node 1: $out"
	[[ $(wc -l <<<"$out") -eq $CONNS ]] || fail "[$1] expected $CONNS answers: $out"
	awk '{print $1}' <<<"$out" | sort | uniq -c
}

switch_to() { # MODE
	bpflb_config 1 "$1" "$SVC"
	bpflb_reload 1 || fail "switch to $1 refused: $(grep 'reload failed' "$(bpflb_log 1)" | tail -n 1)"
	[[ $(grep "reload done" "$(bpflb_log 1)" | tail -n 1) == *"mode $1;"* ]] || fail "node 1 did not switch to $1"
}

bpflb_config 1 snat "$SVC"
bpflb_start 1

# The vendor's plugin is loaded as a mode, with the maps its descriptor declares.
out=$("$CTL" --socket "$SOCK" plugin list)
grep -Eq '^lastpick +1\.0 +mode +loaded +lb@2, own@1 ' <<<"$out" || fail "plugin list: $out"
grep -Eq '^snat +[^ ]+ +mode +attached +lb@2 ' <<<"$out" || fail "plugin list: $out"
[[ $(ctl plugin list | py '" ".join(p["name"] for p in d if p["kind"] == "mode")') == "dsr hybrid lastpick snat" ]] ||
	fail "modes: $(ctl plugin list)"
ok "plugin list shows lastpick as a mode driving lb@2 with a map of its own"

spread=$(answered snat)
(($(wc -l <<<"$spread") >= 2)) || fail "snat sent $CONNS new connections to one backend: $spread"
ok "snat spreads $CONNS new connections: $(tr -s ' \n' ' ' <<<"$spread")"

# A stream across both switches: established flows keep their backend.
STREAM="$CLUSTER_LOGDIR/stream.out"
cluster_bg "$CLIENT_NS" "$STREAM" "$PEERC" stream "$N1" 30080 \
	--bytes 300000 --chunk 1000 --interval-ms 10 --seed 7 --timeout 5000
STREAM_PID=$CLUSTER_BG_PID
sleep 0.3

# A typo: refused at its line, with the modes plugin_dir offers; snat keeps serving.
bpflb_config 1 lastpik "$SVC"
! bpflb_reload 1 || fail "mode = lastpik was accepted"
line=$(grep -n '^mode = lastpik$' "$(bpflb_ini 1)" | cut -d: -f1)
want="$(bpflb_ini 1):$line: [daemon] mode = lastpik: no mode plugin 'lastpik' is loaded from $PLUGDIR; modes available: dsr, hybrid, lastpick, snat, none (did you mean lastpick?)"
grep -qF "$want" "$(bpflb_log 1)" || fail "no '$want' in the log: $(grep 'reload failed' "$(bpflb_log 1)" | tail -n 1)"
spread=$(answered snat-after-typo)
(($(wc -l <<<"$spread") >= 2)) || fail "after the refused reload: $spread"
ok "mode = lastpik refused at FILE:LINE with the modes available; snat still serves"

switch_to lastpick
picks0=$(ctl lastpick stats | py 'd["picks"]')
only=$(answered lastpick)
[[ $(wc -l <<<"$only") -eq 1 ]] || fail "lastpick: new connections went to several backends: $only"
winner=$(awk '{print $2}' <<<"$only")
stats=$(ctl lastpick stats)
[[ $(py 'd["picks"]' <<<"$stats") -eq $((picks0 + CONNS)) ]] || fail "lastpick counted $(py 'd["picks"]' <<<"$stats") - $picks0 picks for $CONNS connections"
last=$(py 'd["last"]' <<<"$stats")
[[ $last == "10.244.${winner#web-}.2:8080" ]] || fail "lastpick picked $last, but $winner answered"
[[ -e $(bpflb_pin 1)/lastpick_stats ]] || fail "lastpick_stats is not pinned under $(bpflb_pin 1)"
ok "lastpick sends every new connection to $winner ($last), its own map counts $CONNS decisions"

switch_to snat
spread=$(answered snat-again)
(($(wc -l <<<"$spread") >= 2)) || fail "back in snat, $CONNS new connections went to one backend: $spread"
ok "back in snat: new connections spread again ($(tr -s ' \n' ' ' <<<"$spread"))"

wait "$STREAM_PID" || fail "the stream failed: $(cat "$STREAM")"
grep -q "^OK bytes=300000" "$STREAM" || fail "the stream: $(cat "$STREAM")"
ok "a stream started under snat survived snat -> lastpick -> snat intact"
echo PASS
