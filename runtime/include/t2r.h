/* t2r: run transformer language models converted into RNNs (T2R), with fixed memory.
 *
 * The C API for apps. A model is loaded once (memory-mapped, read-only) and shared by any
 * number of sessions and contexts; a session holds one sequence, a context many (batches of
 * them decode together), and each allocates all its memory when created.
 * Functions that can fail return NULL or a negative value; t2r_last_error() then says why
 * (per thread, valid until the next failing call on that thread). */
#ifndef T2R_H
#define T2R_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct t2r_model t2r_model;
typedef struct t2r_session t2r_session;
typedef struct t2r_sampler t2r_sampler;

const char* t2r_last_error(void);

/* Models. */
t2r_model* t2r_model_load(const char* path);
void t2r_model_free(t2r_model* model);

typedef struct {
  const char* architecture; /* e.g. "llama", "fairseq_transformer_lm" */
  const char* attention;    /* "softmax", "t2r" or "elu" */
  int64_t vocab_size, dim, n_layers, n_heads, n_kv_heads, head_dim, feature_dim, ffn_dim;
  int64_t max_positions;
  uint64_t parameter_count, weight_bytes, file_bytes;
  int32_t eos_id;        /* -1: an ids-only model that names none */
  int32_t bos_id;        /* -1 if the model has none */
  const char* tokenizer; /* "byte_bpe", "bpe", "sentencepiece_bpe", "sentencepiece_unigram", or "none" for
                            an ids-only model */
  int32_t adds_bos;      /* whether t2r_tokenize starts texts with bos_id */
  /* Translation models (t2r_translator_create): the encoder's layers (0: a language model) and the
     source vocabulary; the fields above describe the decoder. */
  int64_t encoder_layers, source_vocab_size;
} t2r_model_info;
void t2r_model_get_info(const t2r_model* model, t2r_model_info* info);

/* Tokenizer. Writes up to `capacity` ids and returns how many the text needs (call again with a
 * larger buffer if that is more than capacity), or -1 on error (an ids-only model, packed without
 * tokenizer files, has no tokenizer: t2r_last_error says so). Adds the BOS (and EOS) the model
 * expects, and matches special-token texts written in the input ("<|eot_id|>", "</s>") as the
 * model's Hugging Face tokenizer does; t2r_tokenize_with's flags turn either off. */
int64_t t2r_tokenize(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity);
#define T2R_TOKENIZE_NO_BOS_EOS 1u      /* add no BOS/EOS */
#define T2R_TOKENIZE_SPECIAL_AS_TEXT 2u /* special-token texts are plain text: for untrusted input */
int64_t t2r_tokenize_with(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity,
                          uint32_t flags);
/* Raw bytes of a token (may be part of a UTF-8 character); empty for control tokens. */
const char* t2r_token_bytes(const t2r_model* model, int32_t id, size_t* length);

/* Streaming detokenizer: turns generated tokens into valid UTF-8 text. A token that ends in the
 * middle of a character yields nothing until the character completes; bytes that can never form
 * a character become U+FFFD. The returned text is valid until the next call on this stream. */
typedef struct t2r_text_stream t2r_text_stream;
t2r_text_stream* t2r_text_stream_create(const t2r_model* model);
void t2r_text_stream_free(t2r_text_stream* stream);
const char* t2r_text_stream_push(t2r_text_stream* stream, int32_t token, size_t* length);
const char* t2r_text_stream_finish(t2r_text_stream* stream, size_t* length); /* flushes the rest */

/* Sessions. Everything a session needs is allocated when it is created.
 * Start from t2r_session_default_options() and set the fields you need: fields are only ever
 * added at the end, and a program built against an older t2r.h must be rebuilt (the struct is
 * passed by pointer, so its size is part of the ABI). */
typedef struct {
  int64_t max_context;   /* softmax models: KV cache positions (0: the model's maximum); linear-
                            attention models ignore it, their state has a fixed size */
  int32_t threads;       /* CPU threads (0: one per physical core) */
  int32_t prefill_chunk; /* prompt tokens processed together (0: 64) */
  const char* backend;   /* "cpu" (NULL: the default) or "vulkan", where built with it */
  const char* device;    /* vulkan: a device index or part of its name (NULL: the best one) */
  int64_t max_adaptive_prompt; /* cpu, linear attention: the longest prompt t2r_prefill_adaptive
                                  takes; its buffers are planned for it (0: off) */
  uint64_t memory_budget; /* the most bytes the session may allocate (KV cache or state,
                             activations, logits; vulkan: device memory, the model's weights
                             included), 0: no limit; creating a session that needs more fails,
                             and t2r_last_error() states the bytes it needs. */
} t2r_session_options;
t2r_session_options t2r_session_default_options(void);
t2r_session* t2r_session_create(const t2r_model* model, const t2r_session_options* options); /* NULL: defaults */
void t2r_session_free(t2r_session* session);
size_t t2r_session_bytes(const t2r_session* session); /* all memory the session holds */
void t2r_session_reset(t2r_session* session);
int64_t t2r_session_position(const t2r_session* session);

