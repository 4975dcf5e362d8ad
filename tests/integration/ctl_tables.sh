#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bpflbctl's tables with Kubernetes-sized names: one bpflbd (features policy
# and egress) in a namespace node whose service, namespace, port, endpoint,
# network policy and egress policy names are 63 characters long (the longest
# DNS label).  Every table bpflbctl prints for them (status, plugin list,
# service list|get, backend list, maglev show, ct list, nat list, policy
# list|get, egress list) must
#   - align: each row's cell starts where its header starts (text) or ends
#     where its header ends (numbers, right-aligned), and
#   - keep every name whole (nothing truncated),
# and so does overlay list with a 63-character service set at runtime,
# also when bpflbctl writes to a terminal (script(1)).  Besides:
#   - `--version` / `-V` print bpflbctl's version (CMake's project version) and
#     the running daemon's; -o json the same as JSON;
#   - values outside an option's closed set are usage errors (exit 2) naming
#     the option and the accepted values, before connecting: ct list --proto
#     icmp, -o yaml, backend set-state ... sleeping;
#   - the daemon refuses a ct.list request with proto icmp itself, naming the
#     field (a client that skips bpflbctl's check).
#
# Usage: ctl_tables.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export BPFLB_PREFIX="ct$$-"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: ctl_tables.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
VERSION=$(sed -n 's/^project(bpflb VERSION \([0-9.]*\).*/\1/p' "$HERE/../../CMakeLists.txt")
[[ -n $VERSION ]] || fail "no project version in CMakeLists.txt"

ok() { echo "ok - $*"; }

