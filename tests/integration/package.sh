#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The Debian packages as an operator gets them (packaging/CMakeLists.txt):
#   - cpack builds bpflb and bpflb-dev from the build tree (into a scratch dir)
#   - lintian reports no error (E:) on either
#   - both install into a scratch root with its own dpkg database (dpkg
#     --instdir/--admindir; the maintainer scripts run chrootless and, seeing
#     DPKG_ROOT, leave the host's systemd alone) and every file is there
#   - /etc/bpflb/bpflb.ini is a conffile: edited, it survives a reinstall
#   - every man page renders without a groff/man warning
#   - the bash completion loads (`complete -p bpflbctl`), completes commands,
#     subcommands and values, and knows every command and option of
#     `bpflbctl --help`; so does bpflbctl(8)
#   - purge removes the package's files and keeps nothing of the host
#
# Usage: package.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "${1:?usage: package.sh BUILD_DIR}" && pwd)
TMP=$(mktemp -d /tmp/pkg-deb-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

for t in cpack dpkg dpkg-deb lintian man groff; do
	command -v "$t" >/dev/null || fail "$t missing (scripts/deps.sh installs it)"
done
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
if [[ $prefix != /usr ]]; then
	echo "SKIP: a Debian package needs the prefix /usr; this build has $prefix"
	exit 77
fi

# --- build ---------------------------------------------------------------
(cd "$BUILD" && cpack -G DEB -B "$TMP/out" --config CPackConfig.cmake >"$TMP/cpack.log" 2>&1) ||
	fail "cpack failed: $(tail -20 "$TMP/cpack.log")"
DEB=$(ls "$TMP"/out/bpflb_*.deb)
DEV=$(ls "$TMP"/out/bpflb-dev_*.deb)
ok "cpack built $(basename "$DEB") and $(basename "$DEV")"

# --- lint ------------------------------------------------------------------
lintian --fail-on error --no-tag-display-limit "$DEB" "$DEV" >"$TMP/lintian.log" 2>&1 ||
	fail "lintian: $(grep -v '^running with root' "$TMP/lintian.log")"
grep -q '^E:' "$TMP/lintian.log" && fail "lintian errors: $(grep '^E:' "$TMP/lintian.log")"
ok "lintian: no error ($(grep -c '^W:' "$TMP/lintian.log" || true) warnings)"

# --- install into a scratch root -------------------------------------------
R=$TMP/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
# Dependencies (libbpf1, ...) are the host's business, not the scratch root's.
dpkg_r() {
	dpkg --instdir="$R" --admindir="$R/var/lib/dpkg" --force-script-chrootless \
		--force-depends --no-triggers "$@" >>"$TMP/dpkg.log" 2>&1 ||
		fail "dpkg $*: $(tail -20 "$TMP/dpkg.log")"
}
dpkg_r -i "$DEB" "$DEV"
for f in usr/sbin/bpflbd usr/sbin/bpflbctl usr/lib/bpflb/plugins/snat.so \
	usr/lib/bpflb/plugins/dsr.so usr/lib/bpflb/plugins/hybrid.so usr/lib/bpflb/plugins/policy.so \
	usr/lib/bpflb/plugins/egress.so usr/lib/systemd/system/bpflbd.service etc/bpflb/bpflb.ini \
	usr/share/man/man8/bpflbd.8.gz usr/share/man/man8/bpflbctl.8.gz \
	usr/share/man/man5/bpflb.ini.5.gz usr/share/bash-completion/completions/bpflbctl \
	usr/share/doc/bpflb/copyright usr/share/doc/bpflb/changelog.Debian.gz \
	usr/share/doc/bpflb-dev/copyright usr/share/doc/bpflb-dev/changelog.Debian.gz \
	usr/include/bpflb/plugin.h usr/include/bpflb/lb.h usr/share/bpflb/bpf/bpflb/lb_core.h \
	usr/share/pkgconfig/bpflb-sdk.pc; do
	[[ -e $R/$f ]] || fail "/$f missing after dpkg -i"
done
[[ -e $R/usr/include/bpflb/plugin.h && -z $(dpkg-deb -c "$DEB" | grep include/ || true) ]] ||
	fail "the SDK headers are in bpflb, not only in bpflb-dev"
"$R/usr/sbin/bpflbd" --version | grep >/dev/null "^bpflbd " || fail "the packaged bpflbd does not run"
grep -qx "ExecStart=/usr/sbin/bpflbd --config /etc/bpflb/bpflb.ini" \
	"$R/usr/lib/systemd/system/bpflbd.service" || fail "the packaged unit does not start /usr/sbin/bpflbd"
grep -qx "plugindir=/usr/lib/bpflb/plugins" "$R/usr/share/pkgconfig/bpflb-sdk.pc" ||
	fail "bpflb-sdk.pc: plugindir is not /usr/lib/bpflb/plugins"
ok "both packages install into a scratch root; binaries, plugins, unit, config, SDK, docs present"

# --- conffile --------------------------------------------------------------
conff=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Conffiles}' bpflb)
grep -q "^ /etc/bpflb/bpflb.ini " <<<"$conff" || fail "/etc/bpflb/bpflb.ini is not a conffile: '$conff'"
echo "; edited by package.sh $$" >>"$R/etc/bpflb/bpflb.ini"
dpkg_r -i "$DEB"
grep -qx "; edited by package.sh $$" "$R/etc/bpflb/bpflb.ini" ||
	fail "reinstalling bpflb overwrote the edited /etc/bpflb/bpflb.ini"
