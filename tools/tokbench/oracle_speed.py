#!/usr/bin/env python3
"""Encoding speed of the SentencePiece library (Debian python3-sentencepiece, C++ underneath)
on the benchmark text, one thread: oracle_speed.py TEXT MODEL... Prints MB/s (10^6 bytes)
on the first 1 MB and on the whole text, like t2r-tokbench (best of 3)."""
import sys
import time

import sentencepiece as spm

text = open(sys.argv[1], "rb").read()
for model in sys.argv[2:]:
    sp = spm.SentencePieceProcessor(model_file=model, num_threads=1)

    def rate(t):
        best = 1e30
        for _ in range(3):
            start = time.perf_counter()
            sp.encode(t)
            best = min(best, time.perf_counter() - start)
        return len(t) / 1e6 / best

    print(f"{model[-44:]:44} sentencepiece          {rate(text[:1000000]):10.2f} {rate(text):12.2f}")
