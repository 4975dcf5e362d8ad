#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kube-proxy's health endpoints on a real bpflbd ([daemon] healthz_listen,
# default 0.0.0.0:10256 in the node's own network namespace):
#   - /healthz 200 with kube-proxy's JSON body and headers, /livez 200 with
#     its body (no nodeEligible), HEAD without a body, other paths 404, other
#     methods 405 (Allow: GET, HEAD);
#   - the last sync advances with each drift check (reconcile_interval = 1);
#   - a stale sync turns both endpoints 503, with lastUpdated the time of the
#     last sync; the next reconcile (a reload) makes them 200 again;
#   - healthz_listen: a bad value is refused with FILE:LINE, 'off' serves
#     nothing, a taken port makes the start fail with a message naming the key.
#
# Staleness is produced by configuration (drift check every hour, a 2 s
# healthz_max_sync_age), not by a failing reconcile: no real fault makes the
# drift check fail on demand without breaking the test's own namespaces.
#
# Usage: healthz.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: healthz.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)
NS1=""

cluster_trap
cluster_up 1
NS1=$(cluster_node_ns 1)
SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.1.2 node=node1
INI

# req METHOD URL: "STATUS\n<headers as JSON>\n<body>" from inside node 1
req() {
	in_ns "$NS1" python3 - "$@" <<'PYEOF'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[2])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
c.request(sys.argv[1], u.path)
r = c.getresponse()
print(r.status)
print(json.dumps({k.lower(): v for k, v in r.getheaders()}))
print(r.read().decode(), end="")
PYEOF
}
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
# the last sync (bpflb_healthz_last_sync_timestamp_seconds)
last_sync() { bpflb_metric 1 bpflb_healthz_last_sync_timestamp_seconds; }
H="http://$N1:10256"

# --- healthy --------------------------------------------------------------------------
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962
reconcile_interval = 1" bpflb_config 1 snat "$SVC"
bpflb_start 1
out=$(req GET "$H/healthz")
[[ $(sed -n 1p <<<"$out") == 200 ]] || fail "/healthz: $out"
hdr=$(sed -n 2p <<<"$out")
body=$(sed -n '3,$p' <<<"$out")
[[ $(py 'd["content-type"] == "application/json" and d["x-content-type-options"] == "nosniff"' <<<"$hdr") == True ]] ||
	fail "/healthz headers: $hdr"