[[ ! -e $R/etc/bpflb/bpflb.ini.dpkg-new ]] || fail "reinstall left bpflb.ini.dpkg-new"
ok "/etc/bpflb/bpflb.ini is a conffile: an edit survives a reinstall"

# --- man pages -------------------------------------------------------------
for page in "$R"/usr/share/man/man*/*.gz; do
	out=$(MANWIDTH=80 man --warnings=w -l "$page" 2>&1 >/dev/null) ||
		fail "man -l $(basename "$page") failed: $out"
	[[ -z $out ]] || fail "man --warnings -l $(basename "$page"): $out"
	zcat "$page" | groff -man -ww -z 2>&1 | grep . && fail "groff -ww warns on $(basename "$page")"
	[[ $(gzip -dc "$page" | head -c 2) == '.\' ]] || fail "$page: not a roff page"
done
ok "man pages bpflbd(8), bpflbctl(8), bpflb.ini(5) render without warnings"

# --- bash completion -------------------------------------------------------
COMP=$R/usr/share/bash-completion/completions/bpflbctl
bash -c "source '$COMP' && complete -p bpflbctl" | grep >/dev/null -- '-F _bpflbctl bpflbctl' ||
	fail "the completion does not register for bpflbctl"
# complete WORDS...: what completing the last word offers, one line.
complete_words() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bpflbctl
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$COMP" bpflbctl "$@"
}
[[ $(complete_words ba) == "backend " ]] || fail "bpflbctl ba<TAB>: '$(complete_words ba)'"
[[ $(complete_words -s /x/y ser) == "service " ]] || fail "after -s PATH: '$(complete_words -s /x/y ser)'"
[[ $(complete_words backend '') == "list set-state " ]] || fail "backend <TAB>: '$(complete_words backend '')'"
[[ $(complete_words backend set-state 10.0.0.1 m) == "maintenance " ]] ||
	fail "backend set-state ADDR m<TAB>: '$(complete_words backend set-state 10.0.0.1 m)'"
[[ $(complete_words ct list --proto '') == "tcp udp " ]] || fail "--proto <TAB>"
[[ $(complete_words -o j) == "json " ]] || fail "-o j<TAB>"
ok "bash completion loads and completes commands, subcommands and values"

# Every command and long option of the usage is in the completion and bpflbctl(8).
usage=$("$R/usr/sbin/bpflbctl" --help)
man8=$(MANWIDTH=200 man -l "$R/usr/share/man/man8/bpflbctl.8.gz" 2>/dev/null)
opts=$(grep -o -- '--[a-z][a-z-]*' <<<"$usage" | sort -u)
cmds=$(sed -n '/^Commands:/,/^$/p' <<<"$usage" | awk '/^  [a-z]/ { print $1 }' | sort -u)
for w in $opts $cmds; do
	grep -Eq -- "(^|[[:space:]'\"(])$w([[:space:]'\")|]|\$)" "$COMP" ||
		fail "'$w' of bpflbctl --help is not in the bash completion"
	grep -q -- "$w" <<<"$man8" || fail "'$w' of bpflbctl --help is not in bpflbctl(8)"
done
ok "bpflbctl(8) and the completion know every command and option of bpflbctl --help"

# --- purge -----------------------------------------------------------------
dpkg_r --purge bpflb-dev bpflb
left=$(cd "$R" && find . ! -type d ! -path './var/lib/dpkg/*' | head)
[[ -z $left ]] || fail "purge left files: $left"
ok "purge removes everything, the edited conffile too"
echo "package: all ok"
