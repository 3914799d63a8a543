"""t2r from Python: the C API (runtime/include/t2r.h) through ctypes, standard library only.

    import t2r
    with t2r.Model("models/default.t2r") as model:
        session = model.session()
        for piece in session.generate("In the beginning", max_tokens=32, temperature=0.8, seed=1):
            print(piece, end="", flush=True)

The shared libt2r is found through $T2R_LIBRARY, beside an installed copy of this module
(LIBDIR/t2r/python/t2r.py next to LIBDIR/libt2r.so.0), or the dynamic linker's search path.
Every failure of the C API raises T2rError with its message.
"""
import array
import collections
import ctypes
import os
from pathlib import Path

__all__ = ["T2rError", "Model", "Session", "Context", "Sampler", "BatchRow"]


class T2rError(Exception):
    """A failure reported by the C API; the message is t2r_last_error()'s."""


def _find_library():
    given = os.environ.get("T2R_LIBRARY")
    if given:
        return given
    installed = Path(__file__).resolve().parents[2] / "libt2r.so.0"
    return str(installed) if installed.exists() else "libt2r.so.0"


_lib = ctypes.CDLL(_find_library())

_c_float_p = ctypes.POINTER(ctypes.c_float)
_c_int32_p = ctypes.POINTER(ctypes.c_int32)


class _ModelInfo(ctypes.Structure):
    _fields_ = [("architecture", ctypes.c_char_p), ("attention", ctypes.c_char_p),
                ("vocab_size", ctypes.c_int64), ("dim", ctypes.c_int64), ("n_layers", ctypes.c_int64),
                ("n_heads", ctypes.c_int64), ("n_kv_heads", ctypes.c_int64), ("head_dim", ctypes.c_int64),
                ("feature_dim", ctypes.c_int64), ("ffn_dim", ctypes.c_int64), ("max_positions", ctypes.c_int64),
                ("parameter_count", ctypes.c_uint64), ("weight_bytes", ctypes.c_uint64),
                ("file_bytes", ctypes.c_uint64), ("eos_id", ctypes.c_int32), ("bos_id", ctypes.c_int32),
                ("tokenizer", ctypes.c_char_p), ("adds_bos", ctypes.c_int32),
                ("encoder_layers", ctypes.c_int64), ("source_vocab_size", ctypes.c_int64)]


class _SessionOptions(ctypes.Structure):
    _fields_ = [("max_context", ctypes.c_int64), ("threads", ctypes.c_int32), ("prefill_chunk", ctypes.c_int32),
                ("backend", ctypes.c_char_p), ("device", ctypes.c_char_p), ("max_adaptive_prompt", ctypes.c_int64),
                ("memory_budget", ctypes.c_uint64)]


class _ContextOptions(ctypes.Structure):
    _fields_ = [("max_sequences", ctypes.c_int32), ("max_batch", ctypes.c_int32), ("max_outputs", ctypes.c_int32),
                ("max_context", ctypes.c_int64), ("threads", ctypes.c_int32), ("backend", ctypes.c_char_p),
                ("device", ctypes.c_char_p), ("memory_budget", ctypes.c_uint64), ("max_sources", ctypes.c_int32),
                ("max_source_length", ctypes.c_int64)]


class _SamplerOptions(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float),
                ("repetition_penalty", ctypes.c_float), ("penalty_window", ctypes.c_int32),
                ("seed", ctypes.c_uint64)]


class _TranslatorOptions(ctypes.Structure):
    _fields_ = [("beam", ctypes.c_int32), ("nbest", ctypes.c_int32), ("length_penalty", ctypes.c_float),
                ("max_len_a", ctypes.c_float), ("max_len_b", ctypes.c_int32), ("min_len", ctypes.c_int32),
                ("max_sentences", ctypes.c_int32), ("max_source_length", ctypes.c_int64), ("threads", ctypes.c_int32),
                ("sampling", _SamplerOptions)]


