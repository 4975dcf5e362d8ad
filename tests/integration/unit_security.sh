#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The systemd unit and the install layout, for two prefixes: the build's own
# (/usr, what the package ships) and a scratch one configured for this test.
# For each:
#   - `cmake --install --prefix P` writes only below P (DESTDIR catches any
#     absolute path), and the unit, man pages and bash completion are there
#   - the unit names P's bpflbd, bpflbctl and configuration (ExecStart,
#     ExecStartPre, ExecReload, Documentation) and the pkg-config file P's
#     plugin directory
#   - `systemd-analyze verify` prints nothing (it also checks that the
#     commands exist and the man pages of Documentation= resolve)
#   - `systemd-analyze security --offline` rates its exposure 5.0 or less
# PID 1 is not asked anything: everything runs offline on files.
#
# Usage: unit_security.sh BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: unit_security.sh BUILD_DIR}" && pwd)
TMP=$(mktemp -d /tmp/pkg-unit-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
MAX_EXPOSURE=5.0

command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (apt-get install systemd)"

# exposure UNIT_FILE [--root=R]: the overall exposure systemd-analyze rates.
exposure() {
	local out
	out=$(systemd-analyze security --offline=true --no-pager "${@:2}" "$1" 2>&1) ||
		true # non-zero above its own threshold; the level is what we judge
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out" | tail -n 1
}
check_exposure() { # UNIT_FILE LABEL [--root=R]
	local e
	e=$(exposure "$1" "${@:3}")
	[[ -n $e ]] || fail "$2: systemd-analyze security printed no exposure level"
	awk -v e="$e" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
		fail "$2: exposure $e > $MAX_EXPOSURE: $(systemd-analyze security --offline=true \
			--no-pager "${@:3}" "$1" 2>&1 | grep '✗' | head -20)"
	ok "$2: systemd-analyze security exposure $e <= $MAX_EXPOSURE"
}
# check_install ROOT PREFIX LABEL: the files below ROOT/PREFIX (ROOT = DESTDIR).
check_install() {
	local root=$1 p=$2 f
	for f in sbin/bpflbd sbin/bpflbctl lib/systemd/system/bpflbd.service \
		lib/bpflb/plugins/snat.so share/man/man8/bpflbd.8.gz share/man/man8/bpflbctl.8.gz \
		share/man/man5/bpflb.ini.5.gz share/bash-completion/completions/bpflbctl \
		share/pkgconfig/bpflb-sdk.pc include/bpflb/plugin.h share/doc/bpflb/LICENSE; do
		[[ -e $root$p/$f ]] || fail "$3: $p/$f not installed"
	done
}
# check_unit UNIT SBIN SYSCONF DOC LABEL: the paths the unit names.
check_unit() {
	local u=$1
	grep -qx "ExecStartPre=$2/bpflbd --config $3/bpflb.ini --check-config" "$u" ||
		fail "$5: ExecStartPre is not $2/bpflbd --config $3/bpflb.ini --check-config"
	grep -qx "ExecStart=$2/bpflbd --config $3/bpflb.ini" "$u" ||
		fail "$5: ExecStart does not name $2/bpflbd and $3/bpflb.ini"
	grep -qx "ExecReload=$2/bpflbctl --config $3/bpflb.ini reload" "$u" ||
		fail "$5: ExecReload is not $2/bpflbctl ... reload"
	grep -qx "Documentation=file://$4/README.md" "$u" || fail "$5: Documentation= is not $4/README.md"
	grep -q "@[A-Z_]*@" "$u" && fail "$5: an unsubstituted @VAR@ in the unit: $(grep "@[A-Z_]*@" "$u")"
	ok "$5: the unit names $2/bpflbd, $2/bpflbctl, $3/bpflb.ini, $4"
}

# --- the build's prefix (/usr): installed into a scratch root ---------------
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
R=$TMP/root
DESTDIR=$R cmake --install "$BUILD" >/dev/null
outside=$(cd "$R" && find . ! -type d | sed 's|^\.||' | grep -v "^$prefix/" || true)
# /etc is where GNUInstallDirs puts SYSCONFDIR for /usr; any other prefix: below it.
[[ $prefix != /usr ]] || outside=$(grep -vx "/etc/bpflb/bpflb.ini" <<<"$outside" || true)
[[ -z $outside ]] || fail "install for $prefix wrote outside $prefix: $outside"
check_install "$R" "$prefix" "prefix $prefix"
ok "prefix $prefix: installed below $prefix (and the config in /etc/bpflb)"
U=$R$prefix/lib/systemd/system/bpflbd.service
sysconf=$([[ $prefix == /usr ]] && echo /etc/bpflb || echo "$prefix/etc/bpflb")
check_unit "$U" "$prefix/sbin" "$sysconf" "$prefix/share/doc/bpflb" "prefix $prefix"
# verify resolves units (sysinit.target, ...) below --root: give it the
# host's, under the unit directory of the scratch root (files only, copied).
if [[ -d /lib/systemd/system ]]; then
	cp -an /lib/systemd/system/. "$R$prefix/lib/systemd/system/" 2>/dev/null || true
fi
out=$(MANPATH=$R$prefix/share/man systemd-analyze verify --root="$R" "$U" 2>&1) ||
	fail "prefix $prefix: systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "prefix $prefix: systemd-analyze verify complains: $out"
ok "prefix $prefix: systemd-analyze verify is clean"
check_exposure "$U" "prefix $prefix"

# --- a scratch prefix: configured for it, installed with --prefix ----------
P=$TMP/prefix
B2=$TMP/build2
cmake -S "$SRC" -B "$B2" -DCMAKE_INSTALL_PREFIX="$P" -DBUILD_TESTING=OFF >/dev/null ||
	fail "cannot configure for prefix $P"
D=$TMP/dest
DESTDIR=$D cmake --install "$BUILD" --prefix "$P" >/dev/null
outside=$(find "$D" ! -type d | grep -v "^$D$P/" || true)
[[ -z $outside ]] || fail "cmake --install --prefix $P wrote outside $P: $outside"
check_install "$D" "$P" "prefix $P"
ok "prefix $P: cmake --install --prefix writes only below it"
# The unit and the pkg-config file of the tree configured for P.
cp "$B2/etc/bpflbd.service" "$D$P/lib/systemd/system/bpflbd.service"
U2=$D$P/lib/systemd/system/bpflbd.service
check_unit "$U2" "$P/sbin" "$P/etc/bpflb" "$P/share/doc/bpflb" "prefix $P"
grep -qx "plugindir=$P/lib/bpflb/plugins" "$B2/sdk/bpflb-sdk.pc" ||
	fail "prefix $P: pkg-config plugindir is not $P/lib/bpflb/plugins"
ok "prefix $P: pkg-config plugindir=$P/lib/bpflb/plugins"
# Not below a --root: the unit's commands are absolute paths below $D$P, so
# the DESTDIR tree is moved to where the unit looks: $P itself.
mkdir -p "$P" && cp -a "$D$P/." "$P/"
cp "$B2/etc/bpflbd.service" "$TMP/bpflbd.service"
out=$(MANPATH=$P/share/man systemd-analyze verify "$TMP/bpflbd.service" 2>&1) ||
	fail "prefix $P: systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "prefix $P: systemd-analyze verify complains: $out"
ok "prefix $P: systemd-analyze verify is clean"
check_exposure "$TMP/bpflbd.service" "prefix $P"
echo "unit_security: all ok"
