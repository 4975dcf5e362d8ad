#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""churn: short TCP connections, one after the other, as fast as allowed.

    churn.py HOST PORT [--count N] [--seconds S] [--rate R] [--timeout MS]

Each connection connects, reads the one line peerd sends (tests/tools/peerd.c),
and closes; no connection overlaps the next.  Stops after N connections or S
seconds, whichever comes first (one of them is required).  --rate caps the
connections per second (0: no cap).  A connect that takes longer than 900 ms
means the first SYN was lost (the kernel retries after 1 s): it is counted as
"retried", e.g. a SYN the load balancer dropped for want of a SNAT port.

Prints one line:  conns=N ok=N failed=N retried=N seconds=S rate=R
and the first few failures.  Exit status 0 when every connection succeeded
and none was retried, 1 otherwise.
"""
import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--timeout", type=int, default=3000)
    a = ap.parse_args()
    if not a.count and not a.seconds:
        ap.error("--count or --seconds is required")

    ok = failed = retried = n = 0
    errors = []
    start = time.monotonic()
    while True:
        now = time.monotonic()
        if (a.count and n >= a.count) or (a.seconds and now - start >= a.seconds):
            break
        if a.rate and n >= (now - start) * a.rate:
            time.sleep(1.0 / a.rate)
            continue
        n += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(a.timeout / 1000.0)
        t0 = time.monotonic()
        try:
            s.connect((a.host, a.port))
            if time.monotonic() - t0 > 0.9:
                retried += 1
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    raise OSError("closed before the greeting line")
                line += chunk
            ok += 1
        except OSError as e:
            failed += 1
            if len(errors) < 5:
                errors.append("conn %d: %s" % (n, e))
        finally:
            s.close()
    secs = time.monotonic() - start
    print("conns=%d ok=%d failed=%d retried=%d seconds=%.1f rate=%.0f"
          % (n, ok, failed, retried, secs, n / secs if secs else 0))
    for e in errors:
        print("  " + e)
    return 0 if failed == 0 and retried == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
