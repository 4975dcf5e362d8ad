#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The dependency rule of core/ (README "Architecture"), checked on the
# #include "..." lines of every .c and .h under it:
#   - core/ops/ (the operations surface) and core/config/ (the INI engine) are
#     generic: they include nothing of core/lb/, core/state/ or core/daemon.h;
#     owners register their commands and metrics on them instead;
#   - no two folders include each other, directly or around a longer circle
#     (core/ itself counts as a folder: main, daemon, plugin host, pipeline).
# The base headers (BASE below: logging, system helpers) are used by every
# folder and include no header of core/ themselves, so they close no circle;
# that they stay so is checked too.
#
# An include is resolved as the compiler does: next to the including file
# first, then core/ (the include directory); one that resolves outside core/
# (sdk, system, generated skeletons) is not a dependency between folders.
# Every violation is printed as FILE:LINE: what and why; exit 1 if any.
#
# Usage: check-layout.sh [CORE_DIR]      (default: the core/ next to scripts/)
#        check-layout.sh --self-test     (the checker finds planted violations)
# No root, no build needed.
set -euo pipefail

BASE="log.h sys.h"

check() { # core_dir
	python3 - "$1" "$BASE" <<'PY'
import os, re, sys

core = os.path.realpath(sys.argv[1])
base = set(sys.argv[2].split())
generic = ("ops", "config")          # folders that must stay generic
forbidden = ("lb", "state")          # ... of these folders
forbidden_files = ("daemon.h",)      # ... and of these core/ files
inc_re = re.compile(r'^\s*#\s*include\s*"([^"]+)"')

def folder(path):
    """core/ -> "core", core/lb/x.h -> "lb" (first level below core/)."""
    rel = os.path.relpath(path, core)
    return "core" if os.sep not in rel else rel.split(os.sep)[0]

def resolve(src, name):
    for d in (os.path.dirname(src), core):
        p = os.path.realpath(os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None

errors = []
edges = {}   # (from folder, to folder) -> first "file:line: include" witness
files = []
for root, dirs, names in os.walk(core):
    dirs.sort()
    for n in sorted(names):
        if n.endswith((".c", ".h")):
            files.append(os.path.join(root, n))

for src in files:
    rel = os.path.relpath(src, os.path.dirname(core))
    f_from = folder(src)
    with open(src, errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = inc_re.match(line)
            if not m:
                continue
            tgt = resolve(src, m.group(1))
            if not tgt or os.path.commonpath([tgt, core]) != core:
                continue
            f_to = folder(tgt)
            tgt_rel = os.path.relpath(tgt, core)
            where = f"{rel}:{lineno}"
            if f_from == "core" and os.path.basename(src) in base and src.endswith(".h"):
                errors.append(f"{where}: base header includes \"{m.group(1)}\"; the base "
                              f"headers ({' '.join(sorted(base))}) must include nothing "
                              f"of core/, every folder uses them")
            if f_from in generic and (f_to in forbidden or tgt_rel in forbidden_files):
                errors.append(f"{where}: core/{f_from}/ includes \"{m.group(1)}\" "
                              f"(core/{tgt_rel}); {f_from}/ must not include lb/, state/ "
                              f"or daemon.h: let the owner register through "
                              f"{f_from}/'s API instead")
            if f_to == f_from or (f_to == "core" and tgt_rel in base):
                continue
            edges.setdefault((f_from, f_to), f"{where}: includes \"{m.group(1)}\"")

# Circles between folders: strongly connected components of the folder graph.
graph = {}
for a, b in edges:
    graph.setdefault(a, set()).add(b)
    graph.setdefault(b, set())
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in sorted(graph[v]):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
for v in sorted(graph):
    if v not in index:
        strong(v)
for comp in sccs:
    names = ", ".join("core/" if c == "core" else f"core/{c}/" for c in comp)
    errors.append(f"include circle between {names}:")
    for (a, b), w in sorted(edges.items()):
        if a in comp and b in comp:
            errors.append(f"  {w} ({a} -> {b})")

for e in errors:
    print(e)
if errors:
    print(f"layout: {sum(1 for e in errors if not e.startswith('  '))} violation(s) "
          f"of the dependency rule (README, Architecture)", file=sys.stderr)
    sys.exit(1)
print(f"layout: {len(files)} files, folder dependencies: " +
      ", ".join(f"{a}->{b}" for a, b in sorted(edges)) + "; no circle")
PY
}

self_test() {
	local t rc out
	t=$(mktemp -d /tmp/bpflb-layout-XXXXXX)
	trap 'rm -rf "$t"' RETURN
	plant() { # case: a small tree under $t/$1/core
		mkdir -p "$t/$1/core/ops" "$t/$1/core/lb" "$t/$1/core/config" "$t/$1/core/state"
		printf '#include <stdio.h>\n' >"$t/$1/core/log.h"
		printf '#include "log.h"\n#include "lb/services.h"\n#include "ops/control.h"\n' \
			>"$t/$1/core/daemon.c"
		printf '#include "log.h"\n' >"$t/$1/core/daemon.h"
		printf '#include "log.h"\n#include "ops/control.h"\n' >"$t/$1/core/lb/services.h"
		printf '#include "log.h"\n#include <json-c/json.h>\n' >"$t/$1/core/ops/control.h"
		printf '\n' >"$t/$1/core/state/state.h"
		printf '\n' >"$t/$1/core/config/config.h"
	}
	expect() { # case expected-substring
		set +e
		out=$(check "$t/$1/core" 2>&1)
		rc=$?
		set -e
		if [[ $2 == ok ]]; then
			[[ $rc -eq 0 ]] || { echo "self-test $1: refused a good tree:"; echo "$out"; exit 1; }
		else
			[[ $rc -ne 0 && $out == *"$2"* ]] ||
				{ echo "self-test $1: expected '$2', got (rc $rc):"; echo "$out"; exit 1; }
		fi
		echo "ok - self-test $1"
	}
	plant good
	expect good ok
	plant ops_lb
	printf '#include "lb/services.h"\n' >>"$t/ops_lb/core/ops/control.h"
	expect ops_lb 'core/ops/control.h:3: core/ops/ includes "lb/services.h"'
	plant ops_daemon
	printf '\n#include "../daemon.h"\n' >>"$t/ops_daemon/core/ops/control.h"
	expect ops_daemon 'core/ops/control.h:4: core/ops/ includes "../daemon.h"'
	plant config_state
	printf '#include "state/state.h"\n' >"$t/config_state/core/config/config.c"
	expect config_state 'core/config/config.c:1: core/config/ includes "state/state.h"'
	plant circle
	printf '#include "daemon.h"\n' >"$t/circle/core/lb/healthz.c"
	expect circle 'core/lb/healthz.c:1: includes "daemon.h" (lb -> core)'
	plant circle3
	printf '#include "state/state.h"\n' >"$t/circle3/core/lb/x.c"
	printf '#include "config/config.h"\n' >"$t/circle3/core/state/x.c"
	printf '#include "lb/services.h"\n' >"$t/circle3/core/config/x.c"
	expect circle3 'include circle between core/config/, core/lb/, core/state/'
	plant base
	printf '#include "daemon.h"\n' >>"$t/base/core/log.h"
	expect base 'core/log.h:2: base header includes "daemon.h"'
}

if [[ ${1:-} == --self-test ]]; then
	self_test
	exit 0
fi
check "${1:-$(dirname "$(realpath "$0")")/../core}"
