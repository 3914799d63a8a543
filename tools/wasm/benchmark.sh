#!/usr/bin/env bash
# Decode tokens/s of the shipped model and of a synthetic GPT-2-small-sized T2R model (bf16), one
# thread, natively (scalar and the best SIMD path, t2r-bench) and in the JavaScript module under node
# and in headless Chromium (wasm-simd128 and scalar), interleaved round after round so that a busy
# neighbour slows every variant alike. Needs build-test/ and build-wasm/ (t2r-web) built. Prints a
# Markdown table of the fastest of each variant over the rounds.
#   tools/wasm/benchmark.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
web=build-wasm/web
cp tools/wasm/bench.html tools/wasm/decode_bench.mjs "$web/"
[ -f "$web/gpt2-small.t2r" ] || build-test/t2r-bench --model gpt2-small --attention t2r --dtype bf16 --write-model "$web/gpt2-small.t2r"
results=$(mktemp)

native() {  # MODEL KERNELS: decode tok/s from t2r-bench
  T2R_CPU=$2 build-test/t2r-bench --model "$1" --threads 1 --tokens 64 --prompt 16 --repeat 3 --contexts none --out "$results.d" \
    2>/dev/null | awk -v m="$1" '$1 == m { print $3 }'
}
json_rate() { /usr/bin/python3 -c 'import json, sys; print(round(json.loads(sys.stdin.read().splitlines()[0])["tokensPerSecond"], 1))'; }

for round in $(seq "$rounds"); do
  for model in default.t2r gpt2-small.t2r; do
    for kernels in scalar best; do
      cpu=$([ "$kernels" = best ] && echo "" || echo scalar)  # T2R_CPU empty: the best path
      echo "$model native-$kernels $(native "$web/$model" "$cpu")" >> "$results"
      wasm=$([ "$kernels" = best ] && echo wasm-simd128 || echo scalar)
      echo "$model node-$kernels $(node --no-experimental-fetch tools/wasm/bench_node.mjs "$web" "$web/$model" "$wasm" | json_rate)" >> "$results"
      echo "$model chromium-$kernels $(/usr/bin/python3 tools/wasm/browser_check.py "$web" --page bench.html --timeout 600 \
        --param model="$model" --param kernels="$wasm" | json_rate)" >> "$results"
    done
  done
  echo "round $round done" >&2
done

/usr/bin/python3 - "$results" <<'PY'
import collections, sys
best = collections.defaultdict(float)
for line in open(sys.argv[1]):
    model, variant, rate = line.split()
    best[model, variant] = max(best[model, variant], float(rate))
print("| model | native scalar | native SIMD | node scalar | node wasm-simd128 | Chromium scalar | Chromium wasm-simd128 |")
print("|---|---|---|---|---|---|---|")
for model in ("default.t2r", "gpt2-small.t2r"):
    cells = [best[model, f"{where}-{k}"] for where in ("native", "node", "chromium") for k in ("scalar", "best")]
    print(f"| {model} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")
PY
rm -rf "$results" "$results.d"