[[ $body =~ ^\{\"lastUpdated\":\ \"[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:.]+\ \+0000\ UTC\",\"currentTime\":\ \"[^\"]+\",\ \"nodeEligible\":\ true\}$ ]] ||
	fail "/healthz body is not kube-proxy's: $body"
[[ $(py 'd["lastUpdated"] == d["currentTime"] and d["nodeEligible"] is True' <<<"$body") == True ]] ||
	fail "/healthz while healthy: lastUpdated must be currentTime (kube-proxy): $body"
ok "/healthz 200 with kube-proxy's body and headers: $body"

out=$(req GET "$H/livez")
body=$(sed -n '3,$p' <<<"$out")
[[ $(sed -n 1p <<<"$out") == 200 && $(py 'sorted(d) == ["currentTime", "lastUpdated"]' <<<"$body") == True ]] ||
	fail "/livez: $out"
out=$(req HEAD "$H/healthz")
[[ $(sed -n 1p <<<"$out") == 200 && -z $(sed -n '3,$p' <<<"$out") ]] || fail "HEAD /healthz: $out"
out=$(req GET "$H/metrics")
[[ $(sed -n 1p <<<"$out") == 404 ]] || fail "GET /metrics on the healthz port: $out"
out=$(req POST "$H/healthz")
[[ $(sed -n 1p <<<"$out") == 405 && $(sed -n 2p <<<"$out" | py 'd["allow"]') == "GET, HEAD" ]] ||
	fail "POST /healthz: $out"
ok "/livez 200 (its body), HEAD without a body, unknown path 404, POST 405 with Allow"

# the drift check (every second) is a sync: the last sync moves on
t0=$(last_sync)
wait_for "python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))' \"\$(last_sync)\" $t0" 10 0.2 ||
	fail "the last sync stays at $t0 while the drift check runs"
ok "the last sync advances with the drift checks ($t0 -> $(last_sync))"

# --- stale: no reconcile within healthz_max_sync_age ---------------------------------------
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962
reconcile_interval = 3600
healthz_max_sync_age = 2" bpflb_config 1 snat "$SVC"
bpflb_reload 1 || fail "reload refused"
t1=$(last_sync)
wait_for "[[ \$(req GET '$H/healthz' | head -1) == 503 ]]" 10 0.2 || fail "/healthz stays 200 with a stale sync"
out=$(req GET "$H/healthz")
body=$(sed -n '3,$p' <<<"$out")
[[ $(py 'd["lastUpdated"] != d["currentTime"] and d["nodeEligible"] is True' <<<"$body") == True ]] ||
	fail "stale /healthz body: $body"
last_s=$(py 'd["lastUpdated"]' <<<"$body")
python3 - "$last_s" "$t1" <<'PYEOF' || fail "lastUpdated '$last_s' is not the last sync ($t1)"
import datetime, sys
s, t = sys.argv[1], float(sys.argv[2])
day, clock, _, _ = s.split(" ")
whole, _, frac = clock.partition(".")
dt = datetime.datetime.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
sys.exit(abs(dt.timestamp() + float("0." + (frac or "0")) - t) > 0.01)
PYEOF
[[ $(req GET "$H/livez" | head -1) == 503 ]] || fail "/livez stays 200 with a stale sync"
ok "a sync older than healthz_max_sync_age: /healthz and /livez 503, lastUpdated = the last sync ($last_s)"
bpflb_reload 1 || fail "reload refused"
[[ $(req GET "$H/healthz" | head -1) == 200 ]] || fail "/healthz after a fresh sync: $(req GET "$H/healthz")"
ok "the next reconcile (a reload) makes /healthz 200 again"
[[ $(bpflb_metric 1 'bpflb_healthz_requests_total{path="/healthz",code="503"}') -ge 2 ]] ||
	fail "503 answers not counted"
bpflb_stop 1

# --- healthz_listen ------------------------------------------------------------------------
check() { in_ns "$NS1" "$BPFLBD" --config "$(bpflb_ini 1)" --check-config 2>&1; }
BPFLB_DAEMON_EXTRA="healthz_listen = 10256" bpflb_config 1 snat "$SVC"
if out=$(check); then fail "healthz_listen = 10256 accepted"; fi
[[ $out == *"node1.ini:"*"healthz_listen"*"ADDR:PORT"* ]] || fail "bad healthz_listen message: $out"
BPFLB_DAEMON_EXTRA="healthz_listen = 192.0.2.1:10256" bpflb_config 1 snat "$SVC"
if out=$(check); then fail "healthz_listen on a foreign address accepted"; fi
[[ $out == *"node1.ini:"*"healthz_listen"*"192.0.2.1"* ]] || fail "foreign healthz_listen message: $out"
ok "healthz_listen: a bad value and a foreign address are refused with FILE:LINE ($(tail -1 <<<"$out"))"

BPFLB_DAEMON_EXTRA="healthz_listen = off" bpflb_config 1 snat "$SVC"
bpflb_start 1
in_ns "$NS1" ss -Hltn 'sport = :10256' | grep >/dev/null . && fail "healthz_listen = off still listens on 10256"
bpflb_stop 1
ok "healthz_listen = off serves nothing"

# a port someone else holds: the start fails and says which key to change
in_ns "$NS1" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 10256)); s.listen(1); time.sleep(30)' &
holder=$!
cluster_track_pid "$holder" 2>/dev/null || true
BPFLB_DAEMON_EXTRA="healthz_listen = 127.0.0.1:10256" bpflb_config 1 snat "$SVC"
wait_for "in_ns $NS1 ss -Hltn 'sport = :10256' | grep >/dev/null ." 5 0.1 || fail "the port holder did not start"
if out=$(in_ns "$NS1" timeout 20 "$BPFLBD" --config "$(bpflb_ini 1)" 2>&1); then
	fail "bpflbd started with its healthz port taken"
fi
kill "$holder" 2>/dev/null || true
[[ $out == *"cannot serve /healthz on 127.0.0.1:10256: Address already in use"*"healthz_listen"* ]] ||
	fail "taken healthz port, no clear error: $out"
ok "a taken healthz port fails the start, naming healthz_listen"
echo PASS