class BatchRow(ctypes.Structure):
    """One row of Context.decode: a token of a sequence at that sequence's next position."""
    _fields_ = [("token", ctypes.c_int32), ("sequence", ctypes.c_int32), ("position", ctypes.c_int64),
                ("logits", ctypes.c_int32)]


def _declare(name, restype, *argtypes):
    function = getattr(_lib, name)
    function.restype = restype
    function.argtypes = argtypes


_v, _p, _sz = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
for _name, _res, _args in [
        ("t2r_last_error", ctypes.c_char_p, ()),
        ("t2r_model_load", _p, (ctypes.c_char_p,)), ("t2r_model_free", None, (_p,)),
        ("t2r_model_get_info", None, (_p, ctypes.POINTER(_ModelInfo))),
        ("t2r_tokenize_with", ctypes.c_int64, (_p, ctypes.c_char_p, _sz, _c_int32_p, _sz, ctypes.c_uint32)),
        ("t2r_token_bytes", ctypes.c_void_p, (_p, ctypes.c_int32, ctypes.POINTER(_sz))),
        ("t2r_text_stream_create", _p, (_p,)), ("t2r_text_stream_free", None, (_p,)),
        ("t2r_text_stream_push", ctypes.c_void_p, (_p, ctypes.c_int32, ctypes.POINTER(_sz))),
        ("t2r_text_stream_finish", ctypes.c_void_p, (_p, ctypes.POINTER(_sz))),
        ("t2r_session_default_options", _SessionOptions, ()),
        ("t2r_session_create", _p, (_p, ctypes.POINTER(_SessionOptions))), ("t2r_session_free", None, (_p,)),
        ("t2r_session_bytes", _sz, (_p,)), ("t2r_session_reset", None, (_p,)),
        ("t2r_session_position", ctypes.c_int64, (_p,)),
        ("t2r_step", _c_float_p, (_p, ctypes.c_int32)), ("t2r_prefill", _c_float_p, (_p, _c_int32_p, _sz)),
        ("t2r_session_logits", _c_float_p, (_p,)),
        ("t2r_state_save", ctypes.c_int64, (_p, _v, _sz)), ("t2r_state_restore", ctypes.c_int, (_p, _v, _sz)),
        ("t2r_context_default_options", _ContextOptions, ()),
        ("t2r_context_create", _p, (_p, ctypes.POINTER(_ContextOptions))), ("t2r_context_free", None, (_p,)),
        ("t2r_context_bytes", _sz, (_p,)),
        ("t2r_decode", _c_float_p, (_p, ctypes.POINTER(BatchRow), _sz, ctypes.POINTER(_sz))),
        ("t2r_sequence_position", ctypes.c_int64, (_p, ctypes.c_int32)),
        ("t2r_sequence_clear", ctypes.c_int, (_p, ctypes.c_int32)),
        ("t2r_sequence_copy", ctypes.c_int, (_p, ctypes.c_int32, ctypes.c_int32)),
        ("t2r_sequence_save", ctypes.c_int64, (_p, ctypes.c_int32, _v, _sz)),
        ("t2r_sequence_restore", ctypes.c_int, (_p, ctypes.c_int32, _v, _sz)),
        ("t2r_sampler_default_options", _SamplerOptions, ()),
        ("t2r_sampler_create", _p, (_p, ctypes.POINTER(_SamplerOptions))), ("t2r_sampler_free", None, (_p,)),
        ("t2r_sample", ctypes.c_int32, (_p, _c_float_p)), ("t2r_sampler_accept", None, (_p, ctypes.c_int32)),
        ("t2r_tokenize_source", ctypes.c_int64, (_p, ctypes.c_char_p, _sz, _c_int32_p, _sz)),
        ("t2r_context_encode", ctypes.c_int, (_p, ctypes.c_int32, _c_int32_p, _sz)),
        ("t2r_sequence_attach", ctypes.c_int, (_p, ctypes.c_int32, ctypes.c_int32)),
        ("t2r_translator_default_options", _TranslatorOptions, ()),
        ("t2r_translator_create", _p, (_p, ctypes.POINTER(_TranslatorOptions))), ("t2r_translator_free", None, (_p,)),
        ("t2r_translator_bytes", _sz, (_p,)),
        ("t2r_translate", ctypes.c_int, (_p, ctypes.POINTER(ctypes.c_char_p), _sz)),
        ("t2r_translate_ids", ctypes.c_int, (_p, ctypes.POINTER(_c_int32_p), ctypes.POINTER(_sz), _sz)),
        ("t2r_translation_count", _sz, (_p, _sz)),
        ("t2r_translation_text", ctypes.c_char_p, (_p, _sz, _sz)),
        ("t2r_translation_ids", _c_int32_p, (_p, _sz, _sz, ctypes.POINTER(_sz))),
        ("t2r_translation_score", ctypes.c_float, (_p, _sz, _sz))]:
    _declare(_name, _res, *_args)