# 63 characters each: the longest names Kubernetes allows for these objects.
long() { # PREFIX -> PREFIX padded with a-z to 63 characters
	local s="$1"
	while ((${#s} < 63)); do s+="abcdefghijklmnopqrstuvwxyz0123456789"; done
	echo "${s:0:62}z"
}
SVC_NAME=$(long svc-)
SVC_NS=$(long ns-)
PORT_NAME=$(long port-)
MG_NAME=$(long maglev-)
EP_NAME=$(long endpoint-)
POL_NAME=$(long policy-)
EG_NAME=$(long egress-)
for n in "$SVC_NAME" "$SVC_NS" "$PORT_NAME" "$MG_NAME" "$EP_NAME" "$POL_NAME" "$EG_NAME"; do
	((${#n} == 63)) || fail "test bug: '$n' is not 63 characters"
done

cluster_trap
cluster_up 1
cluster_start_peerd 1 1 web-1
POD=$(cluster_pod_ip 1 1)
N1=$(cluster_node_ip 1)

POLDIR="$CLUSTER_STATE/policies"
mkdir -p "$POLDIR"
cat >"$POLDIR/long.yaml" <<YAML
apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: "$POL_NAME"
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEntities:
    - world
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
YAML

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service $SVC_NAME]
namespace = $SVC_NS
type = nodeport
port = $PORT_NAME tcp 80 nodeport=30080 target=8080
backend = $POD node=node1

[service $MG_NAME]
type = nodeport
algorithm = maglev
port = dns udp 53 nodeport=30053 target=8081
backend = $POD node=node1
INI
BPFLB_DAEMON_EXTRA=$'features = policy egress'
bpflb_config 1 snat "$SVC" "[policy]
dir = $POLDIR
cluster_cidrs = 10.244.0.0/16

[egress]
cluster_cidrs = 10.244.0.0/16

[endpoint $EP_NAME]
address = $POD
node = node1
labels = app=web

[egress-policy $EG_NAME]
mode = basic
endpoint_selector = app=web
destination_cidrs = 0.0.0.0/0
gateway_nodes = node1
egress_ip = 10.99.0.50"
bpflb_start 1
SOCK=$(bpflb_sock 1)

# Some conntrack and NAT entries, so that ct and nat list have rows.
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 3 >/dev/null || fail "NodePort $N1:30080 does not answer"

# check_tables NAME...: stdin is bpflbctl's table output; every table in it
# (a header line of upper-case words, then rows up to a blank line or a
# "N entries" footer) aligns, and each NAME appears whole as a cell.
check_tables() {
	python3 -c '
import re, sys
text = sys.stdin.read()
lines = text.split("\n")
cell = re.compile(r"\S+(?: \S+)*")          # cells are separated by 2+ blanks
header = re.compile(r"^[A-Z][A-Z/-]*(  +[A-Z][A-Z/-]*)+$")
tables = cells_seen = 0
i = 0
while i < len(lines):
    if not header.match(lines[i]):
        i += 1
        continue
    tables += 1
    head = [(m.start(), m.end(), m.group()) for m in cell.finditer(lines[i])]
    kinds = [None] * len(head)
    i += 1
    while i < len(lines) and lines[i].strip() and not re.match(r"^\d+ (entries|SNAT mappings)", lines[i]):
        row = [(m.start(), m.end(), m.group()) for m in cell.finditer(lines[i])]
        assert len(row) == len(head), "row has %d cells, header %d:\n%s\n%s" % (len(row), len(head), lines[i], text)
        for k, ((hs, he, hn), (cs, ce, cv)) in enumerate(zip(head, row)):
            # text starts with its header; a number ends with it
            kind = "left" if cs == hs else "right" if ce == he else None
            assert kind, "column %s: cell %r at %d-%d, header at %d-%d:\n%s" % (hn, cv, cs, ce, hs, he, text)
            if cs == hs and ce == he:
                continue
            assert kinds[k] in (None, kind), "column %s is aligned both ways:\n%s" % (hn, text)
            kinds[k] = kind
            cells_seen += 1
        i += 1
assert tables, "no table in:\n" + text
for name in sys.argv[1:]:
    assert re.search(r"(^|  |,)" + re.escape(name) + r"($|  |[,:/])", text, re.M), "%s not whole in:\n%s" % (name, text)
' "$@"
}

# tables WHAT NAME... -- ARGS...: bpflbctl ARGS to a pipe and to a terminal
tables() {
	local what="$1" out names=()
	shift
	while [[ $1 != -- ]]; do names+=("$1"); shift; done
	shift
	out=$("$CTL" --socket "$SOCK" "$@") || fail "bpflbctl $*: $out"
	check_tables "${names[@]}" <<<"$out" || fail "$what: tables do not align or a name is cut"
	# On a terminal libsmartcols would shrink columns to its width: it must not.
	out=$(COLUMNS=80 script -qec "$(printf '%q ' "$CTL" --socket "$SOCK" "$@")" /dev/null | tr -d '\r') ||
		fail "bpflbctl $* on a terminal: $out"
	check_tables "${names[@]}" <<<"$out" || fail "$what on an 80-column terminal: tables do not align or a name is cut"
}

tables "service list" "$SVC_NAME" "$SVC_NS" "$PORT_NAME" "$MG_NAME" -- service list
tables "service get" "$SVC_NAME" "$SVC_NS" "$PORT_NAME" -- service get "$SVC_NAME"
tables "backend list" "$SVC_NAME/$PORT_NAME" -- backend list
tables "maglev show" "$POD:8081" -- maglev show "$MG_NAME/dns"
tables "plugin list" policy egress snat -- plugin list
tables "status" policy egress snat -- status
tables "ct list" "$SVC_NAME/$PORT_NAME" -- ct list
tables "nat list" -- nat list
ok "service, backend, maglev, plugin, status, ct and nat tables align with 63-character names"

tables "policy list" "$POL_NAME" "$EP_NAME" -- policy list
tables "policy get" "$EP_NAME" -- policy get "$POL_NAME"
"$CTL" --socket "$SOCK" policy get "$POL_NAME" | grep >/dev/null "^policy $POL_NAME " || fail "policy get does not name the policy"
tables "egress list" "$EG_NAME" -- egress list
ok "policy list|get and egress list print aligned tables with 63-character names"

# The overlay's entries: a service set at runtime and a backend state.
OV_NAME=$(long overlay-)
"$CTL" --socket "$SOCK" service set "$OV_NAME" type=nodeport 'port=http tcp 80 nodeport=30100 target=8080' \
	"backend=$POD node=node1" >/dev/null || fail "service set $OV_NAME"
"$CTL" --socket "$SOCK" backend set-state "$POD:8080" maintenance >/dev/null || fail "backend set-state"
tables "overlay list" "$OV_NAME" "$POD:8080" -- overlay list
tables "service list with the overlay's service" "$OV_NAME" "$SVC_NAME" -- service list
"$CTL" --socket "$SOCK" overlay clear >/dev/null || fail "overlay clear"
ok "overlay list prints an aligned table"

# -o json is the daemon's data, untouched by the tables.
for cmd in "service list" "policy list" "egress list"; do
	# shellcheck disable=SC2086
	"$CTL" --socket "$SOCK" -o json $cmd | python3 -c 'import json, sys; json.load(sys.stdin)' ||
		fail "-o json $cmd is not JSON"
done
[[ $("$CTL" --socket "$SOCK" -o json egress list | python3 -c 'import json,sys; print(json.load(sys.stdin)["policies"][0]["name"])') == "$EG_NAME" ]] ||
	fail "egress list -o json"
ok "-o json of the same commands is the daemon's JSON"

# --version
out=$("$CTL" --socket "$SOCK" --version) || fail "--version failed: $out"
[[ $out == "bpflbctl $VERSION"$'\n'"bpflbd $VERSION (pid "* ]] || fail "--version: $out"
out=$("$CTL" -V --socket "$CLUSTER_STATE/none.sock") || fail "-V without a daemon failed: $out"
[[ $out == "bpflbctl $VERSION"$'\n'"bpflbd: cannot connect to $CLUSTER_STATE/none.sock"* ]] || fail "-V without a daemon: $out"
[[ $("$CTL" --socket "$SOCK" -o json -V | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["bpflbctl"], d["bpflbd"])') == "$VERSION $VERSION" ]] ||
	fail "-o json --version"
ok "--version and -V print bpflbctl's version $VERSION and the daemon's"

# Closed sets of values: usage errors (2) naming the option and what it takes.
expect_usage() { # MESSAGE ARGS...
	local want="$1" rc=0 err
	shift
	err=$("$CTL" --socket "$SOCK" "$@" 2>&1 >/dev/null) || rc=$?
	[[ $rc == 2 ]] || fail "bpflbctl $* exited $rc, expected 2: $err"
	[[ $err == *"$want"* ]] || fail "bpflbctl $*: '$err' does not say '$want'"
}
expect_usage "--proto: 'icmp' is not one of tcp, udp" ct list --proto icmp
expect_usage "--proto: 'icmp' is not one of tcp, udp" ct flush --proto icmp
expect_usage "--proto: 'sctp' is not one of tcp, udp" nat list --proto sctp
expect_usage "-o/--output: 'yaml' is not one of table, json" -o yaml status
expect_usage "set-state STATE: 'sleeping' is not one of active, terminating, maintenance, configured" \
	backend set-state "$POD:8080" sleeping
expect_usage "policy takes list or get NAME, not 'frob'" policy frob
expect_usage "egress takes list, not 'get'" egress get
[[ $("$CTL" --socket "$SOCK" -o json backend list | python3 -c 'import json,sys; print({b["state"] for b in json.load(sys.stdin)})') == "{'active'}" ]] ||
	fail "a refused set-state changed a backend"
ok "ct/nat --proto, -o, backend set-state, policy and egress refuse unknown values (exit 2, message)"

# The daemon checks too: a request with proto icmp, sent without bpflbctl.
reply=$(python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd": "ct.list", "args": {"proto": "icmp"}}\n')
print(s.makefile().readline().strip())
PY
)
[[ $reply == *'"ok":false'* && $reply == *"proto 'icmp' is not tcp or udp"* ]] ||
	fail "bpflbd took ct.list with proto icmp: $reply"
ok "bpflbd refuses ct.list with proto icmp, naming the field"
