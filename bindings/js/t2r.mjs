// t2r in JavaScript: the C API (runtime/include/t2r.h) compiled to WebAssembly, for browsers and
// node. One module instance holds any number of models and sessions; all of them live in its
// memory, and each must be freed (free()) when done with, as in C.
//
//   const t2r = await createT2r();
//   const model = await t2r.loadModel('default.t2r');          // a URL, ArrayBuffer or Uint8Array
//   const session = model.createSession();
//   await session.generate('In the beginning', { maxTokens: 32, onToken: (text) => out(text) });
import createModule from './t2r-wasm.mjs';

export class T2rError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The last C API failure on this thread, as an exception.
function fail(wasm) {
  throw new T2rError(wasm.UTF8ToString(wasm._t2r_last_error()));
}

// Bytes in the module's memory for the duration of `use` (which gets their address).
function withBytes(wasm, bytes, use) {
  const p = wasm._malloc(bytes.length + 1);
  if (!p) throw new T2rError('out of memory');
  try {
    wasm.HEAPU8.set(bytes, p);
    wasm.HEAPU8[p + bytes.length] = 0;
    return use(p, bytes.length);
  } finally {
    wasm._free(p);
  }
}

// The browser (and node) stay responsive during generation: control goes back to the event loop
// when this many milliseconds have passed since it last did.
const kYieldMilliseconds = 25;
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

// `moduleOptions` go to emscripten's module factory. The module is built for browsers and workers
// (emscripten 3.1.6's node support does not work in an ES module); under node the WebAssembly binary
// is read from beside this file and handed over, which is all it needs there.
export async function createT2r(moduleOptions = {}) {
  const options = { ...moduleOptions };
  if (!options.wasmBinary && typeof process === 'object' && process.versions && process.versions.node) {
    const { readFile } = await import('node:fs/promises');
    options.wasmBinary = await readFile(new URL('./t2r-wasm.wasm', import.meta.url));
  }
  return new T2r(await createModule(options));
}

export class T2r {
  constructor(wasm) {
    this.wasm = wasm;
  }

  // The kernel path in use ("wasm-simd128" or "scalar"); setting it switches every session.
  get kernelPath() {
    return this.wasm.UTF8ToString(this.wasm._t2r_web_kernel_path());
  }
  set kernelPath(path) {
    if (withBytes(this.wasm, encoder.encode(path), (p) => this.wasm._t2r_web_select_kernel_path(p)) !== 0) {
      throw new T2rError(`no kernel path '${path}' in this build`);
    }
  }

  // Bytes of WebAssembly memory the module holds now (models, sessions and the C heap).
  get memoryBytes() {
    return this.wasm.HEAPU8.length;
  }

  // `source`: a URL (fetched), an ArrayBuffer, a typed array or a Blob (a File from an <input>).
  async loadModel(source, name = 'model.t2r') {
    let bytes;
    if (typeof source === 'string' || source instanceof URL) {
      const response = await fetch(source);
      if (!response.ok) throw new T2rError(`cannot fetch ${source}: ${response.status} ${response.statusText}`);
      bytes = new Uint8Array(await response.arrayBuffer());
    } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
      bytes = new Uint8Array(await source.arrayBuffer());
    } else if (source instanceof ArrayBuffer) {
      bytes = new Uint8Array(source);
    } else if (ArrayBuffer.isView(source)) {
      bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    } else {
      throw new T2rError('loadModel takes a URL, an ArrayBuffer, a typed array or a Blob');
    }
    // The C API maps a file: the bytes go into the module's in-memory file system, are mapped
    // (copied into WebAssembly memory) and the file is removed, so one copy remains.
    const path = `/${Date.now()}-${Math.random().toString(36).slice(2)}-${name.replace(/[^\w.-]/g, '_')}`;
    this.wasm.FS.writeFile(path, bytes);
    try {
      const handle = withBytes(this.wasm, encoder.encode(path), (p) => this.wasm._t2r_model_load(p));
      if (!handle) fail(this.wasm);
      return new Model(this.wasm, handle);
    } finally {
      this.wasm.FS.unlink(path);
    }
  }
}

export class Model {
  constructor(wasm, handle) {
    this.wasm = wasm;
    this.handle = handle;
    this.info = JSON.parse(wasm.UTF8ToString(wasm._t2r_web_model_info(handle)));
  }

  free() {
    if (this.handle) this.wasm._t2r_model_free(this.handle);
    this.handle = 0;
  }