/* Feeds tokens and returns the logits (vocab_size floats) predicting the next token, valid until
 * the next call on this session; NULL on error (bad id, full KV cache). No allocation. */
const float* t2r_step(t2r_session* session, int32_t token);
const float* t2r_prefill(t2r_session* session, const int32_t* tokens, size_t count);
/* The logits after the last token fed or restored (as t2r_step returned them), NULL while the
 * session is empty: what a caller continues from after t2r_state_restore. */
const float* t2r_session_logits(const t2r_session* session);

/* Length-adaptive prefill (README, "Length-adaptive prefill"): a length configuration gives, per
 * layer, the fraction of the prompt's tokens that enter it; the most significant pass, the last 16
 * always. `text` is a list, "1,1,0.8,0.6,..." (one fraction per layer, the first 1, non-increasing),
 * or the name of a configuration stored in the model file. NULL on error. */
typedef struct t2r_length_config t2r_length_config;
t2r_length_config* t2r_length_config_create(const t2r_model* model, const char* text);
void t2r_length_config_free(t2r_length_config* config);
/* The configuration's prefill FLOPs for a prompt of `tokens` tokens, over those of full prefill. */
double t2r_length_config_flops_fraction(const t2r_length_config* config, size_t tokens);
/* Like t2r_prefill, keeping at each layer only the tokens the configuration lets in. Needs a
 * session created with max_adaptive_prompt >= count. No allocation. */
const float* t2r_prefill_adaptive(t2r_session* session, const int32_t* tokens, size_t count,
                                  const t2r_length_config* config);

/* Saves the state (recurrent state or KV cache, and the last logits) into `buffer`; returns the
 * number of bytes it needs (nothing is written when that exceeds `capacity`), or -1 on error.
 * Restoring a state saved from the same model resumes exactly where it was saved, on either
 * backend: a state saved by a cpu session restores in a vulkan one and the other way round. */
int64_t t2r_state_save(const t2r_session* session, void* buffer, size_t capacity);
int t2r_state_restore(t2r_session* session, const void* buffer, size_t size);

/* Contexts: many sequences at once. A context holds the states of up to max_sequences sequences
 * (each a fixed-size block: the recurrent state, or a KV cache of max_context positions for softmax
 * layers) and the buffers for a batch of up to max_batch rows, all allocated when it is created.
 * A batch row is one token of one sequence at that sequence's next position; the rows of one
 * sequence are consecutive in the batch. Rows of one call share one read of the weights, so decoding
 * N sequences together costs little more than one. Each row gets the results it would get alone. */
typedef struct t2r_context t2r_context;
typedef struct {
  int32_t max_sequences; /* 0: 1 */
  int32_t max_batch;     /* rows one t2r_decode takes, all sequences together (0: 64) */
  int32_t max_outputs;   /* rows of one t2r_decode that may ask for logits (0: max_sequences) */
  int64_t max_context;   /* softmax layers: KV positions per sequence (0: the model's maximum) */
  int32_t threads;       /* CPU threads (0: one per physical core) */
  const char* backend;   /* "cpu" (NULL: the default) or "vulkan", where built with it */
  const char* device;    /* vulkan: a device index or part of its name (NULL: the best one) */
  uint64_t memory_budget; /* the most bytes the context may allocate, 0: no limit */
  /* Translation models, cpu: sources encoded at once (0: max_sequences) and the longest in tokens
     (0: the encoder's maximum). */
  int32_t max_sources;
  int64_t max_source_length;
} t2r_context_options;
t2r_context_options t2r_context_default_options(void);
t2r_context* t2r_context_create(const t2r_model* model, const t2r_context_options* options); /* NULL: defaults */
void t2r_context_free(t2r_context* context);
size_t t2r_context_bytes(const t2r_context* context); /* all memory the context holds */

typedef struct {
  int32_t token;
  int32_t sequence; /* 0 .. max_sequences - 1 */
  int64_t position; /* the sequence's next position (t2r_sequence_position) */
  int32_t logits;   /* nonzero: this row's logits are wanted */
} t2r_batch_row;
/* Runs the rows; returns the logits of the rows that asked for them, in row order, each vocab_size
 * floats (*outputs of them; outputs may be NULL), valid until the next call on this context. NULL on
 * error (then nothing has changed). No allocation. */
