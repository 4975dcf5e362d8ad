#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The licence rule of LICENSE: every file carries an SPDX-License-Identifier in
# its first 5 lines and the tag is the one its place in the tree asks for; every
# licence named has its text in LICENSES/.  Prints one line per offending file
# (FILE: what is wrong, what is expected) and exits 1 if there is any.
#   check-licenses.sh [ROOT]      check the tree at ROOT (default: this repo)
#   check-licenses.sh --self-test plant offenders in a scratch tree; the check
#                                 must name each one and pass the good files
# Files: git's tracked and untracked-but-not-ignored files when ROOT is a git
# work tree (so build dirs and other ignored output are skipped and a new file
# is checked before its first commit), otherwise every file outside build*/.
set -euo pipefail

GPL='GPL-2.0-only'
BPF='(GPL-2.0-only OR BSD-2-Clause)'
SDK='(LGPL-2.1 OR BSD-2-Clause)'
BSD='BSD-2-Clause'

# want=the tag path $1 must carry; "-" for files that are not tagged (LICENSE).
expected() {
	case $1 in
	LICENSE | LICENSES/* | *.md | *.png | .gitignore | */.gitignore) want=- ;;
	fuzz/corpus/* | tests/configs/* | tests/policies/* | bench/results/*) want=- ;;
	# Debian's machine-readable format has no comment lines; it states its own.
	packaging/debian/copyright) want=- ;;
	# Build files everywhere but in the vendor example (copied as a whole).
	examples/vendor-plugin/*) want=$SDK ;;
	CMakeLists.txt | */CMakeLists.txt | *.cmake | */Makefile | *.pc.in) want=$BSD ;;
	sdk/include/* | sdk/bpf/*) want=$SDK ;;
	*.bpf.c | */bpf/*.h) want=$BPF ;;
	*.c | *.h) want=$GPL ;;
	tests/*) want=$GPL ;;
	*) want=$BSD ;;
	esac
}

# "FILE<TAB>TAG" for each file of stdin (paths relative to $1) with a tag in
# its first 5 lines, without comment delimiters.  One awk for the whole tree.
tags_of() {
	(cd "$1" && tr '\n' '\0' | xargs -0 -r awk '
		FNR == 1 { found = 0 }
		!found && FNR <= 5 && /SPDX-License-Identifier:/ {
			t = $0
			sub(/.*SPDX-License-Identifier:[ \t]*/, "", t)
			sub(/[ \t]*(\*\/|-->)?[ \t]*$/, "", t)
			print FILENAME "\t" t
			found = 1
			nextfile
		}
		FNR > 5 { nextfile }')
}

list_files() {
	if git -C "$1" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# ls-files lists deleted-but-unstaged files too: skip what is gone.
		git -C "$1" ls-files --cached --others --exclude-standard |
			while IFS= read -r f; do [[ -f $1/$f ]] && printf '%s\n' "$f"; done
	else
		(cd "$1" && find . -path './build*' -prune -o -path './.git' -prune -o -type f -print |
			sed 's|^\./||')
	fi
}

check_tree() {
	local root=$1 f want got bad=0 id files
	local -A ids=() tags=()
	files=$(list_files "$root")
	while IFS=$'\t' read -r f got; do
		tags[$f]=$got
	done < <(tags_of "$root" <<<"$files")
	while IFS= read -r f; do
		[[ -n $f ]] || continue
		expected "$f"
		got=${tags[$f]:-}
		if [[ $want == - ]]; then
			continue
		elif [[ -z $got ]]; then
			echo "$f: no SPDX-License-Identifier in its first 5 lines; expected $want (see LICENSE)"
			bad=1
		elif [[ $got != "$want" ]]; then
			echo "$f: SPDX-License-Identifier $got; expected $want (see LICENSE)"
			bad=1
		fi
		if [[ -n $got ]]; then
			local expr=${got//[()]/}
			for id in $expr; do
				[[ $id == OR || $id == AND || $id == WITH ]] || ids[$id]=1
			done
		fi
	done <<<"$files"
	for id in "${!ids[@]}"; do
		if [[ ! -f $root/LICENSES/$id.txt ]]; then
			echo "LICENSES/$id.txt: missing; a tag names $id"
			bad=1
		fi
	done
	return $bad
}

self_test() {
	local t out fail=0
	t=$(mktemp -d /tmp/pkg-licenses.XXXXXX)
	trap 'rm -rf "$t"' RETURN
	mkdir -p "$t"/{LICENSES,core,sdk/include/bpflb,plugins/x/bpf,scripts,build/core,tests/configs}
	touch "$t"/LICENSES/{GPL-2.0-only,LGPL-2.1,BSD-2-Clause}.txt
	# good
	printf '// SPDX-License-Identifier: %s\n' "$GPL" >"$t/core/good.c"
	printf '/* SPDX-License-Identifier: %s */\n' "$SDK" >"$t/sdk/include/bpflb/good.h"
	printf '// SPDX-License-Identifier: %s\n' "$BPF" >"$t/plugins/x/bpf/good.bpf.c"
	printf '#!/bin/sh\n# SPDX-License-Identifier: %s\n' "$BSD" >"$t/scripts/good.sh"
	printf 'no tag: ignored build output\n' >"$t/build/core/out.c"
	printf '[daemon]\n' >"$t/tests/configs/data.ini"
	# bad
	printf 'int x;\n' >"$t/core/untagged.c"
	printf '// SPDX-License-Identifier: %s\n' "$SDK" >"$t/core/wrong.c"
	printf '// SPDX-License-Identifier: %s\n' "$GPL" >"$t/plugins/x/bpf/wrong.bpf.c"
	printf '/* SPDX-License-Identifier: %s */\n' "$GPL" >"$t/sdk/include/bpflb/wrong.h"
	printf '\n\n\n\n\n# SPDX-License-Identifier: %s\n' "$BSD" >"$t/scripts/late.sh"
	printf '// SPDX-License-Identifier: MIT\n' >"$t/core/mit.c"
	out=$(check_tree "$t") && { echo "self-test: the check passed a tree with offenders" >&2; fail=1; }
	for f in core/untagged.c core/wrong.c plugins/x/bpf/wrong.bpf.c sdk/include/bpflb/wrong.h \
		scripts/late.sh core/mit.c LICENSES/MIT.txt; do
		grep -q "^$f: " <<<"$out" || { echo "self-test: $f not reported" >&2; fail=1; }
	done
	for f in core/good.c sdk/include/bpflb/good.h plugins/x/bpf/good.bpf.c scripts/good.sh \
		build/core/out.c tests/configs/data.ini; do
		grep -q "^$f: " <<<"$out" && { echo "self-test: good $f reported" >&2; fail=1; }
	done
	((fail)) && { printf '%s\n' "$out" >&2; return 1; }
	echo "check-licenses self-test: ok"
}

if [[ ${1:-} == --self-test ]]; then
	self_test
	exit
fi
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
if ! out=$(check_tree "$ROOT"); then
	printf '%s\n' "$out"
	echo "check-licenses: $(grep -c . <<<"$out") problem(s); the rule is in LICENSE" >&2
	exit 1
fi
echo "check-licenses: every file follows LICENSE"
