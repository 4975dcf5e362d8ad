#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""
report.py RAW_DIR OUT_DIR META_JSON

Turns what the benchmark parts left in RAW_DIR into OUT_DIR/latest.json,
OUT_DIR/latest.md and, when gnuplot is there, PNG plots:

  RAW_DIR/prog.json        prog_cost (per-packet cost)
  RAW_DIR/scale.jsonl      scale.sh, one object per service count
  RAW_DIR/lat/N-V.txt      connect() times (us) of every connection
  RAW_DIR/throughput.jsonl throughput.sh, one object per iperf3 run
  RAW_DIR/control.jsonl    ctrl_bench services, one object per service count
  RAW_DIR/maglev.json      ctrl_bench maglev

A part that did not run is left out.  Nothing here passes or fails: the goals
are reported with the measured value next to them.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except OSError:
        pass
    return out


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    pos = p * (len(v) - 1)
    lo = int(pos)
    if lo + 1 < len(v):
        return v[lo] + (v[lo + 1] - v[lo]) * (pos - lo)
    return v[lo]


def median(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(x, nd=1, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float):
        s = f"{x:,.{nd}f}"
    else:
        s = f"{x:,}"
    return s + unit


def fx(x):
    return "-" if x is None else f"{x:.2f}x"


# --- parts -------------------------------------------------------------------


def prog_part(raw):
    p = load_json(os.path.join(raw, "prog.json"))
    if not p:
        return None
    return p


def scale_part(raw):
    rows = load_jsonl(os.path.join(raw, "scale.jsonl"))
    if not rows:
        return None
    out = []
    for r in rows:
        n = r["n"]
        e = {"services": n, "rounds": r["rounds"], "conns_per_round": r["conns"]}
        for v in ("direct", "bpflb", "bpflb-noev", "iptables"):
            samples = []
            try:
                with open(os.path.join(raw, "lat", f"{n}-{v}.txt")) as f:
                    samples = [float(x) for x in f if x.strip()]
            except OSError:
                pass
            e[v] = {"count": len(samples), "p50_us": pct(samples, 0.5), "p90_us": pct(samples, 0.9),
                    "p99_us": pct(samples, 0.99)}
        d, b, i = e["direct"]["p50_us"], e["bpflb"]["p50_us"], e["iptables"]["p50_us"]
        e["iptables_over_bpflb_p50"] = ratio(i, b)
        q = e["bpflb-noev"]["p50_us"]
        e["added_us"] = {"bpflb": b - d if b is not None and d is not None else None,
                         "bpflb-noev": q - d if q is not None and d is not None else None,
                         "iptables": i - d if i is not None and d is not None else None}
        bd = r["bpflb"]
        e["bpflbd"] = {
            "start_s": bd["start_s"], "rss_mb_start": bd["rss_kb_start"] / 1024,
            "reload_s": bd["reload_s"], "one_change_reload_s": bd["change_s"],
            "rss_mb_after_reloads": bd["rss_kb_after_reloads"] / 1024,
            "probe_tcp": {k: bd["probe_tcp"].get(k) for k in ("attempts", "failures", "failed_at_s")},
            "probe_udp": {k: bd["probe_udp"].get(k) for k in ("attempts", "failures", "failed_at_s")},
        }
        e["iptables_rules"] = r["iptables"]
        out.append(e)
    base = next((e for e in out if e["services"] == 1), None)
    for e in out:
        e["bpflb_vs_1_service"] = ratio(e["bpflb"]["p50_us"], base["bpflb"]["p50_us"]) if base else None
        e["iptables_vs_1_service"] = ratio(e["iptables"]["p50_us"], base["iptables"]["p50_us"]) if base else None
    return out


def throughput_part(raw):
    runs = load_jsonl(os.path.join(raw, "throughput.jsonl"))
    if not runs:
        return None
    out = {}
    for d in ("download", "upload"):
        out[d] = {}
        for v in ("direct", "bpflb-snat", "bpflb-dsr", "iptables"):
            rs = [x for x in runs if x["dir"] == d and x["variant"] == v]
            if not rs:
                continue
            out[d][v] = {"runs": len(rs), "gbit_s": median([x["gbit_s"] for x in rs]),
                         "cpu_s_per_gb": median([x["cpu_s_per_gb"] for x in rs]),
                         "softirq_s_per_gb": median([x["softirq_s_per_gb"] for x in rs]),
                         "retransmits": median([x["retransmits"] for x in rs])}
    return out


def control_part(raw):
    rows = load_jsonl(os.path.join(raw, "control.jsonl"))
    mg = load_json(os.path.join(raw, "maglev.json"))
    if not rows and not mg:
        return None
    return {"services": rows, "maglev": mg}


# --- goals ------------------------------------------------------------------------


def goals(rep):
    g = []
    sc = rep.get("scale") or []
    by_n = {e["services"]: e for e in sc}
    big = max(by_n) if by_n else None
    if big and big > 1:
        g.append({"goal": f"bpflb connect latency flat in the service count: {big:,} within 1.15x of 1",
                  "value": by_n[big]["bpflb_vs_1_service"],
                  "met": (by_n[big]["bpflb_vs_1_service"] or 99) <= 1.15})
    if 10000 in by_n:
        r = by_n[10000]["iptables_over_bpflb_p50"]
        g.append({"goal": "bpflb at least 4x faster than iptables at 10k services (connect p50)",
                  "value": r, "met": (r or 0) >= 4})
    tp = rep.get("throughput") or {}
    for d in ("download", "upload"):
        t = tp.get(d, {})
        if "bpflb-snat" in t and "iptables" in t:
            r = ratio(t["bpflb-snat"]["gbit_s"], t["iptables"]["gbit_s"])
            g.append({"goal": f"throughput ({d}): bpflb SNAT at least matches iptables",
                      "value": r, "met": (r or 0) >= 0.97})
        if "bpflb-dsr" in t and "bpflb-snat" in t:
            r = ratio(t["bpflb-dsr"]["cpu_s_per_gb"], t["bpflb-snat"]["cpu_s_per_gb"])
            g.append({"goal": f"CPU per GB ({d}): DSR well below SNAT",
                      "value": r, "met": (r or 9) <= 0.8})
    if big:
        e = by_n[big]
        fails = (e["bpflbd"]["probe_tcp"].get("failures") or 0) + (e["bpflbd"]["probe_udp"].get("failures") or 0)
        worst = max(x for x in (e["bpflbd"]["reload_s"], e["bpflbd"]["one_change_reload_s"]) if x is not None)
        g.append({"goal": f"reload of {big:,} services <= 1 s", "value": worst, "met": worst <= 1.0})
        g.append({"goal": f"no probe lost during the reloads at {big:,} services", "value": fails,
                  "met": fails == 0})
        g.append({"goal": f"bpflbd RSS <= 50 MB at {big:,} services (after reloads)",
                  "value": e["bpflbd"]["rss_mb_after_reloads"],
                  "met": e["bpflbd"]["rss_mb_after_reloads"] <= 50})
    return g


# --- markdown -------------------------------------------------------------------------


def md(rep):
    m = rep["meta"]
    L = []
    a = L.append
    a("# bpflb benchmarks")
    a("")
    a(f"Command: `{m['command']}`  ")
    a(f"Date: {m['date']}; bpflb {m.get('git', '?')}; mode: {m['mode']}  ")
    mc = m["machine"]
    a(f"Machine: {mc['nproc']} CPUs ({mc['cpu']}), {mc['mem_gb']} GB RAM, kernel {mc['kernel']}, "
      f"{mc.get('virt', 'unknown virtualization')}; iptables {m.get('iptables')}")
    a("")
    a("Every comparison below was measured side by side in this one run: the compared variants "
      "alternate in rounds, and the numbers are medians over all rounds.  Nothing here is a "
      "pass/fail test.")
    a("")

    # summary
    a("## Summary")
    a("")
    a("| metric | bpflb | baseline | baseline is | ratio |")
    a("|---|---:|---:|---|---:|")
    p = rep.get("prog_cost")
    if p:
        cs = {c["name"]: c for c in p["cases"] if "median_ns" in c}
        for name, label in (("syn_snat", "new TCP flow to a NodePort (SYN), remote backend, ns/packet"),
                            ("est_snat", "established flow packet, ns/packet"),
                            ("reply_snat", "reply, reverse NAT, ns/packet")):
            if name in cs:
                a(f"| {label} | {fmt(cs[name]['median_ns'], 0)} | {fmt(p['floor_ns'], 0)} | empty tc program | "
                  f"{fx(cs[name]['ratio_to_floor'])} |")
    sc = rep.get("scale") or []
    for e in sc:
        a(f"| TCP connect p50 via NodePort, {e['services']:,} services, us | {fmt(e['bpflb']['p50_us'])} | "
          f"{fmt(e['iptables']['p50_us'])} | iptables (kube-proxy rules) | {fx(ratio(e['bpflb']['p50_us'], e['iptables']['p50_us']))} |")
    if sc:
        e = sc[-1]
        a(f"| TCP connect p50, {e['services']:,} services vs 1, us | {fmt(e['bpflb']['p50_us'])} | "
          f"{fmt(sc[0]['bpflb']['p50_us'])} | bpflb with {sc[0]['services']} service | {fx(e['bpflb_vs_1_service'])} |")
        a(f"| load time of {e['services']:,} services, s | {fmt(e['bpflbd']['start_s'], 2)} | "
          f"{fmt(e['iptables_rules']['load_s'], 2)} | iptables-restore | "
          f"{fx(ratio(e['bpflbd']['start_s'], e['iptables_rules']['load_s']))} |")
    tp = rep.get("throughput") or {}
    for d in ("download", "upload"):
        t = tp.get(d, {})
        if "bpflb-snat" in t and "iptables" in t:
            a(f"| iperf3 {d}, SNAT, Gbit/s | {fmt(t['bpflb-snat']['gbit_s'], 2)} | {fmt(t['iptables']['gbit_s'], 2)} | "
              f"iptables | {fx(ratio(t['bpflb-snat']['gbit_s'], t['iptables']['gbit_s']))} |")
            a(f"| iperf3 {d}, SNAT, CPU-s per GB (whole machine) | {fmt(t['bpflb-snat']['cpu_s_per_gb'], 2)} | "
              f"{fmt(t['iptables']['cpu_s_per_gb'], 2)} | iptables | "
              f"{fx(ratio(t['bpflb-snat']['cpu_s_per_gb'], t['iptables']['cpu_s_per_gb']))} |")
        if "bpflb-dsr" in t and "bpflb-snat" in t:
            a(f"| iperf3 {d}, DSR vs SNAT, CPU-s per GB | {fmt(t['bpflb-dsr']['cpu_s_per_gb'], 2)} | "
              f"{fmt(t['bpflb-snat']['cpu_s_per_gb'], 2)} | bpflb SNAT | "
              f"{fx(ratio(t['bpflb-dsr']['cpu_s_per_gb'], t['bpflb-snat']['cpu_s_per_gb']))} |")
    a("")

    g = rep.get("goals") or []
    if g:
        a("## Goals (reported, not asserted)")
        a("")
        a("| goal | measured | met |")
        a("|---|---:|---|")
        for x in g:
            v = x["value"]
            vs = "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
            a(f"| {x['goal']} | {vs} | {'yes' if x['met'] else '**no**'} |")
        a("")

    if p:
        a("## 1. Per-packet cost (BPF_PROG_TEST_RUN)")
        a("")
        a(f"{p['rounds']} rounds x {p['calls_per_round']:,} calls per case, cases interleaved; "
          f"{p['filler_services']:,} other services in the maps.  {p['method']}.  The floor is an "
          "empty tc program: the test-run machinery's own cost, included in every number; "
          "\"minus floor\" is what the program itself costs.")
        a("")
        a("| case | median ns | p10 | p90 | minus floor | x floor |")
        a("|---|---:|---:|---:|---:|---:|")
        for c in p["cases"]:
            if "median_ns" not in c:
                a(f"| {c['name']}: {c['desc']} | error: {c.get('error')} | | | | |")
                continue
            a(f"| {c['name']}: {c['desc']} | {fmt(c['median_ns'], 0)} | {fmt(c['p10_ns'], 0)} | "
              f"{fmt(c['p90_ns'], 0)} | {fmt(c['minus_floor_ns'], 0)} | {fx(c['ratio_to_floor'])} |")
        a("")
        a("![per-packet cost](prog_cost.png)")
        a("")

    if sc:
        a("## 2. Service-count scaling: TCP connect latency through a NodePort")
        a("")
        e0 = sc[0]
        a(f"{e0['rounds']} rounds x {e0['conns_per_round']:,} sequential connections per variant and size "
          "(connect() time: SYN out, SYN-ACK back through the load balancer; closed with RST). "
          "bpflb: bpflbd in SNAT mode; iptables: kube-proxy's rule layout for the same services "
          "(iptables-" + str(rep['meta'].get('iptables')) + "), the NodePort matched after every "
          "service rule as kube-proxy does; direct: the pod address routed, no load balancer.  "
          "Each service has a ClusterIP and an LB IP rule in KUBE-SERVICES for iptables, an LB IP "
          "frontend for bpflb; the target NodePort has 2 local backends.")
        a("")
        a("| services | direct p50 | bpflb p50 / p90 / p99 | bpflb, flow events off, p50 / p90 / p99 | "
          "iptables p50 / p90 / p99 | iptables / bpflb (p50) | added over direct: bpflb / events off / iptables | "
          "bpflb vs 1 service |")
        a("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for e in sc:
            b, q, i = e["bpflb"], e["bpflb-noev"], e["iptables"]
            a(f"| {e['services']:,} | {fmt(e['direct']['p50_us'])} | {fmt(b['p50_us'])} / {fmt(b['p90_us'])} / {fmt(b['p99_us'])} | "
              f"{fmt(q['p50_us'])} / {fmt(q['p90_us'])} / {fmt(q['p99_us'])} | "
              f"{fmt(i['p50_us'])} / {fmt(i['p90_us'])} / {fmt(i['p99_us'])} | {fx(e['iptables_over_bpflb_p50'])} | "
              f"{fmt(e['added_us']['bpflb'])} / {fmt(e['added_us']['bpflb-noev'])} / {fmt(e['added_us']['iptables'])} | "
              f"{fx(e['bpflb_vs_1_service'])} |")
        a("")
        a("(microseconds)  \"flow events off\": a second bpflbd with `[lb] events_per_sec = 1`, the "
          "rest identical: the difference to bpflb is what the flow events cost a new connection "
          "(the datapath writes one per new flow to a perf buffer that wakes bpflbd for every event).")
        a("")
        a("![connect latency](connect_latency.png)")
        a("")

    if tp:
        a("## 3. Throughput: iperf3 through a NodePort to a pod on another node")
        a("")
        a("| direction | variant | Gbit/s | CPU-s per GB (machine) | softirq-s per GB | retransmits | runs |")
        a("|---|---|---:|---:|---:|---:|---:|")
        for d in ("download", "upload"):
            for v, t in tp.get(d, {}).items():
                a(f"| {d} | {v} | {fmt(t['gbit_s'], 2)} | {fmt(t['cpu_s_per_gb'], 3)} | {fmt(t['softirq_s_per_gb'], 3)} | "
                  f"{fmt(t['retransmits'], 0)} | {t['runs']} |")
        a("")
        a("download: the server in the pod sends (iperf3 -R), the bulk is the replies; upload: the "
          "client sends.  direct: pod address routed through a node without load balancer, replies "
          "straight back (the hop count of DSR).")
        a("")
        a("How CPU is counted, and its limits: every namespace of the test cluster runs on the same "
          "kernel, so the CPU time of one node (the ingress node) cannot be told apart from the "
          "others' or from iperf3's own.  The busy time of the whole machine (user + system + irq + "
          "softirq from /proc/stat) is taken around each run and divided by the GB received; iperf3's "
          "share is the same in every variant, so differences between variants are the cost of their "
          "paths.  veth pairs hand 64 KB GSO segments from namespace to namespace, so per-packet costs "
          "(BPF or netfilter) are paid once per 64 KB and weigh little next to copying the data; on real "
          "NICs with 1500-byte frames they weigh far more.  What DSR saves on a real ingress node (the "
          "replies never cross it) shows here only as one hop less for the replies.")
        a("")
        a("![throughput](throughput.png)")
        a("")

    ct = rep.get("control")
    if ct or sc:
        a("## 4. Control plane")
        a("")
    if sc:
        a("bpflbd itself (daemon in the scale cluster, timestamps of its log lines): start from scratch "
          "(no pins) to \"running\", SIGHUP reloads to \"reload done\" with a TCP and a UDP probe opening "
          "new flows through the NodePort the whole time (2000/s each), RSS from /proc/PID/status.")
        a("")
        a("| services | start s | iptables-restore s | reload (same file) s | reload (one service changed) s | "
          "RSS after start MB | RSS after reloads MB | probes lost (tcp+udp) / sent |")
        a("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for e in sc:
            bd = e["bpflbd"]
            lost = (bd["probe_tcp"].get("failures") or 0) + (bd["probe_udp"].get("failures") or 0)
            sent = (bd["probe_tcp"].get("attempts") or 0) + (bd["probe_udp"].get("attempts") or 0)
            a(f"| {e['services']:,} | {fmt(bd['start_s'], 3)} | {fmt(e['iptables_rules']['load_s'], 3)} | "
              f"{fmt(bd['reload_s'], 3)} | {fmt(bd['one_change_reload_s'], 3)} | {fmt(bd['rss_mb_start'], 1)} | "
              f"{fmt(bd['rss_mb_after_reloads'], 1)} | {lost} / {sent:,} |")
        a("")
    if ct and ct.get("services"):
        a("In-process breakdown (bench/ctrl_bench: the core's bpflb_config_load, bpflb_services_validate and "
          "bpflb_services_apply on a real pinned map set; reload = the three on the same file, change = "
          "one service differs; medians of the rounds):")
        a("")
        a("| services | parse ms | validate ms | first apply ms | reload ms (parse+validate+apply) | "
          "one change: apply ms, change-only / whole | 1% change: total ms (apply ms), change-only / whole | "
          "`service set` ms, change-only / whole | map writes (first / reload / change) | "
          "heap MB config / model and state | RSS MB after load / after reloads (config freed, trimmed) |")
        a("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in ct["services"]:
            a(f"| {r['services']:,} | {fmt(r['load_ms'])} | {fmt(r['validate_ms'])} | {fmt(r['apply_ms'])} | "
              f"{fmt(r['reload_ms'])} ({fmt(r['reload_parse_ms'])}+{fmt(r['reload_validate_ms'])}+{fmt(r['reload_apply_ms'])}) | "
              f"{fmt(r.get('change_apply_ms'))} / {fmt(r.get('change_whole_apply_ms'))} | "
              f"{fmt(r.get('change_1pct_ms'))} ({fmt(r.get('change_1pct_apply_ms'))}) / "
              f"{fmt(r.get('change_1pct_whole_ms'))} ({fmt(r.get('change_1pct_whole_apply_ms'))}) | "
              f"{fmt(r.get('runtime_set_ms'))} / {fmt(r.get('runtime_set_whole_ms'))} | "
              f"{r['first_map_writes']:,} / {r['reload_map_writes']:,} / {r.get('change_map_writes', '-')} | "
              f"{fmt(r['heap_mb']['config'])} / {fmt(r['heap_mb'].get('model_and_state'))} | "
              f"{fmt(r.get('rss_mb_loaded'))} / {fmt(r.get('rss_mb_after_reloads'))} |")
        a("")
    if ct and ct.get("maglev"):
        mg = ct["maglev"]
        a(f"Maglev table build (bpflb_maglev_build, M = {mg['m']:,}, median of {mg['rounds']}): " +
          ", ".join(f"{b['backends']:,} backends {b['ms']:.2f} ms" for b in mg["builds"]) + ".")
        a("")
    notes = rep.get("notes") or []
    if notes:
        a("## Notes")
        a("")
        for n in notes:
            a(f"- {n}")
        a("")
    return "\n".join(L) + "\n"


# --- plots ----------------------------------------------------------------------------


def plots(rep, out):
    if not shutil.which("gnuplot"):
        return []
    made = []
    tmp = os.path.join(out, ".plot")
    os.makedirs(tmp, exist_ok=True)
    sc = rep.get("scale") or []
    if sc:
        with open(os.path.join(tmp, "lat.dat"), "w") as f:
            f.write("# services direct_p50 direct_p90 bpflb_p50 bpflb_p90 iptables_p50 iptables_p90 noev_p50 noev_p90\n")
            for e in sc:
                f.write(f"{e['services']} {e['direct']['p50_us']} {e['direct']['p90_us']} {e['bpflb']['p50_us']} "
                        f"{e['bpflb']['p90_us']} {e['iptables']['p50_us']} {e['iptables']['p90_us']} "
                        f"{e['bpflb-noev']['p50_us']} {e['bpflb-noev']['p90_us']}\n")
        gp = f"""set terminal pngcairo size 900,560 noenhanced
set output '{out}/connect_latency.png'
set title 'TCP connect latency through a NodePort vs number of services'
set xlabel 'services'
set ylabel 'connect() time, microseconds (p50, bars to p90)'
set logscale x
set logscale y
set grid
set key top left
set xrange [0.5:{max(e['services'] for e in sc) * 2}]
plot '{tmp}/lat.dat' u 1:6:6:7 w yerrorlines lw 2 t 'iptables (kube-proxy rules)', \\
     '' u 1:4:4:5 w yerrorlines lw 2 t 'bpflb', \\
     '' u 1:8:8:9 w yerrorlines lw 2 dt 4 t 'bpflb, flow events off', \\
     '' u 1:2:2:3 w yerrorlines lw 2 dt 2 t 'direct (no load balancer)'
"""
        if run_gp(gp):
            made.append("connect_latency.png")
    p = rep.get("prog_cost")
    if p:
        cs = [c for c in p["cases"] if "median_ns" in c]
        with open(os.path.join(tmp, "prog.dat"), "w") as f:
            for c in cs:
                f.write(f"\"{c['name']}\" {c['median_ns']} {max(c['minus_floor_ns'], 0)}\n")
        gp = f"""set terminal pngcairo size 1000,560 noenhanced
set output '{out}/prog_cost.png'
set title 'Per-packet cost, BPF_PROG_TEST_RUN repeat=1, median ns per call'
set bmargin 8
set rmargin 8
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -40 scale 0
set ylabel 'ns'
set grid ytics
set key top left
plot '{tmp}/prog.dat' u 2:xtic(1) t 'measured', '' u 3 t 'minus floor (empty program)'
"""
        if run_gp(gp):
            made.append("prog_cost.png")
    tp = rep.get("throughput") or {}
    if tp:
        with open(os.path.join(tmp, "tp.dat"), "w") as f:
            for d in ("download", "upload"):
                for v, t in tp.get(d, {}).items():
                    f.write(f"\"{d} {v}\" {t['gbit_s']} {t['cpu_s_per_gb']}\n")
        gp = f"""set terminal pngcairo size 1000,560 noenhanced
set output '{out}/throughput.png'
set title 'iperf3 through a NodePort to a remote pod (medians)'
set bmargin 8
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30 scale 0
set ylabel 'Gbit/s'
set y2label 'CPU-seconds per GB (whole machine)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set offsets 0, 0, graph 0.15, 0
set grid ytics
set key top center horizontal
plot '{tmp}/tp.dat' u 2:xtic(1) t 'Gbit/s' axes x1y1, '' u 3 t 'CPU-s/GB' axes x1y2
"""
        if run_gp(gp):
            made.append("throughput.png")
    shutil.rmtree(tmp, ignore_errors=True)
    return made


def run_gp(script):
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode:
        sys.stderr.write("report: gnuplot failed: " + r.stderr)
    return r.returncode == 0


def main():
    raw, out, meta = sys.argv[1], sys.argv[2], sys.argv[3]
    rep = {"meta": {"command": "?", "date": "?", "mode": "?",
                    "machine": {"nproc": "?", "cpu": "?", "mem_gb": "?", "kernel": "?"}}}
    rep["meta"].update(load_json(meta) or {})
    rep["prog_cost"] = prog_part(raw)
    rep["scale"] = scale_part(raw)
    rep["throughput"] = throughput_part(raw)
    rep["control"] = control_part(raw)
    rep["goals"] = goals(rep)
    rep["notes"] = rep["meta"].pop("notes", [])
    rep = {k: v for k, v in rep.items() if v is not None}
    os.makedirs(out, exist_ok=True)
    rep["plots"] = plots(rep, out)
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(md(rep))
    print(os.path.join(out, "latest.md"))


if __name__ == "__main__":
    main()
