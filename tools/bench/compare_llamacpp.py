#!/usr/bin/python3
"""t2r against llama.cpp in the same run: decode and prompt tokens/s per dtype and thread count,
t2r-bench on its synthetic model and llama-bench on a synthetic GGUF of the same shape, the two
interleaved round after round (shared machines drift within minutes), the fastest of each kept.

usage: compare_llamacpp.py --llama-cpp DIR [--make-gguf PATH] [--t2r-bench PATH] [--model SHAPE]
                           [--attention t2r,...] [--dtypes f32,f16,bf16,q8_0,q4_0] [--threads 1,2]
                           [--rounds 2] [--repeat 3] [--tokens 64] [--prompt 512] [--contexts 0]
                           [--llama-depths 0] [--out DIR]

DIR is a llama.cpp tree built with llama-bench and llama-quantize (../shared/anchors/llamacpp/build.sh
DIR); --make-gguf is the synthetic-GGUF writer beside it (make_gguf.py, run with DIR/gguf-py). SHAPE is
gpt2-small (t2r-bench's gpt2-small, make_gguf's gpt2-small: vocab 32000, d 768, 12 layers, ffn 2048,
untied), llama3.1-8b (make_gguf's llama3-8b) or mistral-7b; --attention lists t2r-bench's (t2r, softmax,
lolcats, supra, liger), each measured beside one llama.cpp run of the plain softmax model of that shape. Every matrix is
quantized to the dtype (llama-quantize --pure), as t2r-pack does. t2r decodes at each of --contexts
from a filled state of that length (t2r-bench's context sweep); llama.cpp at each of --llama-depths
(llama-bench -d, which prefills that many tokens first: hours at 8B on 2 cores beyond a few
thousand). Writes OUT/comparison.{csv,json,md}; the GGUFs and t2r models are kept in OUT for the
next run.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

GGUF_SHAPES = {"gpt2-small": "gpt2-small", "llama3.1-8b": "llama3-8b", "mistral-7b": "mistral-7b"}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def gguf_for(args, dtype):
    shape = GGUF_SHAPES[args.model]
    path = os.path.join(args.out, f"{shape}-{dtype}.gguf")
    if os.path.exists(path):
        return path
    env = dict(os.environ, PYTHONPATH=os.path.join(args.llama_cpp, "gguf-py"))
    base = os.path.join(args.out, f"{shape}-{'f32' if dtype in ('f32', 'bf16') else 'f16'}.gguf")
    if not os.path.exists(base):
        run([sys.executable, args.make_gguf, base + ".tmp", "f32" if base.endswith("f32.gguf") else "f16",
             "untied", shape], env=env)
        os.replace(base + ".tmp", base)
    if base != path:
        quantize = os.path.join(args.llama_cpp, "build", "bin", "llama-quantize")
        run([quantize, "--pure", base, path + ".tmp", dtype.upper() if dtype == "bf16" else dtype])
        os.replace(path + ".tmp", path)
    return path


def llama_bench(args, gguf, threads, prompt, gen, depth):
    binary = os.path.join(args.llama_cpp, "build", "bin", "llama-bench")
    out = run([binary, "-m", gguf, "-p", str(prompt), "-n", str(gen), "-d", str(depth), "-t", str(threads),
               "-r", str(args.repeat), "-o", "json"])
    return max(r["avg_ts"] for r in json.loads(out))


def t2r_model_for(args, attention, dtype):
    path = os.path.join(args.out, f"{args.model}-{attention}-{dtype}.t2r")
    if not os.path.exists(path):
        run([args.t2r_bench, "--model", args.model, "--attention", attention, "--dtype", dtype,
             "--write-model", path + ".tmp"])
        os.replace(path + ".tmp", path)
    return path


def t2r_bench(args, model, threads, contexts):
    """Decode tok/s at context 0 and at each context > 0, prompt tok/s, and session bytes at each context."""
    with tempfile.TemporaryDirectory() as out:
        sweep = [c for c in contexts if c > 0]
        cmd = [args.t2r_bench, "--model", model, "--threads", str(threads), "--tokens", str(args.tokens),
               "--prompt", str(args.prompt), "--repeat", str(args.repeat), "--out", out,
               "--contexts", ",".join(map(str, sweep)) if sweep else "none"]
        run(cmd)
        with open(os.path.join(out, "results.json")) as f:
            rows = json.load(f)["results"]
    speed = next(r for r in rows if r["section"] == "speed")
    swept = [r for r in rows if r["section"] == "context"]
    at = {r["context"]: r["decode_tok_s"] for r in swept}
    at[0] = speed["decode_tok_s"]
    session_bytes = {r["context"]: r["session_bytes"] for r in swept}
    session_bytes[0] = speed["session_bytes"]
    return at, speed["prompt_tok_s"], session_bytes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--llama-cpp", required=True)
    p.add_argument("--make-gguf", default=os.path.join(here, "..", "..", "..", "shared", "anchors", "llamacpp",
                                                       "make_gguf.py"))
    p.add_argument("--t2r-bench", default=os.path.join(here, "..", "..", "build", "t2r-bench"))
    p.add_argument("--model", default="gpt2-small", choices=sorted(GGUF_SHAPES))
    p.add_argument("--attention", default="t2r")
    p.add_argument("--dtypes", default="f32,f16,bf16,q8_0,q4_0")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement, the fastest kept (both tools)")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--contexts", default="0", help="contexts at which t2r decodes (from a filled state)")
    p.add_argument("--llama-depths", default="0", help="contexts at which llama.cpp decodes (llama-bench -d)")
    p.add_argument("--out", default="bench-results/llamacpp")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    dtypes, threads = args.dtypes.split(","), [int(t) for t in args.threads.split(",")]
    contexts = [int(c) for c in args.contexts.split(",")]
    depths = [int(d) for d in args.llama_depths.split(",")]
    ggufs = {d: gguf_for(args, d) for d in dtypes}
    attentions = args.attention.split(",")
    models = {(a, d): t2r_model_for(args, a, d) for a in attentions for d in dtypes}

    best = {}  # (attention, dtype, threads) -> fastest values; llama.cpp's are the same for every attention
    for round_ in range(args.rounds):
        for dtype in dtypes:
            for t in threads:
                llama = best.setdefault(("llama.cpp", dtype, t), {"decode": {}, "prompt": 0})
                for a in attentions:
                    b = best.setdefault((a, dtype, t), {"decode": {}, "prompt": 0})
                    at, prompt, b["session_bytes"] = t2r_bench(args, models[(a, dtype)], t, contexts)
                    for c, v in at.items():
                        b["decode"][c] = max(b["decode"].get(c, 0), v)
                    b["prompt"] = max(b["prompt"], prompt)
                    print(f"round {round_ + 1}: {a} {dtype} {t} thread(s): t2r {at[0]:.1f} decode tok/s", file=sys.stderr)
                for d in depths:
                    llama["decode"][d] = max(llama["decode"].get(d, 0), llama_bench(args, ggufs[dtype], t, 0, args.tokens, d))
                if args.prompt > 0:
                    llama["prompt"] = max(llama["prompt"], llama_bench(args, ggufs[dtype], t, args.prompt, 0, 0))
                print(f"round {round_ + 1}: llama.cpp {dtype} {t} thread(s): {llama['decode'][depths[0]]:.1f} decode tok/s "
                      "(best so far)", file=sys.stderr)

    rows = []
    for (a, dtype, t), b in best.items():
        if a == "llama.cpp":
            continue
        llama = best[("llama.cpp", dtype, t)]
        for c in sorted(set(contexts) | set(depths)):
            t2r, peer = b["decode"].get(c), llama["decode"].get(c)
            rows.append({"model": args.model, "attention": a, "dtype": dtype, "threads": t, "context": c,
                         "t2r_decode_tok_s": t2r and round(t2r, 2), "llamacpp_decode_tok_s": peer and round(peer, 2),
                         "decode_ratio": round(t2r / peer, 3) if t2r and peer else None,
                         "t2r_prompt_tok_s": round(b["prompt"], 1) if c == 0 else None,
                         "llamacpp_prompt_tok_s": round(llama["prompt"], 1) if c == 0 and llama["prompt"] else None,
                         "prompt_ratio": round(b["prompt"] / llama["prompt"], 3) if c == 0 and llama["prompt"] else None,
                         "t2r_session_bytes": b["session_bytes"].get(c)})
    with open(os.path.join(args.out, "comparison.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out, "comparison.csv"), "w") as f:
        f.write(",".join(rows[0].keys()) + "\n")
        for r in rows:
            f.write(",".join("" if v is None else str(v) for v in r.values()) + "\n")
    cell = lambda v, fmt: "" if v is None else format(v, fmt)
    lines = ["| attention | dtype | threads | context | t2r decode | llama.cpp decode | ratio | t2r prompt | "
             "llama.cpp prompt | ratio | t2r session bytes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['attention']} | {r['dtype']} | {r['threads']} | {r['context']} | "
                     f"{cell(r['t2r_decode_tok_s'], ',.1f')} | "
                     f"{cell(r['llamacpp_decode_tok_s'], ',.1f')} | {cell(r['decode_ratio'], '.2f')} | "
                     f"{cell(r['t2r_prompt_tok_s'], ',.1f')} | {cell(r['llamacpp_prompt_tok_s'], ',.1f')} | "
                     f"{cell(r['prompt_ratio'], '.2f')} | {cell(r['t2r_session_bytes'], ',')} |")
    table = "\n".join(lines)
    with open(os.path.join(args.out, "comparison.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