  // Token ids of `text`, with the BOS the model expects unless { bos: false }; { specialAsText:
  // true } reads special-token texts ("<|endoftext|>") as plain text, for untrusted input.
  tokenize(text, { bos = true, specialAsText = false } = {}) {
    const wasm = this.wasm;
    const flags = (bos ? 0 : 1) | (specialAsText ? 2 : 0);
    return withBytes(wasm, encoder.encode(text), (p, length) => {
      let capacity = length + 16;
      for (;;) {
        const ids = wasm._malloc(capacity * 4);
        try {
          const n = wasm._t2r_web_tokenize(this.handle, p, length, ids, capacity, flags);
          if (n < 0) fail(wasm);
          if (n <= capacity) return Array.from(wasm.HEAP32.subarray(ids >> 2, (ids >> 2) + n));
          capacity = n;
        } finally {
          wasm._free(ids);
        }
      }
    });
  }

  // Text of token ids (UTF-8 decoded as a stream: a character split across tokens is joined).
  detokenize(ids) {
    const stream = new TextStream(this);
    try {
      return ids.map((id) => stream.push(id)).join('') + stream.finish();
    } finally {
      stream.free();
    }
  }

  // A translation model's translator (beam search with fairseq's semantics; t2r_translator_options).
  createTranslator({ beam = 5, nbest = 1, lengthPenalty = 1, maxLenB = 200, maxSentences = 8 } = {}) {
    const handle = this.wasm._t2r_web_translator_create(this.handle, beam, nbest, lengthPenalty, maxLenB, maxSentences);
    if (!handle) fail(this.wasm);
    return new Translator(this, handle);
  }

  // { maxContext, memoryBudget }: as t2r_session_options (0: the model's maximum, no limit).
  createSession({ maxContext = 0, memoryBudget = 0 } = {}) {
    const handle = this.wasm._t2r_web_session_create(this.handle, maxContext, memoryBudget);
    if (!handle) fail(this.wasm);
    return new Session(this, handle);
  }
}

// Generated tokens to valid UTF-8 text (t2r_text_stream).
class TextStream {
  constructor(model) {
    this.wasm = model.wasm;
    this.handle = this.wasm._t2r_text_stream_create(model.handle);
    if (!this.handle) fail(this.wasm);
    this.length = this.wasm._malloc(4);
  }
  // The stream's pieces are whole UTF-8 characters; any byte, NUL included, is text.
  text(p) {
    const n = this.wasm.HEAPU32[this.length >> 2];
    return n ? decoder.decode(this.wasm.HEAPU8.subarray(p, p + n)) : '';
  }
  push(id) {
    const p = this.wasm._t2r_text_stream_push(this.handle, id, this.length);
    if (!p) fail(this.wasm);
    return this.text(p);
  }
  finish() {
    return this.text(this.wasm._t2r_text_stream_finish(this.handle, this.length));
  }
  free() {
    this.wasm._t2r_text_stream_free(this.handle);
    this.wasm._free(this.length);
  }
}

export class Translator {
  constructor(model, handle) {
    this.model = model;
    this.wasm = model.wasm;
    this.handle = handle;
  }

  free() {
    if (this.handle) this.wasm._t2r_translator_free(this.handle);
    this.handle = 0;
  }

  get bytes() {
    return this.wasm._t2r_translator_bytes(this.handle);
  }

  // The n-best translations of each text, best first: [[{ text, score, ids }, ...], ...].
  translate(texts) {
    if (texts.some((text) => text.includes('\n'))) throw new T2rError('a text to translate is one line');
    const wasm = this.wasm;
    return withBytes(wasm, encoder.encode(texts.join('\n')), (p, length) => {
      const json = wasm._t2r_web_translate(this.handle, p, length);
      if (!json) fail(wasm);
      return JSON.parse(wasm.UTF8ToString(json));
    });
  }
}

export class Session {
  constructor(model, handle) {
    this.model = model;
    this.wasm = model.wasm;
    this.handle = handle;
  }

  free() {
    if (this.handle) this.wasm._t2r_session_free(this.handle);
    this.handle = 0;
  }

  // All memory the session holds, allocated once when it was created (t2r_session_bytes).
  get bytes() {
    return this.wasm._t2r_session_bytes(this.handle);
  }

  get position() {
    return this.wasm._t2r_web_session_position(this.handle);
  }

  reset() {
    this.wasm._t2r_session_reset(this.handle);
  }

