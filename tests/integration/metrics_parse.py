#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Parse a whole /metrics exposition with Prometheus' own Python parser.

Usage: metrics_parse.py FILE [REQUIRED_FAMILY...]
Fails (exit 1, one line per problem) on a family the parser reads as untyped
("unknown"), a family without samples, a family name seen twice, a text the
parser refuses, or a REQUIRED_FAMILY that is missing.  Prints the families
and their sample counts otherwise.
"""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
problems, seen = [], {}
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser's ValueError names the bad line
    print(f"FAIL: the parser refuses the text: {e}")
    sys.exit(1)
for fam in families:
    if fam.name in seen:
        problems.append(f"family {fam.name} appears twice")
    seen[fam.name] = len(fam.samples)
    if fam.type in ("unknown", "untyped"):
        problems.append(f"family {fam.name} is untyped (samples without their # TYPE line?)")
    if not fam.samples:
        problems.append(f"family {fam.name} ({fam.type}) has no samples")
for want in sys.argv[2:]:
    # the parser names a counter family without its _total suffix
    if want not in seen and want.removesuffix("_total") not in seen:
        problems.append(f"family {want} is missing")
for p in problems:
    print("FAIL:", p)
if problems:
    sys.exit(1)
for name, n in seen.items():
    print(f"{name} {n}")
