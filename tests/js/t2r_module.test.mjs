// The JavaScript module (bindings/js/t2r.mjs) under node, against the native build: the same ids,
// the same greedy text, logits within 1e-4 on both WebAssembly kernel paths; streaming, stopping,
// sampling, state save/restore and errors. Run by .ci/run:
//   T2R_WEB_DIR=build-wasm/web T2R_RUN=build-test/t2r-run T2R_REFERENCE_MODELS=../shared/models \
//       node --no-experimental-fetch --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const webDir = resolve(process.env.T2R_WEB_DIR || 'build-wasm/web');
const nativeRun = resolve(process.env.T2R_RUN || 'build-test/t2r-run');
const modelPath = join(webDir, 'default.t2r');
const { createT2r, T2rError } = await import(pathToFileURL(join(webDir, 't2r.mjs')));

const native = (...args) => execFileSync(nativeRun, [modelPath, ...args], { encoding: 'utf8' });
const t2r = await createT2r();
const model = await t2r.loadModel(readFileSync(modelPath));
const prompt = 'In the beginning God created';

test('the model info is the native one', () => {
  assert.equal(model.info.architecture, 'llama');
  assert.equal(model.info.attention, 't2r');
  assert.equal(model.info.vocabSize, 8192);
  assert.equal(model.info.fileBytes, readFileSync(modelPath).length);
  assert.match(native('--info'), new RegExp(`parameters +${(model.info.parameters / 1e6).toFixed(2)}M`));
});

test('tokenize gives the native ids and detokenize the text back', () => {
  const text = 'Héllo, wörld! In the beginning <|endoftext|> was the Word.';
  const ids = model.tokenize(text);
  assert.deepEqual(ids, native('--tokenize', text).trim().split(',').map(Number));
  assert.equal(model.detokenize(ids), text);
  assert.notDeepEqual(model.tokenize(text, { specialAsText: true }), ids);
});

test('greedy generation is the native text, streamed piece by piece', async () => {
  const session = model.createSession();
  const pieces = [];
  const result = await session.generate(prompt, { maxTokens: 40, onToken: (text) => pieces.push(text) });
  assert.equal(result.ids.length, 40);
  assert.equal(prompt + result.text + '\n', native('-p', prompt, '-n', '40'));
  assert.equal(pieces.join(''), result.text);
  assert.ok(result.tokensPerSecond > 0);
  assert.equal(session.position, model.tokenize(prompt).length + 40);
  session.free();
});

test('greedy continuations are the reference ones (llama-t2r, which the shipped model packs)', async (t) => {
  const references = process.env.T2R_REFERENCE_MODELS;
  if (!references) return t.skip('T2R_REFERENCE_MODELS is not set');
  const { greedy } = JSON.parse(readFileSync(join(references, 'llama-t2r', 'reference.json'), 'utf8'));
  assert.equal(Object.keys(greedy).length, 3);
  for (const [text, expected] of Object.entries(greedy)) {
    assert.deepEqual(model.tokenize(text), expected.prompt_ids);
    const session = model.createSession();
    const result = await session.generate(text, { maxTokens: expected.continuation_ids.length });
    assert.deepEqual(result.ids, expected.continuation_ids);
    assert.equal(result.text, expected.text);
    session.free();
  }
});

test('logits are within 1e-4 of native on every WebAssembly kernel path', () => {
  const ids = model.tokenize('In the beginning God created the heaven and the earth. And the earth was');
  const out = join(mkdtempSync(join(tmpdir(), 't2r-js-')), 'logits.f32');
  native('--ids', ids.join(','), '--dump-logits', out);
  const bytes = readFileSync(out);
  const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const V = model.info.vocabSize;
  assert.equal(expected.length, ids.length * V);
  const saved = t2r.kernelPath;
  assert.equal(saved, 'wasm-simd128');
  for (const path of ['wasm-simd128', 'scalar']) {
    t2r.kernelPath = path;
    const session = model.createSession();
    let maxDiff = 0;
    ids.forEach((id, t) => {
      const logits = session.step(id);
      for (let v = 0; v < V; ++v) maxDiff = Math.max(maxDiff, Math.abs(logits[v] - expected[t * V + v]));
    });
    session.free();
    assert.ok(maxDiff <= 1e-4, `${path}: max |logit diff| ${maxDiff}`);
  }
  t2r.kernelPath = saved;
  assert.throws(() => { t2r.kernelPath = 'avx2'; }, { message: "no kernel path 'avx2' in this build" });
});