  // Feeds ids; returns the logits predicting the next token (a copy, vocabSize floats).
  prefill(ids) {
    const wasm = this.wasm;
    const p = wasm._malloc(Math.max(1, ids.length) * 4);
    try {
      wasm.HEAP32.set(ids, p >> 2);
      return this.copyLogits(wasm._t2r_prefill(this.handle, p, ids.length));
    } finally {
      wasm._free(p);
    }
  }

  step(id) {
    return this.copyLogits(this.wasm._t2r_step(this.handle, id));
  }

  copyLogits(p) {
    if (!p) fail(this.wasm);
    return this.wasm.HEAPF32.slice(p >> 2, (p >> 2) + this.model.info.vocabSize);
  }

  // The state (recurrent state or KV cache, and the last logits) as bytes tied to the model.
  saveState() {
    const wasm = this.wasm;
    const size = wasm._t2r_web_state_save(this.handle, 0, 0);
    if (size < 0) fail(wasm);
    const p = wasm._malloc(size);
    try {
      if (wasm._t2r_web_state_save(this.handle, p, size) !== size) fail(wasm);
      return wasm.HEAPU8.slice(p, p + size);
    } finally {
      wasm._free(p);
    }
  }

  restoreState(bytes) {
    withBytes(this.wasm, bytes, (p, length) => {
      if (this.wasm._t2r_state_restore(this.handle, p, length) !== 0) fail(this.wasm);
    });
  }

  // Continues the session's sequence with `prompt` (text, or an array of ids; '' continues from
  // the last logits, or starts a new document in an empty session) and generates up to maxTokens,
  // calling onToken(text, id) as each token is made; generation stops when onToken returns false,
  // when `signal` (an AbortSignal) is aborted, or at the end of the document with stopAtEos.
  // Sampling as t2r_sampler_options: temperature 0 is greedy. Resolves to { text, ids,
  // promptTokens, promptSeconds, tokensPerSecond }.
  async generate(prompt, {
    maxTokens = 64, temperature = 0, topK = 0, topP = 1, repetitionPenalty = 1, penaltyWindow = 0, seed = 0,
    stopAtEos = false, bos, onToken, signal,
  } = {}) {
    const wasm = this.wasm;
    const info = this.model.info;
    let ids = typeof prompt === 'string'
      ? (prompt ? this.model.tokenize(prompt, { bos: bos ?? this.position === 0 }) : []) : prompt;
    if (ids.length === 0 && this.position === 0) ids = [info.eosId];  // an empty prompt starts a document
    const sampler = wasm._t2r_web_sampler_create(this.model.handle, temperature, topK, topP, repetitionPenalty,
                                                 penaltyWindow, seed);
    if (!sampler) fail(wasm);
    const stream = new TextStream(this.model);
    const idsAt = wasm._malloc(Math.max(1, ids.length) * 4);
    try {
      for (const id of ids) wasm._t2r_sampler_accept(sampler, id);
      const promptStart = performance.now();
      wasm.HEAP32.set(ids, idsAt >> 2);
      let logits = ids.length ? wasm._t2r_prefill(this.handle, idsAt, ids.length) : wasm._t2r_session_logits(this.handle);
      if (!logits) fail(wasm);
      const promptSeconds = (performance.now() - promptStart) / 1000;
      const start = performance.now();
      let lastYield = start;
      const out = [];
      let text = '';
      while (out.length < maxTokens && !(signal && signal.aborted)) {
        const id = wasm._t2r_sample(sampler, logits);
        if (stopAtEos && id === info.eosId) break;
        out.push(id);
        const piece = stream.push(id);
        text += piece;
        logits = wasm._t2r_step(this.handle, id);  // the session has then read every token it made
        if (!logits) fail(wasm);
        if (onToken && piece && onToken(piece, id) === false) break;
        if (performance.now() - lastYield > kYieldMilliseconds) {
          await nextTask();
          lastYield = performance.now();
        }
      }
      const rest = stream.finish();
      if (rest) {
        text += rest;
        if (onToken) onToken(rest, -1);
      }
      const seconds = (performance.now() - start) / 1000;
      return { text, ids: out, promptTokens: ids.length, promptSeconds,
               tokensPerSecond: seconds > 0 ? out.length / seconds : 0 };
    } finally {
      wasm._free(idsAt);
      stream.free();
      wasm._t2r_sampler_free(sampler);
    }
  }
}