_NO_BOS_EOS, _SPECIAL_AS_TEXT = 1, 2


def _error():
    return T2rError(_lib.t2r_last_error().decode("utf-8", "replace"))


def _checked(handle):
    if not handle:
        raise _error()
    return handle


def _floats(pointer, count):
    """A copy of `count` floats at `pointer` (the C API's buffers are reused by the next call)."""
    return array.array("f", ctypes.string_at(pointer, count * 4))


def _ids(tokenize, text):
    """The ids a C API tokenizer writes for `text`, retried with the capacity it says it needs."""
    data = text.encode("utf-8")
    capacity = len(data) + 16
    while True:
        ids = (ctypes.c_int32 * capacity)()
        n = tokenize(data, ids, capacity)
        if n < 0:
            raise _error()
        if n <= capacity:
            return list(ids[:n])
        capacity = n


def _saved(save, *args):
    """Bytes from a C API save function that returns the size it needs (writing nothing if larger)."""
    size = save(*args, None, 0)
    if size < 0:
        raise _error()
    buffer = ctypes.create_string_buffer(size)
    if save(*args, buffer, size) != size:
        raise _error()
    return buffer.raw


class _Owned:
    """A C API object, freed by close() or at the end of a with block."""
    _free = None  # the C API function that frees it, set by each subclass

    def close(self):
        if self._handle:
            type(self)._free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Owned):
    """A loaded model (memory-mapped, read-only), shared by any number of sessions and contexts,
    which must be closed before it."""

    _free = _lib.t2r_model_free

    def __init__(self, path):
        self._handle = _checked(_lib.t2r_model_load(os.fsencode(path)))
        info = _ModelInfo()
        _lib.t2r_model_get_info(self._handle, ctypes.byref(info))
        self.info = {name: getattr(info, name) for name, _ in _ModelInfo._fields_}
        for name in ("architecture", "attention", "tokenizer"):
            self.info[name] = self.info[name].decode()
        self.vocab_size = info.vocab_size
        self.eos_id = info.eos_id

    def tokenize(self, text, bos=True, special_as_text=False):
        """Token ids of `text`, with the BOS/EOS the model expects unless bos=False."""
        flags = (0 if bos else _NO_BOS_EOS) | (_SPECIAL_AS_TEXT if special_as_text else 0)
        return _ids(lambda data, ids, capacity: _lib.t2r_tokenize_with(self._handle, data, len(data), ids, capacity,
                                                                       flags), text)

    def tokenize_source(self, text):
        """A translation model's source ids of `text`: its pieces numbered by the source dictionary, then </s>."""
        return _ids(lambda data, ids, capacity: _lib.t2r_tokenize_source(self._handle, data, len(data), ids, capacity),
                    text)

    def token_bytes(self, token):
        """The raw bytes of a token (possibly part of a UTF-8 character)."""
        length = ctypes.c_size_t()
        pointer = _lib.t2r_token_bytes(self._handle, token, ctypes.byref(length))
        if pointer is None and length.value == 0:
            return b""
        return ctypes.string_at(pointer, length.value)

    def detokenize(self, ids):
        """The text of `ids`, decoded as a stream (a character split across tokens is joined)."""
        stream = _TextStream(self)
        try:
            return "".join(stream.push(token) for token in ids) + stream.finish()
        finally:
            stream.close()

    def session(self, max_context=0, threads=0, memory_budget=0, backend=None):
        """A session: one sequence, all its memory allocated now (t2r_session_options)."""
        return Session(self, max_context=max_context, threads=threads, memory_budget=memory_budget, backend=backend)

    def context(self, max_sequences=1, max_batch=64, max_outputs=0, max_context=0, threads=0, memory_budget=0,
                backend=None, max_sources=0, max_source_length=0):
        """A context: many sequences decoded together in batches (t2r_context_options)."""
        return Context(self, max_sequences=max_sequences, max_batch=max_batch, max_outputs=max_outputs,
                       max_context=max_context, threads=threads, memory_budget=memory_budget, backend=backend,
                       max_sources=max_sources, max_source_length=max_source_length)

    def translator(self, **options):
        """A translator over a translation model (see Translator)."""
        return Translator(self, **options)


