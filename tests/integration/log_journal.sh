#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bpflbd's log outputs, as an operator reads them:
#   - under journald (JOURNAL_STREAM names stderr) every line is a native
#     journal message: PRIORITY (3 for a --check-config error, which also
#     carries BPFLB_CONFIG_FILE/LINE and FILE:LINE in MESSAGE; 5 and 6 for
#     the daemon's notice and info lines), SYSLOG_IDENTIFIER=bpflbd, CODE_*,
#     BPFLB_SUBSYSTEM on a subsystem's line; nothing is printed on stderr
#   - journald gone: the lines fall back to stderr, levels spelled out
#   - --log-format json: every line is one JSON object (time, level,
#     subsystem, msg, fields); text: every line starts with an RFC 3339 time
#
# journald is a python3 listener on /run/systemd/journal/socket (the path
# sd_journal_send always uses), on a tmpfs mounted in a private mount
# namespace: the host's /run is never touched.  bpflbd runs in a private
# network namespace on a veth, with its pins on a private bpffs.
#
# Usage: log_journal.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: log_journal.sh BUILD_DIR}

if [[ -z ${LG_INNER:-} ]]; then
	# private mounts (no propagation back to the host) and a private netns
	exec env LG_INNER=1 unshare -m -n --propagation private -- "$0" "$@"
fi

BPFLBD=$BUILD/core/bpflbd
PLUGDIR=$BUILD/tests/plugin-dir
TMP=$(mktemp -d /tmp/lg-journal-XXXXXX)
JPID=""
DPID=""

cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	[[ -n $JPID ]] && kill "$JPID" 2>/dev/null
	umount "$TMP/bpffs" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$TMP"/*.err "$TMP"/journal.jsonl "$TMP"/*.out; do
		[[ -s $f ]] && { echo "--- $f"; cat "$f"; } >&2
	done
	exit 1
}
ok() { echo "ok - $*"; }
wait_for() { # cond tries
	local i
	for ((i = 0; i < $2; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

# --- the private journald socket
if [[ -d /run/systemd/journal ]]; then
	mount -t tmpfs lg-journal /run/systemd/journal
elif [[ -d /run/systemd ]]; then
	mount -t tmpfs lg-journal /run/systemd
else
	mount -t tmpfs lg-journal /run
fi
mkdir -p /run/systemd/journal
mkdir "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs"
ip link set lo up
ip link add lg0 type veth peer name lg1
ip link set lg1 up
ip addr add 10.77.0.1/24 dev lg0
ip link set lg0 up

# The native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): KEY=VALUE lines, or
# KEY\n<u64le length><value>\n for values with newlines; a message too big for
# a datagram arrives as a sealed memfd passed with SCM_RIGHTS.
cat >"$TMP/journald.py" <<'PY'
import array, json, os, socket, struct, sys

def parse(buf):
    rec, i = {}, 0
    while i < len(buf):
        nl = buf.index(b"\n", i)
        line = buf[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", buf[nl + 1:nl + 9])
            v = buf[nl + 9:nl + 9 + n]
            assert buf[nl + 9 + n:nl + 10 + n] == b"\n", "binary value not ended by newline"
            i = nl + 10 + n
        rec.setdefault(k.decode(), v.decode("utf-8", "replace"))
    return rec

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a")
print("READY", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(cdata[: len(cdata) - len(cdata) % fds.itemsize])
            for fd in fds:
                with os.fdopen(fd, "rb") as f:
                    data += f.read()
    out.write(json.dumps(parse(data)) + "\n")
    out.flush()
PY
start_journald() {
	rm -f /run/systemd/journal/socket
	python3 -u "$TMP/journald.py" /run/systemd/journal/socket "$TMP/journal.jsonl" \
		>"$TMP/journald.out" 2>&1 &
	JPID=$!
	wait_for "grep -q READY '$TMP/journald.out'" 50 || fail "journal listener did not start"
}
start_journald

write_config() { # file [extra [daemon] line]
	cat >"$1" <<INI
; log_journal test instance
[daemon]
mode = none
features = testplug
plugin_dir = $PLUGDIR
bpffs_root = $TMP/bpffs/lg-root
control_socket = $TMP/ctl.sock
state_dir = $TMP/state
devices = lg0
log_level = info
${2:-}

[node]
name = lg-node
address = 10.77.0.1

[testplug]
drop_port = 9
INI
}
write_config "$TMP/good.ini"
write_config "$TMP/bad.ini" "tick_interval = soon"
BADLINE=$(grep -n '^tick_interval' "$TMP/bad.ini" | cut -d: -f1)

# journal_has PYTHON_CONDITION_ON_r: some record satisfies it
journal_has() {
	python3 - "$TMP/journal.jsonl" "$1" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(eval("(" + sys.argv[2] + ")", {}, {"r": r}) for r in recs) else 1)
PY
}

# run with stderr on a file that JOURNAL_STREAM names, as systemd does
as_journal() { # errfile cmd...
	local errf=$1
	shift
	: >"$errf"
	JOURNAL_STREAM="$(stat -c '%d:%i' "$errf")" "$@" 2>>"$errf"
}

# --- --check-config error under journald: priority 3, FILE:LINE, fields
if as_journal "$TMP/check.err" "$BPFLBD" --config "$TMP/bad.ini" --check-config; then
	fail "--check-config accepted tick_interval = soon"
fi
wait_for "journal_has 'r.get(\"PRIORITY\") == \"3\"'" 30 || fail "no PRIORITY=3 record for the --check-config error"
journal_has "r['PRIORITY'] == '3' and '$TMP/bad.ini:$BADLINE:' in r['MESSAGE'] and
	r.get('SYSLOG_IDENTIFIER') == 'bpflbd' and r.get('BPFLB_CONFIG_FILE') == '$TMP/bad.ini' and
	r.get('BPFLB_CONFIG_LINE') == '$BADLINE' and r.get('BPFLB_CONFIG_KEY') == 'tick_interval'" ||
	fail "the --check-config error lacks FILE:LINE in MESSAGE or its BPFLB_CONFIG_* fields"
[[ -s $TMP/check.err ]] && fail "under journald --check-config still printed on stderr"
ok "--check-config error: PRIORITY=3, MESSAGE with $TMP/bad.ini:$BADLINE, BPFLB_CONFIG_FILE/LINE/KEY"

# --- the daemon under journald: notice and info lines with their priorities
: >"$TMP/daemon.err"
JOURNAL_STREAM="$(stat -c '%d:%i' "$TMP/daemon.err")" "$BPFLBD" --config "$TMP/good.ini" \
	</dev/null 2>>"$TMP/daemon.err" &
DPID=$!
wait_for "journal_has '\"running: mode\" in r[\"MESSAGE\"]'" 100 || fail "bpflbd did not start"
journal_has "r['PRIORITY'] == '5' and 'running: mode none' in r['MESSAGE'] and
	r['SYSLOG_IDENTIFIER'] == 'bpflbd' and r.get('CODE_FILE') == 'core/daemon.c' and
	int(r.get('CODE_LINE', 0)) > 0 and r.get('CODE_FUNC') == 'daemon_start'" ||
	fail "the start line lacks PRIORITY=5, SYSLOG_IDENTIFIER or CODE_FILE/LINE/FUNC"
journal_has "r['PRIORITY'] == '6' and r['SYSLOG_IDENTIFIER'] == 'bpflbd'" ||
	fail "no info line (PRIORITY=6)"
journal_has "r.get('BPFLB_SUBSYSTEM') == 'plugin testplug' and r.get('BPFLB_PLUGIN') == 'testplug' and
	r['MESSAGE'] == 'plugin testplug: dropping UDP to port 9'" ||
	fail "a plugin's line lacks BPFLB_SUBSYSTEM or BPFLB_PLUGIN"
kill -HUP "$DPID"
wait_for "journal_has '\"reload done\" in r[\"MESSAGE\"]'" 100 || fail "no reload line"
[[ $(python3 -c 'import json,sys; print(sum("reload done" in json.loads(l)["MESSAGE"] for l in open(sys.argv[1])))' "$TMP/journal.jsonl") == 1 ]] ||
	fail "a reload logged more than one 'reload done' line"
journal_has "r['PRIORITY'] == '5' and r['MESSAGE'].startswith('reload done: mode none; features testplug; services: ')" ||
	fail "the reload summary line is not one notice"
kill -TERM "$DPID"
wait "$DPID" || fail "bpflbd exited with $? on SIGTERM"
DPID=""
journal_has "r['PRIORITY'] == '6' and r['MESSAGE'] == 'stopped'" || fail "no 'stopped' info line"
[[ -s $TMP/daemon.err ]] && fail "under journald bpflbd printed on stderr"
ok "daemon under journald: notice (5) with CODE_*, info (6), BPFLB_SUBSYSTEM/PLUGIN, one reload line"

# --- journald gone: lines fall back to stderr
kill "$JPID"
wait "$JPID" 2>/dev/null || true
JPID=""
rm -f /run/systemd/journal/socket
if as_journal "$TMP/gone.err" "$BPFLBD" --config "$TMP/bad.ini" --check-config; then
	fail "--check-config accepted the bad file"
fi
grep -q "bpflbd: err: $TMP/bad.ini:$BADLINE: " "$TMP/gone.err" ||
	fail "with journald gone the error was not printed on stderr"
ok "journald gone: the error falls back to stderr"

# --- --log-format json: one object per line
"$BPFLBD" --config "$TMP/bad.ini" --check-config --log-format json 2>"$TMP/json.err" &&
	fail "--check-config accepted the bad file"
"$BPFLBD" --config "$TMP/good.ini" --log-format json </dev/null 2>>"$TMP/json.err" &
DPID=$!
wait_for "grep -q 'running: mode' '$TMP/json.err'" 100 || fail "bpflbd (json) did not start"
kill -TERM "$DPID"
wait "$DPID" || fail "bpflbd (json) exited with $? on SIGTERM"
DPID=""
python3 - "$TMP/json.err" "$TMP/bad.ini" "$BADLINE" <<'PY' || fail "--log-format json lines do not parse or lack fields"
import json, re, sys
path, bad, line = sys.argv[1], sys.argv[2], sys.argv[3]
recs = [json.loads(l) for l in open(path)]  # every line must parse
assert len(recs) >= 4, recs
for r in recs:
    assert set(r) >= {"time", "level", "subsystem", "msg"}, r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d|Z)", r["time"]), r
    assert r["level"] in ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"), r
err = [r for r in recs if r["level"] == "err"]
assert err and err[0]["config_file"] == bad and err[0]["config_line"] == line, err
assert err[0]["config_key"] == "tick_interval" and err[0]["msg"].startswith(f"{bad}:{line}: "), err
assert any(r["subsystem"] == "plugin testplug" and r["plugin"] == "testplug" for r in recs), recs
assert any(r["msg"].startswith("running: ") or "running: mode" in r["msg"] for r in recs)
PY
ok "--log-format json: every line an object with time, level, subsystem, msg and config_* fields"

# --- default text off journald: RFC 3339 timestamps
"$BPFLBD" --config "$TMP/bad.ini" --check-config 2>"$TMP/text.err" && fail "accepted the bad file"
"$BPFLBD" --config "$TMP/good.ini" --check-config --log-format text 2>>"$TMP/text.err" ||
	fail "--check-config refused the good file"
[[ $(wc -l <"$TMP/text.err") -ge 2 ]] || fail "text: expected at least two lines"
if grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} bpflbd: (err|warning|notice|info): ' "$TMP/text.err"; then
	fail "text lines without an RFC 3339 timestamp and level"
fi
grep -q "bpflbd: notice: $TMP/good.ini: configuration is valid" "$TMP/text.err" || fail "text: no 'valid' line"
ok "text format: every line starts with an RFC 3339 time with milliseconds"

# a [daemon] error is the one line: no warning about a plugin_dir the file never named
cat >"$TMP/daemon-bad.ini" <<INI
[daemon]
mode = none
devices = lg0
tick_interval = soon
INI
"$BPFLBD" --config "$TMP/daemon-bad.ini" --check-config 2>"$TMP/dbad.err" && fail "accepted tick_interval = soon"
[[ $(wc -l <"$TMP/dbad.err") == 1 ]] && grep -q "bpflbd: err: $TMP/daemon-bad.ini:4: \[daemon\] tick_interval = soon" "$TMP/dbad.err" ||
	fail "a [daemon] error is not the only line: $(cat "$TMP/dbad.err")"
ok "a [daemon] error is reported alone (no plugin_dir warning)"

"$BPFLBD" --config "$TMP/good.ini" --log-format yaml 2>"$TMP/usage.err" && fail "--log-format yaml accepted"
grep -q "expected auto, text or json" "$TMP/usage.err" || fail "--log-format yaml: no clear error"
ok "--log-format yaml refused"
