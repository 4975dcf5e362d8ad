#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# bpflb benchmarks, one command:
#
#   sudo ./bench/run.sh [--quick | --smoke] [--parts prog,scale,throughput,control]
#                       [--sizes 1,1000,10000,100000] [--iptables legacy|nft]
#                       [--build DIR] [--out DIR] [--no-deps] [--no-build]
#
# Installs what it needs (scripts/deps.sh --bench: iptables, iperf3,
# gnuplot-nox), builds into build/, runs every part and writes
# bench/results/latest.md, latest.json and PNG plots.  Parts:
#
#   prog        per-packet cost of the datapath programs (bench/prog_cost.c)
#   scale       TCP connect latency through a NodePort with 1..100k services,
#               bpflb vs kube-proxy-shaped iptables rules vs no load balancer;
#               bpflbd start, reload and RSS at each size, with probes
#               (bench/lib/scale.sh)
#   throughput  iperf3 through a NodePort to a remote pod: bpflb SNAT, bpflb
#               DSR, iptables, direct; CPU time per GB (bench/lib/throughput.sh)
#   control     config load / validate / apply / reload in process, Maglev
#               table builds (bench/ctrl_bench.c)
#
# Sizes and counts: full (default) takes about 6 minutes on 2 CPUs, one of
# them loading 100k services into iptables; --quick: services up to 10k,
# fewer rounds (about 1.5 minutes); --smoke: tiny sizes, only checks that
# every part produces numbers (ctest bench_smoke).
#
# Needs root (BPF, network namespaces).  Everything it creates (namespaces,
# pins, processes) is removed at the end, also on failure or ^C.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CMDLINE="$0${*:+ $*}"
MODE=full
PARTS=prog,scale,throughput,control
SIZES=""
IPT=legacy
BUILD="$ROOT/build"
OUT="$ROOT/bench/results"
DEPS=1
DO_BUILD=1

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }

while (($#)); do
	case "$1" in
	--quick) MODE=quick ;;
	--smoke) MODE=smoke ;;
	--parts) PARTS="$2"; shift ;;
	--sizes) SIZES="$2"; shift ;;
	--iptables) IPT="$2"; shift ;;
	--build) BUILD="$2"; shift ;;
	--out) OUT="$2"; shift ;;
	--no-deps) DEPS=0 ;;
	--no-build) DO_BUILD=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $IPT == legacy || $IPT == nft ]] || { echo "run.sh: --iptables legacy|nft" >&2; exit 2; }
if ((EUID != 0)); then
	echo "run.sh: needs root (BPF, network namespaces)" >&2
	exit 77
fi

case $MODE in
full)
	: "${SIZES:=1,1000,10000,100000}"
	PROG_ARGS=(--rounds 20 --calls 2000)
	SCALE_ROUNDS=20 SCALE_CONNS=300
	TP_ROUNDS=4 TP_SECS=5
	CTRL_SIZES=1000,10000,100000 CTRL_ROUNDS=5 MAGLEV_ROUNDS=20
	;;
quick)
	: "${SIZES:=1,1000,10000}"
	PROG_ARGS=(--rounds 5 --calls 500)
	SCALE_ROUNDS=5 SCALE_CONNS=200
	TP_ROUNDS=2 TP_SECS=3
	CTRL_SIZES=1000,10000 CTRL_ROUNDS=3 MAGLEV_ROUNDS=5
	;;
smoke)
	: "${SIZES:=1,100}"
	PROG_ARGS=(--rounds 1 --calls 20 --services 10)
	SCALE_ROUNDS=1 SCALE_CONNS=20
	TP_ROUNDS=1 TP_SECS=1
	CTRL_SIZES=100 CTRL_ROUNDS=1 MAGLEV_ROUNDS=1
	;;
esac
export BENCH_IPT=$IPT

log() { printf '%(%H:%M:%S)T bench: %s\n' -1 "$*" >&2; }
has_part() { [[ ,$PARTS, == *,$1,* ]]; }

cd "$ROOT"
if ((DEPS)); then
	./scripts/deps.sh --bench
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
if ((DO_BUILD)); then
	log "building into $BUILD"
	cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFLB_BUILD_BENCH=ON >/dev/null
	cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi
BUILD="$(cd "$BUILD" && pwd)"
for t in prog_cost connlat ctrl_bench; do
	[[ -x $BUILD/bench/$t ]] || { echo "run.sh: $BUILD/bench/$t missing (build first)" >&2; exit 1; }
done
for p in iptables-"$IPT"-restore iperf3; do
	command -v "$p" >/dev/null || { echo "run.sh: $p missing (drop --no-deps)" >&2; exit 1; }
done

