#!/usr/bin/env python3
"""Writes the mixed benchmark text of t2r-tokbench: paragraphs of English and Spanish prose
(../shared/models/mt-data, else /usr/share/common-licenses), C++ source of this repository,
the tokenizer test texts (CJK, emoji, combining marks, contractions, whitespace runs), and long
digit runs, shuffled with a fixed seed until SIZE_MB megabytes (10^6 bytes).
Usage: tools/tokbench/make_text.py OUT SIZE_MB"""
import glob
import json
import os
import random
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
out_path, size_mb = sys.argv[1], float(sys.argv[2])
rng = random.Random(13)

prose = []
mt = os.path.join(root, "../shared/models/mt-data")
sources = glob.glob(os.path.join(mt, "test.*")) or glob.glob("/usr/share/common-licenses/*")
for path in sorted(sources):
    if os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            prose += [p for p in f.read().split("\n") if p.strip()]
code = []
for path in sorted(glob.glob(os.path.join(root, "runtime/*.cpp")) + glob.glob(os.path.join(root, "tools/*/*.cpp"))):
    with open(path, encoding="utf-8") as f:
        code += f.read().split("\n\n")
with open(os.path.join(root, "tests/tokenizer_oracles/cases.json")) as f:
    cases = [bytes.fromhex(c["hex"]).decode("utf-8") for c in json.load(f) if not c.get("invalid_utf8")]

parts, size, limit = [], 0, int(size_mb * 1e6)
while size < limit:
    r = rng.random()
    if r < 0.55:
        p = rng.choice(prose) + "\n"
    elif r < 0.85:
        p = rng.choice(code) + "\n\n"
    elif r < 0.97:
        p = rng.choice(cases) + " "
    else:
        p = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 80))) + " "
    parts.append(p)
    size += len(p.encode("utf-8"))
text = "".join(parts).encode("utf-8")[:limit]
with open(out_path, "wb") as f:
    f.write(text.decode("utf-8", errors="ignore").encode("utf-8"))