class _TextStream:
    def __init__(self, model):
        self._handle = _checked(_lib.t2r_text_stream_create(model._handle))
        self._length = ctypes.c_size_t()

    def _text(self, pointer):
        return ctypes.string_at(pointer, self._length.value).decode("utf-8") if self._length.value else ""

    def push(self, token):
        pointer = _lib.t2r_text_stream_push(self._handle, token, ctypes.byref(self._length))
        if pointer is None:
            raise _error()
        return self._text(pointer)

    def finish(self):
        return self._text(_lib.t2r_text_stream_finish(self._handle, ctypes.byref(self._length)))

    def close(self):
        _lib.t2r_text_stream_free(self._handle)


class Sampler:
    """Chooses tokens from logits: temperature 0 is greedy; top_k 0 and top_p 1 are off; penalty 1 is none."""

    def __init__(self, model, temperature=0.0, top_k=0, top_p=1.0, repetition_penalty=1.0, penalty_window=0,
                 seed=0):
        options = _lib.t2r_sampler_default_options()
        options.temperature, options.top_k, options.top_p = temperature, top_k, top_p
        options.repetition_penalty, options.seed = repetition_penalty, seed
        if penalty_window:
            options.penalty_window = penalty_window
        self._handle = _checked(_lib.t2r_sampler_create(model._handle, ctypes.byref(options)))

    def sample(self, logits):
        values = (ctypes.c_float * len(logits)).from_buffer(array.array("f", logits))
        return _lib.t2r_sample(self._handle, values)

    def accept(self, token):
        """Counts a token the sampler did not choose (a prompt's) for the repetition penalty."""
        _lib.t2r_sampler_accept(self._handle, token)

    def close(self):
        if self._handle:
            _lib.t2r_sampler_free(self._handle)
            self._handle = None


