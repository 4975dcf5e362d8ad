#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""
Generators of the service sets the benchmarks compare, the same N services for
both load balancers:

  gen.py bpflb N [--target-backends A,B] [--filler-backends K] [--change I] [--udp]
      [service NAME] sections for bpflbd: N-1 filler LoadBalancer services
      (LB IP 172.16.0.0/12 + i, port 80, K fake endpoints each in 100.64.0.0/10)
      and the target NodePort service "target" (port 30080 -> 8080) with the
      given backends (node=node1, or --node NAME).  --change I gives filler I a different
      endpoint (a one-service change, for reload benchmarks); --change-every K does so
      for every K-th filler (K=100: 1% of the services).  --udp adds UDP
      NodePort 30080 -> 8080 to the target (a UDP probe during reloads).

  gen.py iptables N [--target-backends A,B] [--filler-backends K] [--node-ip IP]
      The same services as kube-proxy (iptables mode, v1.28 layout) writes
      them, for iptables-restore: KUBE-SERVICES holds a cluster IP rule and a
      load balancer IP rule per service and, last, the addrtype LOCAL jump to
      KUBE-NODEPORTS, so a NodePort packet walks every service rule first (the
      same in real kube-proxy: NodePorts are matched after every service IP);
      KUBE-EXT-* marks for masquerade and jumps to KUBE-SVC-*, which picks an
      endpoint with -m statistic --mode random and jumps to KUBE-SEP-*, which
      DNATs; KUBE-POSTROUTING masquerades marked packets; the filter table has
      kube-proxy's forwarding chains.

The target service is in both sets, so the NodePort the client connects to has
the same backends either way.
"""
import argparse
import hashlib
import ipaddress
import sys

FILLER_LB = int(ipaddress.IPv4Address("172.16.0.0"))
FILLER_CIP = int(ipaddress.IPv4Address("10.96.0.0"))
FILLER_EP = int(ipaddress.IPv4Address("100.64.0.0"))  # 100.64.0.0/10: room for 4M fake endpoints
NODEPORT = 30080
PORT = 80
TARGET_PORT = 8080


def ip(n):
    return str(ipaddress.IPv4Address(n))


def chain(prefix, name):
    # kube-proxy: prefix + first 16 chars of base32(sha256(...)); hex is enough here.
    return prefix + hashlib.sha256(name.encode()).hexdigest()[:16].upper()


def filler_endpoints(i, k, change, every=None):
    base = FILLER_EP + i * k + 1
    eps = [ip(base + j) for j in range(k)]
    if change is not None and i == change:
        eps[0] = "10.246.0.1"
    if every and i % every == 0:
        eps[0] = ip(int(ipaddress.IPv4Address("10.247.0.0")) + i)
    return eps


def bpflb(args, out):
    w = out.write
    for i in range(1, args.n):
        w(f"[service s{i}]\ntype = loadbalancer\nport = http tcp {PORT} target={TARGET_PORT}\n")
        w(f"lb_ips = {ip(FILLER_LB + i)}\n")
        for ep in filler_endpoints(i, args.filler_backends, args.change, args.change_every):
            w(f"backend = {ep} node={args.node}\n")
        w("\n")
    w(f"[service target]\ntype = nodeport\n"
      f"port = http tcp {PORT} nodeport={NODEPORT} target={TARGET_PORT}\n")
    if args.udp:
        w(f"port = probe udp {PORT} nodeport={NODEPORT} target={TARGET_PORT}\n")
    for b in args.target_backends:
        w(f"backend = {b} node={args.node}\n")


def iptables(args, out):
    nat_chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    svc_rules = []
    per_svc = []

    def service(name, cip, lbip, eps, nodeport):
        svc = chain("KUBE-SVC-", name)
        ext = chain("KUBE-EXT-", name)
        nat_chains.extend([svc, ext])
        rules = []
        svc_rules.append(f'-A KUBE-SERVICES -d {cip}/32 -p tcp -m comment --comment "{name}:http cluster IP" -m tcp --dport {PORT} -j {svc}')
        if lbip:
            svc_rules.append(f'-A KUBE-SERVICES -d {lbip}/32 -p tcp -m comment --comment "{name}:http loadbalancer IP" -m tcp --dport {PORT} -j {ext}')
        if nodeport:
            rules.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{name}:http" -m tcp --dport {nodeport} -j {ext}')
        rules.append(f'-A {ext} -m comment --comment "masquerade traffic for {name}:http external destinations" -j KUBE-MARK-MASQ')
        rules.append(f'-A {ext} -j {svc}')
        rules.append(f'-A {svc} ! -s 10.244.0.0/16 -d {cip}/32 -p tcp -m comment --comment "{name}:http cluster IP" -m tcp --dport {PORT} -j KUBE-MARK-MASQ')
        n = len(eps)
        for j, ep in enumerate(eps):
            sep = chain("KUBE-SEP-", f"{name}:{ep}")
            nat_chains.append(sep)
            if j < n - 1:
                rules.append(f'-A {svc} -m comment --comment "{name}:http -> {ep}:{TARGET_PORT}" -m statistic --mode random --probability {1.0 / (n - j):.11f} -j {sep}')
            else:
                rules.append(f'-A {svc} -m comment --comment "{name}:http -> {ep}:{TARGET_PORT}" -j {sep}')
            rules.append(f'-A {sep} -s {ep}/32 -m comment --comment "{name}:http" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep} -p tcp -m comment --comment "{name}:http" -m tcp -j DNAT --to-destination {ep}:{TARGET_PORT}')
        per_svc.append("\n".join(rules))

    for i in range(1, args.n):
        service(f"default/s{i}", ip(FILLER_CIP + i), ip(FILLER_LB + i),
                filler_endpoints(i, args.filler_backends, None), None)
    service("default/target", ip(FILLER_CIP + (1 << 20) - 2), None, args.target_backends, NODEPORT)

    w = out.write
    w("*filter\n")
    for c in ["KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-NODEPORTS",
              "KUBE-PROXY-FIREWALL", "KUBE-SERVICES", "KUBE-PROXY-CANARY"]:
        w(f":{c} - [0:0]\n")
    w('-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL\n'
      '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS\n'
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES\n'
      '-A INPUT -j KUBE-FIREWALL\n'
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL\n'
      '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n'
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES\n'
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL\n'
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
      '-A OUTPUT -j KUBE-FIREWALL\n'
      '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n'
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n'
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT\n'
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n'
      "COMMIT\n")
    w("*nat\n")
    for c in nat_chains:
        w(f":{c} - [0:0]\n")
    w('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
      '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING\n'
      "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
      "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
      "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully\n')
    for r in svc_rules:
        w(r + "\n")
    w('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n')
    for r in per_svc:
        w(r + "\n")
    w("COMMIT\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["bpflb", "iptables"])
    p.add_argument("n", type=int)
    p.add_argument("--target-backends", default="10.244.1.2")
    p.add_argument("--filler-backends", type=int, default=1)
    p.add_argument("--change", type=int)
    p.add_argument("--change-every", type=int,
                   help="every K-th filler gets another endpoint (100: 1%% of the services change)")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--node", default="node1", help="node of every backend (bpflb)")
    a = p.parse_args()
    a.target_backends = a.target_backends.split(",")
    if a.n < 1:
        p.error("N must be at least 1")
    (bpflb if a.kind == "bpflb" else iptables)(a, sys.stdout)


if __name__ == "__main__":
    main()