const float* t2r_decode(t2r_context* context, const t2r_batch_row* rows, size_t count, size_t* outputs);
/* Sequence operations. Each returns 0 (or a count) on success and -1 on error. */
int64_t t2r_sequence_position(const t2r_context* context, int32_t sequence);
int t2r_sequence_clear(t2r_context* context, int32_t sequence);
int t2r_sequence_copy(t2r_context* context, int32_t from, int32_t to); /* `to` continues as `from` */
/* A sequence's state as versioned bytes tied to the model; like t2r_state_save, returns the bytes it
 * needs and writes nothing when that exceeds `capacity`. */
int64_t t2r_sequence_save(const t2r_context* context, int32_t sequence, void* buffer, size_t capacity);
int t2r_sequence_restore(t2r_context* context, int32_t sequence, const void* buffer, size_t size);

/* Sampling. temperature 0 is greedy; top_k 0 and top_p 1 disable those cuts; penalty 1 is none. */
typedef struct {
  float temperature;
  int32_t top_k;
  float top_p;
  float repetition_penalty;
  int32_t penalty_window;
  uint64_t seed;
} t2r_sampler_options;
t2r_sampler_options t2r_sampler_default_options(void);
t2r_sampler* t2r_sampler_create(const t2r_model* model, const t2r_sampler_options* options); /* NULL: defaults */
void t2r_sampler_free(t2r_sampler* sampler);
int32_t t2r_sample(t2r_sampler* sampler, const float* logits);
void t2r_sampler_accept(t2r_sampler* sampler, int32_t token); /* e.g. prompt tokens, for the penalty */

/* Translation models, stepped by hand on a cpu context: t2r_context_encode runs the encoder over a
 * source (source ids ending in </s>, from t2r_tokenize_source) into source slot `source`, and a
 * sequence attached to it reads it in every decoder step (t2r_sequence_copy carries the attachment,
 * so the beams of a sentence share one encoded source). Both return 0, or -1 on error. */
int t2r_context_encode(t2r_context* context, int32_t source, const int32_t* tokens, size_t count);
int t2r_sequence_attach(t2r_context* context, int32_t sequence, int32_t source);
/* The source ids of a text for a translation model: its pieces numbered by the source dictionary,
 * then </s>. Returns the count as t2r_tokenize does, or -1. */
int64_t t2r_tokenize_source(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity);

/* Translators: beam search over a translation model with fairseq's semantics, many sentences at once
 * (sorted by length into batches, each step one batched decode over every live beam). All memory is
 * allocated at creation; start from t2r_translator_default_options(). */
typedef struct t2r_translator t2r_translator;
typedef struct {
  int32_t beam;             /* 1: greedy (default 5) */
  int32_t nbest;            /* hypotheses kept per sentence, at most beam (default 1) */
  float length_penalty;     /* scores are divided by length^length_penalty (default 1) */
  float max_len_a;          /* at most max_len_a * source length + max_len_b target tokens (default 0) */
  int32_t max_len_b;        /* (default 200) */
  int32_t min_len;          /* no </s> before this many tokens (default 1) */
  int32_t max_sentences;    /* sentences decoded at once (default 8) */
  int64_t max_source_length; /* longest source in tokens, </s> included (0: the encoder's maximum) */
  int32_t threads;          /* CPU threads (0: one per physical core) */
  t2r_sampler_options sampling; /* temperature > 0 with beam 1: sample instead of searching */
} t2r_translator_options;
t2r_translator_options t2r_translator_default_options(void);
t2r_translator* t2r_translator_create(const t2r_model* model, const t2r_translator_options* options); /* NULL: defaults */
void t2r_translator_free(t2r_translator* translator);
size_t t2r_translator_bytes(const t2r_translator* translator); /* its context's memory */
/* Translates `count` texts (or source ids, each ending in </s>); returns 0, or -1 with nothing
 * translated. The results stay until the next call: for sentence i, t2r_translation_count
 * hypotheses, best first, each with its text, ids (ending in </s>) and score. */
int t2r_translate(t2r_translator* translator, const char* const* texts, size_t count);
int t2r_translate_ids(t2r_translator* translator, const int32_t* const* sources, const size_t* lengths, size_t count);
size_t t2r_translation_count(const t2r_translator* translator, size_t sentence);
const char* t2r_translation_text(const t2r_translator* translator, size_t sentence, size_t k); /* NULL: no such */
const int32_t* t2r_translation_ids(const t2r_translator* translator, size_t sentence, size_t k, size_t* count);
float t2r_translation_score(const t2r_translator* translator, size_t sentence, size_t k);

#ifdef __cplusplus
}
#endif

#endif /* T2R_H */
