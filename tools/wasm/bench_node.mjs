// Decode tokens/s of a model file under node, as JSON:
//   node --no-experimental-fetch tools/wasm/bench_node.mjs build-wasm/web MODEL.t2r [scalar|wasm-simd128]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeTokensPerSecond } from './decode_bench.mjs';

const [webDir, modelPath, kernels] = process.argv.slice(2);
if (!webDir || !modelPath) {
  console.error('usage: bench_node.mjs WEB_DIR MODEL.t2r [KERNEL_PATH]');
  process.exit(2);
}
const { createT2r } = await import(pathToFileURL(join(resolve(webDir), 't2r.mjs')));
const t2r = await createT2r();
console.log(JSON.stringify(await decodeTokensPerSecond(t2r, readFileSync(modelPath), { kernels })));