mkdir -p "$OUT"
RAW="$OUT/raw"
rm -rf "$RAW"
mkdir -p "$RAW"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- machine and run description ---------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virt=$(systemd-detect-virt 2>/dev/null || true)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev="$rev+local changes"
python3 - "$TMP/meta.json" <<PY
import json, sys
json.dump({"command": "sudo ./bench/run.sh" + ("${CMDLINE#"$0"}"), "mode": "$MODE",
           "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "git": "$rev", "iptables": "$IPT",
           "parts": "$PARTS", "sizes": "$SIZES",
           "machine": {"nproc": $(nproc), "cpu": "${cpu:-unknown}", "kernel": "$(uname -r)",
                       "mem_gb": round($(awk '/MemTotal/ { print $2 }' /proc/meminfo) / 1048576, 1),
                       "virt": "${virt:+virtualized: $virt}"}}, open(sys.argv[1], "w"))
PY
log "$(nproc) CPUs, ${cpu:-?}, kernel $(uname -r); mode $MODE, parts $PARTS"

failed=()
run_part() { # NAME CMD...
	local name="$1"
	shift
	log "part $name"
	if ! "$@"; then
		log "part $name FAILED (see above); going on with the others"
		failed+=("$name")
	fi
}

# --- 1. per-packet cost --------------------------------------------------------
if has_part prog; then
	run_part prog sh -c '"$1" "$@" >"$0"' "$RAW/prog.json" "$BUILD/bench/prog_cost" "${PROG_ARGS[@]}"
fi

# --- 4. control plane, in process ----------------------------------------------
control() {
	local n
	: >"$RAW/control.jsonl"
	IFS=, read -r -a ns <<<"$CTRL_SIZES"
	for n in "${ns[@]}"; do
		for v in same changed changed1; do
			{
				printf '[daemon]\ndevices = eth0\n\n[node]\nname = node1\naddress = 10.99.0.1\n\n'
				if [[ $v == same ]]; then
					python3 bench/lib/gen.py bpflb "$n" --udp --target-backends 10.244.1.2,10.244.1.3
				elif [[ $v == changed1 ]]; then
					python3 bench/lib/gen.py bpflb "$n" --udp --change-every 100 \
						--target-backends 10.244.1.2,10.244.1.3
				else
					python3 bench/lib/gen.py bpflb "$n" --udp --change $((n / 2)) \
						--target-backends 10.244.1.2,10.244.1.3
				fi
			} >"$TMP/ctrl-$v.ini"
		done
		log "control: $n services"
		"$BUILD/bench/ctrl_bench" services --config "$TMP/ctrl-same.ini" \
			--changed "$TMP/ctrl-changed.ini" --changed-1pct "$TMP/ctrl-changed1.ini" --rounds "$CTRL_ROUNDS" >"$TMP/ctrl.json" || return 1
		python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$TMP/ctrl.json" \
			>>"$RAW/control.jsonl"
	done
	"$BUILD/bench/ctrl_bench" maglev --backends 100,1000 --rounds "$MAGLEV_ROUNDS" >"$RAW/maglev.json"
}
if has_part control; then
	run_part control control
fi

# --- 2. service-count scaling (and the daemon's control plane) -------------------
if has_part scale; then
	run_part scale "$ROOT/bench/lib/scale.sh" "$BUILD" "$RAW" "$SIZES" "$SCALE_ROUNDS" "$SCALE_CONNS"
fi

# --- 3. throughput -------------------------------------------------------------
if has_part throughput; then
	run_part throughput "$ROOT/bench/lib/throughput.sh" "$BUILD" "$RAW" "$TP_ROUNDS" "$TP_SECS"
fi

# --- report ------------------------------------------------------------------------
if ((${#failed[@]})); then
	python3 - "$TMP/meta.json" "${failed[*]}" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m.setdefault("notes", []).append("parts that failed in this run: " + sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
PY
fi
md=$(python3 "$ROOT/bench/lib/report.py" "$RAW" "$OUT" "$TMP/meta.json")
log "results: $md, $OUT/latest.json"

# Smoke: every part that ran produced numbers; nothing else is checked.
if [[ $MODE == smoke ]]; then
	python3 - "$OUT/latest.json" "$PARTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
parts = sys.argv[2].split(",")
bad = []
if "prog" in parts and not any("median_ns" in c for c in r.get("prog_cost", {}).get("cases", [])):
    bad.append("prog")
if "scale" in parts and not all(e["bpflb"]["p50_us"] and e["iptables"]["p50_us"] and e["direct"]["p50_us"]
                                for e in r.get("scale", [{"bpflb": {"p50_us": None}}])):
    bad.append("scale")
if "throughput" in parts and not any(t.get("gbit_s") for d in r.get("throughput", {}).values() for t in d.values()):
    bad.append("throughput")
if "control" in parts and not (r.get("control", {}).get("services") and r["control"].get("maglev")):
    bad.append("control")
if bad:
    sys.exit("bench smoke: no numbers from: " + ", ".join(bad))
print("bench smoke: every part produced numbers")
PY
fi
((${#failed[@]} == 0))