test('generation stops when the callback says so and when the signal is aborted', async () => {
  const session = model.createSession();
  let calls = 0;
  const stopped = await session.generate(prompt, { maxTokens: 40, onToken: () => ++calls < 5 });
  assert.equal(stopped.ids.length, 5);
  const controller = new AbortController();
  controller.abort();
  const aborted = await session.generate(' and', { maxTokens: 40, signal: controller.signal });
  assert.equal(aborted.ids.length, 0);
  session.free();
});

test('sampling is reproducible with a seed and differs across seeds', async () => {
  const session = model.createSession();
  const sample = async (seed) => {
    session.reset();
    return (await session.generate(prompt, { maxTokens: 24, temperature: 0.9, topK: 40, topP: 0.95,
                                             repetitionPenalty: 1.1, seed })).text;
  };
  const a = await sample(7);
  assert.equal(await sample(7), a);
  assert.notEqual(await sample(8), a);
  session.free();
});

test('a restored state continues exactly where it was saved, in another session', async () => {
  const first = model.createSession();
  first.prefill(model.tokenize(prompt));
  const state = first.saveState();
  const expected = await first.generate('', { maxTokens: 16 });
  const second = model.createSession();
  second.restoreState(state);
  const resumed = await second.generate('', { maxTokens: 16 });
  assert.equal(resumed.text, expected.text);
  assert.equal(second.bytes, first.bytes);
  assert.throws(() => second.restoreState(state.subarray(0, 100)), T2rError);
  first.free();
  second.free();
});

test('failures are T2rError exceptions with the C API message', async () => {
  const session = model.createSession();
  assert.throws(() => session.step(99999), { name: 'Error', message: 'token id 99999 is outside the vocabulary (0..8191)' });
  await assert.rejects(t2r.loadModel(new Uint8Array([1, 2, 3, 4])), T2rError);
  await assert.rejects(t2r.loadModel(42), { message: 'loadModel takes a URL, an ArrayBuffer, a typed array or a Blob' });
  session.free();
});

test('the shipped translation model translates as the native t2r-translate does', () => {
  const nativeTranslate = resolve(process.env.T2R_TRANSLATE || 'build-test/t2r-translate');
  const path = join(webDir, 'translate-es-en.t2r');
  const sentences = ['VINO pues el rey con Amán á beber con la reina Esther.', 'El rey habló.'];
  const expected = execFileSync(nativeTranslate, [path, '--nbest', '3', '--scores'], { input: sentences.join('\n') + '\n', encoding: 'utf8' });
  const translationModel = t2r.loadModel(readFileSync(path));
  return translationModel.then((m) => {
    const translator = m.createTranslator({ beam: 5, nbest: 3 });
    const results = translator.translate(sentences);
    // The same hypotheses in the same order; the scores to rounding, since WebAssembly SIMD and
    // the native CPU's kernels sum in different orders (the native AVX2 and scalar paths differ
    // from each other in the sixth decimal too).
    const got = results.flatMap((hypotheses, i) => hypotheses.map((h) => [i, h.score, h.text]));
    const want = expected.trimEnd().split('\n').map((line) => line.split('\t'));
    assert.equal(got.length, want.length);
    got.forEach(([i, score, text], k) => {
      assert.equal(`${i}\t${text}`, `${want[k][0]}\t${want[k][2]}`);
      assert.ok(Math.abs(score - Number(want[k][1])) <= 2e-6, `score ${score} against the native ${want[k][1]}`);
    });
    assert.equal(results[0][0].ids.at(-1), 2);
    translator.free();
    assert.throws(() => model.createTranslator(), T2rError);
    m.free();
  });
});
