// Decode speed in the JavaScript module, measured as t2r-bench measures it natively: one session,
// one token at a time, the fastest of `repeat` runs of `tokens` steps, each after 8 steps of
// warm-up. Used by bench_node.mjs (node) and bench.html (the browser).
export async function decodeTokensPerSecond(t2r, source, { tokens = 64, repeat = 3, kernels } = {}) {
  if (kernels) t2r.kernelPath = kernels;
  const model = await t2r.loadModel(source);
  const session = model.createSession();
  const vocab = model.info.vocabSize;
  let best = 0;
  for (let run = 0; run < repeat; ++run) {
    session.reset();
    for (let i = 0; i < 8; ++i) session.step((i * 7919) % vocab);
    const start = performance.now();
    for (let i = 0; i < tokens; ++i) session.step((i * 104729) % vocab);
    best = Math.max(best, tokens / ((performance.now() - start) / 1000));
  }
  const result = { tokensPerSecond: best, kernelPath: t2r.kernelPath, sessionBytes: session.bytes,
                   memoryBytes: t2r.memoryBytes };
  session.free();
  model.free();
  return result;
}