class Session(_Owned):
    """One sequence. Logits are returned as array('f') copies of vocab_size floats."""

    _free = _lib.t2r_session_free

    def __init__(self, model, max_context=0, threads=0, memory_budget=0, backend=None):
        options = _lib.t2r_session_default_options()
        options.max_context, options.threads, options.memory_budget = max_context, threads, memory_budget
        options.backend = backend.encode() if backend else None
        self.model = model
        self._handle = _checked(_lib.t2r_session_create(model._handle, ctypes.byref(options)))

    @property
    def bytes(self):
        """All memory the session holds, allocated once when it was created."""
        return _lib.t2r_session_bytes(self._handle)

    @property
    def position(self):
        return _lib.t2r_session_position(self._handle)

    def reset(self):
        _lib.t2r_session_reset(self._handle)

    def step(self, token):
        return _floats(_checked(_lib.t2r_step(self._handle, token)), self.model.vocab_size)

    def prefill(self, ids):
        tokens = (ctypes.c_int32 * len(ids))(*ids)
        return _floats(_checked(_lib.t2r_prefill(self._handle, tokens, len(ids))), self.model.vocab_size)

    @property
    def logits(self):
        """The logits after the last token fed or restored."""
        return _floats(_checked(_lib.t2r_session_logits(self._handle)), self.model.vocab_size)

    def save_state(self):
        """The state (recurrent state or KV cache, and the last logits) as bytes tied to the model."""
        return _saved(_lib.t2r_state_save, self._handle)

    def restore_state(self, data):
        if _lib.t2r_state_restore(self._handle, data, len(data)) != 0:
            raise _error()

    def generate(self, prompt="", max_tokens=64, temperature=0.0, top_k=0, top_p=1.0, repetition_penalty=1.0,
                 seed=0, stop_at_eos=False, bos=None):
        """Continues the sequence with `prompt` (text or ids; "" continues from the last logits, or
        starts a new document in an empty session) and yields the text of each generated token as it
        is made (pieces may be empty while a character is incomplete). bos: whether a text prompt
        gets the model's BOS (default: only at the start of the sequence)."""
        if isinstance(prompt, str):
            start = self.position == 0
            ids = self.model.tokenize(prompt, bos=start if bos is None else bos) if prompt else []
        else:
            ids = list(prompt)
        if not ids and self.position == 0:
            ids = [self.model.eos_id]
        sampler = Sampler(self.model, temperature, top_k, top_p, repetition_penalty, seed=seed)
        stream = _TextStream(self.model)
        try:
            for token in ids:
                sampler.accept(token)
            if ids:
                tokens = (ctypes.c_int32 * len(ids))(*ids)
                logits = _checked(_lib.t2r_prefill(self._handle, tokens, len(ids)))
            else:
                logits = _checked(_lib.t2r_session_logits(self._handle))
            for _ in range(max_tokens):
                token = _lib.t2r_sample(sampler._handle, logits)
                if stop_at_eos and token == self.model.eos_id:
                    break
                logits = _checked(_lib.t2r_step(self._handle, token))
                yield stream.push(token)
            rest = stream.finish()
            if rest:
                yield rest
        finally:
            stream.close()
            sampler.close()


class Context(_Owned):
    """Many sequences (0 .. max_sequences - 1) decoded together: rows of one decode share one read
    of the weights."""

    _free = _lib.t2r_context_free

    def __init__(self, model, max_sequences=1, max_batch=64, max_outputs=0, max_context=0, threads=0,
                 memory_budget=0, backend=None, max_sources=0, max_source_length=0):
        options = _lib.t2r_context_default_options()
        options.max_sequences, options.max_batch, options.max_outputs = max_sequences, max_batch, max_outputs
        options.max_context, options.threads, options.memory_budget = max_context, threads, memory_budget
        options.max_sources, options.max_source_length = max_sources, max_source_length
        options.backend = backend.encode() if backend else None
        self.model = model
        self._handle = _checked(_lib.t2r_context_create(model._handle, ctypes.byref(options)))

    @property
    def bytes(self):
        return _lib.t2r_context_bytes(self._handle)

    def decode(self, rows):
        """Runs rows (BatchRow or (token, sequence, position, want_logits) tuples); returns the logits
        of the rows that asked for them, in row order."""
        batch = (BatchRow * len(rows))(*[row if isinstance(row, BatchRow) else BatchRow(*row) for row in rows])
        outputs = ctypes.c_size_t()
        logits = _checked(_lib.t2r_decode(self._handle, batch, len(rows), ctypes.byref(outputs)))
        V = self.model.vocab_size
        everything = _floats(logits, outputs.value * V)
        return [everything[i * V:(i + 1) * V] for i in range(outputs.value)]

    def _check(self, result):
        if result < 0:
            raise _error()
        return result

    def position(self, sequence):
        return self._check(_lib.t2r_sequence_position(self._handle, sequence))

    def clear(self, sequence):
        self._check(_lib.t2r_sequence_clear(self._handle, sequence))

    def copy(self, source, target):
        """Sequence `target` continues as `source`."""
        self._check(_lib.t2r_sequence_copy(self._handle, source, target))

    def save(self, sequence):
        return _saved(_lib.t2r_sequence_save, self._handle, sequence)

    def restore(self, sequence, data):
        self._check(_lib.t2r_sequence_restore(self._handle, sequence, data, len(data)))

    def encode(self, source, ids):
        """Translation models: runs the encoder over source ids (Model.tokenize_source) into slot `source`."""
        tokens = (ctypes.c_int32 * len(ids))(*ids)
        self._check(_lib.t2r_context_encode(self._handle, source, tokens, len(ids)))

    def attach(self, sequence, source):
        """The rows of `sequence` attend to encoded source `source` (copy carries it)."""
        self._check(_lib.t2r_sequence_attach(self._handle, sequence, source))


Hypothesis = collections.namedtuple("Hypothesis", "text score ids")


class Translator(_Owned):
    """Beam search over a translation model with fairseq's semantics; sentences are batched by length.
    translate() returns, per sentence, its n-best Hypothesis(text, score, ids), best first."""

    _free = _lib.t2r_translator_free

    def __init__(self, model, beam=5, nbest=1, length_penalty=1.0, max_len_a=0.0, max_len_b=200, min_len=1,
                 max_sentences=8, max_source_length=0, threads=0, temperature=0.0, top_k=0, top_p=1.0, seed=0):
        options = _lib.t2r_translator_default_options()
        options.beam, options.nbest, options.length_penalty = beam, nbest, length_penalty
        options.max_len_a, options.max_len_b, options.min_len = max_len_a, max_len_b, min_len
        options.max_sentences, options.max_source_length, options.threads = max_sentences, max_source_length, threads
        options.sampling.temperature, options.sampling.top_k = temperature, top_k
        options.sampling.top_p, options.sampling.seed = top_p, seed
        self.model = model
        self._handle = _checked(_lib.t2r_translator_create(model._handle, ctypes.byref(options)))

    @property
    def bytes(self):
        return _lib.t2r_translator_bytes(self._handle)

    def translate(self, texts):
        """The n-best translations of each text."""
        data = (ctypes.c_char_p * len(texts))(*[text.encode("utf-8") for text in texts])
        if _lib.t2r_translate(self._handle, data, len(texts)) != 0:
            raise _error()
        return self._results(len(texts))

    def translate_ids(self, sources):
        """The same from source ids (each ending in </s>)."""
        arrays = [(ctypes.c_int32 * len(ids))(*ids) for ids in sources]
        pointers = (_c_int32_p * len(arrays))(*[ctypes.cast(a, _c_int32_p) for a in arrays])
        lengths = (ctypes.c_size_t * len(arrays))(*[len(ids) for ids in sources])
        if _lib.t2r_translate_ids(self._handle, pointers, lengths, len(arrays)) != 0:
            raise _error()
        return self._results(len(sources))

    def _results(self, count):
        out = []
        for i in range(count):
            hypotheses = []
            for k in range(_lib.t2r_translation_count(self._handle, i)):
                n = ctypes.c_size_t()
                ids = _lib.t2r_translation_ids(self._handle, i, k, ctypes.byref(n))
                hypotheses.append(Hypothesis(_lib.t2r_translation_text(self._handle, i, k).decode("utf-8"),
                                             _lib.t2r_translation_score(self._handle, i, k), list(ids[:n.value])))
            out.append(hypotheses)
        return out
