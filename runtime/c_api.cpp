// The C API: a thin layer that turns exceptions into NULL / -1 and a per-thread error string.
#include "t2r.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "context.h"
#include "error.h"
#include "length_config.h"
#include "model.h"
#include "sampler.h"
#include "session.h"
#include "tokenizer_metadata.h"
#include "translator.h"
#ifdef T2R_VULKAN
#include "vulkan/context.h"
#include "vulkan/session.h"
#endif

struct t2r_model {
  std::unique_ptr<t2r::Model> model;
};
// Exactly one backend is set. A branch per call, not per kernel: the hot loops stay inside.
struct t2r_session {
  std::unique_ptr<t2r::Session> cpu;
#ifdef T2R_VULKAN
  std::unique_ptr<t2r::vulkan::Session> gpu;
#endif
  template <typename Call>
  auto with(Call call) {
#ifdef T2R_VULKAN
    if (gpu) return call(*gpu);
#endif
    return call(*cpu);
  }
  t2r::Session& cpu_only(const char* what) {
    if (!cpu) throw t2r::Error(std::string(what) + " is not supported by the vulkan backend yet");
    return *cpu;
  }
};
// A context on exactly one backend, as a session.
struct t2r_context {
  std::unique_ptr<t2r::Context> cpu;
#ifdef T2R_VULKAN
  std::unique_ptr<t2r::vulkan::Context> gpu;
#endif
  std::vector<t2r::BatchRow> rows;  // the C rows converted, sized for max_batch at creation
  template <typename Call>
  auto with(Call call) {
#ifdef T2R_VULKAN
    if (gpu) return call(*gpu);
#endif
    return call(*cpu);
  }
};
struct t2r_translator {
  std::unique_ptr<t2r::Translator> translator;
  std::vector<std::vector<t2r::Hypothesis>> results;  // of the last call
  std::vector<std::vector<std::string>> texts;        // their texts (empty for an ids-only model)
  const t2r::Hypothesis* find(size_t sentence, size_t k) const {
    return sentence < results.size() && k < results[sentence].size() ? &results[sentence][k] : nullptr;
  }
};
struct t2r_sampler {
  t2r::Sampler sampler;
};
struct t2r_length_config {
  const t2r::Model& model;
  t2r::LengthConfig config;
};
struct t2r_text_stream {
  const t2r::Tokenizer& tokenizer;
  t2r::Utf8Stream utf8;
  std::string text;  // reserved at creation so that pushing a token does not allocate
};

namespace {

thread_local std::string g_last_error;

// Runs `body`; on any exception records its message and returns `failure`.
template <typename T, typename Body>
T guarded(T failure, Body body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
  } catch (const std::exception& e) {
    g_last_error = e.what();
  }
  return failure;
}

bool null_argument(const void* p, const char* name) {
  if (p) return false;
  g_last_error = std::string(name) + " is NULL";
  return true;
}

#ifdef T2R_VULKAN
// The C API's device text: an index, or part of a device's name; NULL or empty: the best one.
t2r::vulkan::DeviceOptions device_options(const char* text) {
  t2r::vulkan::DeviceOptions options;
  const std::string device = text ? text : "";
  if (!device.empty() && device.find_first_not_of("0123456789") == std::string::npos) {
    options.index = std::stoi(device);
  } else {
    options.name = device;
  }
  return options;
}
#endif

enum class Backend { Cpu, Vulkan };

// The backend an options struct names: "cpu" (the default, null) or, where this build has it, "vulkan".
Backend backend_named(const char* name) {
  const std::string backend = name ? name : "cpu";
  if (backend == "cpu") return Backend::Cpu;
#ifdef T2R_VULKAN
  if (backend == "vulkan") return Backend::Vulkan;
#else
  if (backend == "vulkan") throw t2r::Error("this build has no vulkan backend (configure with the Vulkan SDK and glslc)");
#endif
  throw t2r::Error("unknown backend '" + backend + "' (cpu or vulkan)");
}

}  // namespace

extern "C" {

const char* t2r_last_error(void) { return g_last_error.c_str(); }

t2r_model* t2r_model_load(const char* path) {
  if (null_argument(path, "path")) return nullptr;
  return guarded<t2r_model*>(nullptr, [&] { return new t2r_model{t2r::Model::load(path)}; });
}

void t2r_model_free(t2r_model* model) { delete model; }

void t2r_model_get_info(const t2r_model* model, t2r_model_info* info) {
  const t2r::Hyperparams& hp = model->model->hparams();
  info->architecture = hp.architecture.c_str();
  info->attention = hp.attention_summary().data();  // static text
  info->vocab_size = hp.vocab_size;
  info->dim = hp.dim;
  info->n_layers = hp.n_layers;
  info->n_heads = hp.n_heads;
  info->n_kv_heads = hp.n_kv_heads;
  info->head_dim = hp.head_dim;
  info->feature_dim = hp.feature_dim();
  info->ffn_dim = hp.ffn_dim;
  info->max_positions = hp.max_positions;
  info->parameter_count = model->model->parameter_count();
  info->weight_bytes = model->model->weight_bytes();
  info->file_bytes = model->model->file().file_size();
  info->eos_id = model->model->eos_id();
  const bool text = model->model->has_tokenizer();
  info->bos_id = text ? model->model->tokenizer().bos_id() : -1;
  info->tokenizer = text ? t2r::tokenizer_kind_name(model->model->tokenizer().data().kind) : "none";
  info->adds_bos = text && model->model->tokenizer().data().add_bos;
  info->encoder_layers = hp.encoder.n_layers;
  info->source_vocab_size = hp.encoder.vocab_size;
}

int64_t t2r_tokenize_with(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity,
                          uint32_t flags) {
  if (null_argument(model, "model") || (length > 0 && null_argument(text, "text"))) return -1;
  return guarded<int64_t>(-1, [&] {
    if (flags & ~uint32_t(T2R_TOKENIZE_NO_BOS_EOS | T2R_TOKENIZE_SPECIAL_AS_TEXT)) {
      throw t2r::Error("t2r_tokenize_with: unknown flags " + std::to_string(flags));
    }
    t2r::EncodeOptions options;
    options.add_bos_eos = !(flags & T2R_TOKENIZE_NO_BOS_EOS);
    options.parse_special = !(flags & T2R_TOKENIZE_SPECIAL_AS_TEXT);
    std::vector<int32_t> all = model->model->tokenizer().encode(std::string_view(text, length), options);
    if (all.size() <= capacity && !all.empty()) std::memcpy(ids, all.data(), all.size() * sizeof(int32_t));
    return int64_t(all.size());
  });
}

int64_t t2r_tokenize(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity) {
  return t2r_tokenize_with(model, text, length, ids, capacity, 0);
}

const char* t2r_token_bytes(const t2r_model* model, int32_t id, size_t* length) {
  // An ids-only model has no text for any id.
  std::string_view bytes = model->model->has_tokenizer() ? model->model->tokenizer().token_bytes(id) : "";
  if (length) *length = bytes.size();
  return bytes.data();
}

t2r_text_stream* t2r_text_stream_create(const t2r_model* model) {
  if (null_argument(model, "model")) return nullptr;
  return guarded<t2r_text_stream*>(nullptr, [&] {
    const t2r::Tokenizer& tokenizer = model->model->tokenizer();
    size_t longest = 0;
    for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) longest = std::max(longest, tokenizer.token_bytes(id).size());
    auto stream = new t2r_text_stream{tokenizer, {}, {}};
    // Worst case: every byte of the longest token plus 3 pending ones turns into U+FFFD.
    stream->text.reserve(3 * (longest + 4));
    return stream;
  });
}

void t2r_text_stream_free(t2r_text_stream* stream) { delete stream; }

const char* t2r_text_stream_push(t2r_text_stream* stream, int32_t token, size_t* length) {
  *length = stream->utf8.push(stream->tokenizer.token_bytes(token), stream->text);
  return stream->text.c_str();
}

const char* t2r_text_stream_finish(t2r_text_stream* stream, size_t* length) {
  *length = stream->utf8.finish(stream->text);
  return stream->text.c_str();
}

t2r_session_options t2r_session_default_options(void) {
  return t2r_session_options{0, 0, 0, nullptr, nullptr, 0, 0};
}

t2r_session* t2r_session_create(const t2r_model* model, const t2r_session_options* options) {
  if (null_argument(model, "model")) return nullptr;
  const t2r_session_options o = options ? *options : t2r_session_default_options();
  return guarded<t2r_session*>(nullptr, [&] {
    auto session = std::make_unique<t2r_session>();
    if (backend_named(o.backend) == Backend::Cpu) {
      t2r::SessionOptions cpu;
      cpu.max_context = o.max_context;
      cpu.threads = o.threads;
      if (o.prefill_chunk != 0) cpu.prefill_chunk = o.prefill_chunk;
      cpu.max_adaptive_prompt = o.max_adaptive_prompt;
      cpu.memory_budget = o.memory_budget;
      session->cpu = std::make_unique<t2r::Session>(*model->model, cpu);
    } else {
#ifdef T2R_VULKAN
      t2r::vulkan::SessionOptions gpu;
      gpu.max_context = o.max_context;
      if (o.prefill_chunk != 0) gpu.prefill_chunk = o.prefill_chunk;
      gpu.memory_budget = o.memory_budget;
      gpu.device = device_options(o.device);
      session->gpu = std::make_unique<t2r::vulkan::Session>(*model->model, gpu);
#endif
    }
    return session.release();
  });
}

void t2r_session_free(t2r_session* session) { delete session; }
size_t t2r_session_bytes(const t2r_session* session) {
  return const_cast<t2r_session*>(session)->with([](auto& s) { return s.bytes(); });
}
void t2r_session_reset(t2r_session* session) {
  if (null_argument(session, "session")) return;
  session->with([](auto& s) { s.reset(); });
}
int64_t t2r_session_position(const t2r_session* session) {
  return const_cast<t2r_session*>(session)->with([](auto& s) { return s.position(); });
}

const float* t2r_step(t2r_session* session, int32_t token) {
  if (null_argument(session, "session")) return nullptr;
  return guarded<const float*>(nullptr, [&] { return session->with([&](auto& s) { return s.step(token); }); });
}

const float* t2r_prefill(t2r_session* session, const int32_t* tokens, size_t count) {
  if (null_argument(session, "session") || (count > 0 && null_argument(tokens, "tokens"))) return nullptr;
  return guarded<const float*>(nullptr,
                               [&] { return session->with([&](auto& s) { return s.prefill(tokens, count); }); });
}

const float* t2r_session_logits(const t2r_session* session) {
  if (null_argument(session, "session")) return nullptr;
  return const_cast<t2r_session*>(session)->with([](auto& s) -> const float* {
    if (s.position() == 0) {
      g_last_error = "the session is empty: it has no logits before its first token";
      return nullptr;
    }
    return s.logits();
  });
}

t2r_length_config* t2r_length_config_create(const t2r_model* model, const char* text) {
  if (null_argument(model, "model") || null_argument(text, "text")) return nullptr;
  return guarded<t2r_length_config*>(
      nullptr, [&] { return new t2r_length_config{*model->model, t2r::length_config_for(*model->model, text)}; });
}

void t2r_length_config_free(t2r_length_config* config) { delete config; }

double t2r_length_config_flops_fraction(const t2r_length_config* config, size_t tokens) {
  return t2r::prefill_flops_fraction(config->model.hparams(), config->config, tokens);
}

const float* t2r_prefill_adaptive(t2r_session* session, const int32_t* tokens, size_t count,
                                  const t2r_length_config* config) {
  if ((count > 0 && null_argument(tokens, "tokens")) || null_argument(config, "config")) return nullptr;
  return guarded<const float*>(nullptr, [&] {
    return session->cpu_only("length-adaptive prefill").prefill_adaptive(tokens, count, config->config);
  });
}

int64_t t2r_state_save(const t2r_session* session, void* buffer, size_t capacity) {
  return guarded<int64_t>(-1, [&] {
    return const_cast<t2r_session*>(session)->with([&](const auto& s) {
      const size_t needed = s.state_size();
      if (needed <= capacity) s.save_state(buffer, capacity);
      return int64_t(needed);
    });
  });
}

int t2r_state_restore(t2r_session* session, const void* buffer, size_t size) {
  if (null_argument(buffer, "buffer")) return -1;
  return guarded<int>(-1, [&] {
    session->with([&](auto& s) { s.restore_state(buffer, size); });
    return 0;
  });
}

t2r_context_options t2r_context_default_options(void) {
  return t2r_context_options{0, 0, 0, 0, 0, nullptr, nullptr, 0, 0, 0};
}

t2r_context* t2r_context_create(const t2r_model* model, const t2r_context_options* options) {
  if (null_argument(model, "model")) return nullptr;
  const t2r_context_options o = options ? *options : t2r_context_default_options();
  return guarded<t2r_context*>(nullptr, [&] {
    auto context = std::make_unique<t2r_context>();
    if (backend_named(o.backend) == Backend::Cpu) {
      t2r::ContextOptions cpu;
      if (o.max_sequences != 0) cpu.max_sequences = o.max_sequences;
      if (o.max_batch != 0) cpu.max_batch = o.max_batch;
      cpu.max_outputs = o.max_outputs;
      cpu.max_context = o.max_context;
      cpu.threads = o.threads;
      cpu.memory_budget = o.memory_budget;
      cpu.max_sources = o.max_sources;
      cpu.max_source_length = o.max_source_length;
      context->cpu = std::make_unique<t2r::Context>(*model->model, cpu);
      context->rows.resize(context->cpu->max_batch());
    } else {
#ifdef T2R_VULKAN
      t2r::vulkan::ContextOptions gpu;
      if (o.max_sequences != 0) gpu.max_sequences = o.max_sequences;
      if (o.max_batch != 0) gpu.max_batch = o.max_batch;
      gpu.max_outputs = o.max_outputs;
      gpu.max_context = o.max_context;
      gpu.memory_budget = o.memory_budget;
      gpu.device = device_options(o.device);
      context->gpu = std::make_unique<t2r::vulkan::Context>(*model->model, gpu);
      context->rows.resize(context->gpu->max_batch());
#endif
    }
    return context.release();
  });
}

void t2r_context_free(t2r_context* context) { delete context; }

size_t t2r_context_bytes(const t2r_context* context) {
  return const_cast<t2r_context*>(context)->with([](auto& c) { return c.bytes(); });
}

const float* t2r_decode(t2r_context* context, const t2r_batch_row* rows, size_t count, size_t* outputs) {
  if (null_argument(context, "context") || (count > 0 && null_argument(rows, "rows"))) return nullptr;
  return guarded<const float*>(nullptr, [&] {
    t2r::check_batch_size(count, context->rows.size());  // before the rows are converted
    for (size_t i = 0; i < count; ++i) {
      context->rows[i] = t2r::BatchRow{rows[i].token, rows[i].sequence, rows[i].position, rows[i].logits != 0};
    }
    return context->with([&](auto& c) {
      const float* logits = c.decode(context->rows.data(), count);
      if (outputs) *outputs = c.outputs();
      return logits;
    });
  });
}

int64_t t2r_sequence_position(const t2r_context* context, int32_t sequence) {
  if (null_argument(context, "context")) return -1;
  return guarded<int64_t>(-1, [&] {
    return const_cast<t2r_context*>(context)->with([&](auto& c) { return c.position(sequence); });
  });
}

int t2r_sequence_clear(t2r_context* context, int32_t sequence) {
  if (null_argument(context, "context")) return -1;
  return guarded<int>(-1, [&] {
    context->with([&](auto& c) { c.clear(sequence); });
    return 0;
  });
}

int t2r_sequence_copy(t2r_context* context, int32_t from, int32_t to) {
  if (null_argument(context, "context")) return -1;
  return guarded<int>(-1, [&] {
    context->with([&](auto& c) { c.copy(from, to); });
    return 0;
  });
}

int64_t t2r_sequence_save(const t2r_context* context, int32_t sequence, void* buffer, size_t capacity) {
  if (null_argument(context, "context")) return -1;
  return guarded<int64_t>(-1, [&] {
    return const_cast<t2r_context*>(context)->with([&](auto& c) {
      const size_t needed = c.state_size(sequence);
      if (needed <= capacity) {
        if (!buffer) throw t2r::Error("buffer is NULL");
        c.save(sequence, buffer, capacity);
      }
      return int64_t(needed);
    });
  });
}

int t2r_sequence_restore(t2r_context* context, int32_t sequence, const void* buffer, size_t size) {
  if (null_argument(context, "context") || null_argument(buffer, "buffer")) return -1;
  return guarded<int>(-1, [&] {
    context->with([&](auto& c) { c.restore(sequence, buffer, size); });
    return 0;
  });
}

int t2r_context_encode(t2r_context* context, int32_t source, const int32_t* tokens, size_t count) {
  if (null_argument(context, "context") || (count > 0 && null_argument(tokens, "tokens"))) return -1;
  return guarded<int>(-1, [&] {
    if (!context->cpu) throw t2r::Error("translation models run on the cpu backend");
    context->cpu->encode(source, tokens, count);
    return 0;
  });
}

int t2r_sequence_attach(t2r_context* context, int32_t sequence, int32_t source) {
  if (null_argument(context, "context")) return -1;
  return guarded<int>(-1, [&] {
    if (!context->cpu) throw t2r::Error("translation models run on the cpu backend");
    context->cpu->attach(sequence, source);
    return 0;
  });
}

int64_t t2r_tokenize_source(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity) {
  if (null_argument(model, "model") || (length > 0 && null_argument(text, "text"))) return -1;
  return guarded<int64_t>(-1, [&] {
    const std::vector<int32_t> all = t2r::translation_source_ids(*model->model, std::string_view(text, length));
    if (all.size() <= capacity) std::memcpy(ids, all.data(), all.size() * sizeof(int32_t));
    return int64_t(all.size());
  });
}

t2r_translator_options t2r_translator_default_options(void) {
  const t2r::TranslatorOptions d;
  return t2r_translator_options{d.beam,          d.nbest,     d.length_penalty,    d.max_len_a,
                                d.max_len_b,     d.min_len,   d.max_sentences,     d.max_source_length,
                                d.threads,       t2r_sampler_default_options()};
}

t2r_translator* t2r_translator_create(const t2r_model* model, const t2r_translator_options* options) {
  if (null_argument(model, "model")) return nullptr;
  const t2r_translator_options o = options ? *options : t2r_translator_default_options();
  return guarded<t2r_translator*>(nullptr, [&] {
    t2r::TranslatorOptions t;
    t.beam = o.beam;
    t.nbest = o.nbest;
    t.length_penalty = o.length_penalty;
    t.max_len_a = o.max_len_a;
    t.max_len_b = o.max_len_b;
    t.min_len = o.min_len;
    t.max_sentences = o.max_sentences;
    t.max_source_length = o.max_source_length;
    t.threads = o.threads;
    const t2r_sampler_options& p = o.sampling;
    t.sampler = t2r::SamplerOptions{p.temperature, p.top_k, p.top_p, p.repetition_penalty, p.penalty_window, p.seed};
    return new t2r_translator{std::make_unique<t2r::Translator>(*model->model, t), {}, {}};
  });
}

void t2r_translator_free(t2r_translator* translator) { delete translator; }

size_t t2r_translator_bytes(const t2r_translator* translator) { return translator->translator->context().bytes(); }

int t2r_translate_ids(t2r_translator* translator, const int32_t* const* sources, const size_t* lengths, size_t count) {
  if (null_argument(translator, "translator") || (count > 0 && (null_argument(sources, "sources") ||
                                                                null_argument(lengths, "lengths")))) {
    return -1;
  }
  return guarded<int>(-1, [&] {
    std::vector<std::vector<int32_t>> ids(count);
    for (size_t i = 0; i < count; ++i) {
      if (lengths[i] > 0 && !sources[i]) throw t2r::Error("source " + std::to_string(i) + " is NULL");
      ids[i].assign(sources[i], sources[i] + lengths[i]);
    }
    auto results = translator->translator->translate_all(ids);
    const t2r::Model& model = translator->translator->context().model();
    std::vector<std::vector<std::string>> texts(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      for (const t2r::Hypothesis& h : results[i]) {
        texts[i].push_back(model.has_tokenizer() ? t2r::translation_text(model, h.ids) : std::string());
      }
    }
    translator->results = std::move(results);
    translator->texts = std::move(texts);
    return 0;
  });
}

int t2r_translate(t2r_translator* translator, const char* const* texts, size_t count) {
  if (null_argument(translator, "translator") || (count > 0 && null_argument(texts, "texts"))) return -1;
  std::vector<std::vector<int32_t>> sources;
  const bool tokenized = guarded<bool>(false, [&] {
    const t2r::Model& model = translator->translator->context().model();
    for (size_t i = 0; i < count; ++i) {
      if (!texts[i]) throw t2r::Error("text " + std::to_string(i) + " is NULL");
      sources.push_back(t2r::translation_source_ids(model, texts[i]));
    }
    return true;
  });
  if (!tokenized) return -1;
  std::vector<const int32_t*> pointers;
  std::vector<size_t> lengths;
  for (const auto& s : sources) {
    pointers.push_back(s.data());
    lengths.push_back(s.size());
  }
  return t2r_translate_ids(translator, pointers.data(), lengths.data(), count);
}

size_t t2r_translation_count(const t2r_translator* translator, size_t sentence) {
  return sentence < translator->results.size() ? translator->results[sentence].size() : 0;
}

const char* t2r_translation_text(const t2r_translator* translator, size_t sentence, size_t k) {
  return translator->find(sentence, k) ? translator->texts[sentence][k].c_str() : nullptr;
}

const int32_t* t2r_translation_ids(const t2r_translator* translator, size_t sentence, size_t k, size_t* count) {
  const t2r::Hypothesis* h = translator->find(sentence, k);
  if (count) *count = h ? h->ids.size() : 0;
  return h ? h->ids.data() : nullptr;
}

float t2r_translation_score(const t2r_translator* translator, size_t sentence, size_t k) {
  const t2r::Hypothesis* h = translator->find(sentence, k);
  return h ? h->score : 0.0f;
}

t2r_sampler_options t2r_sampler_default_options(void) {
  t2r::SamplerOptions d;
  return t2r_sampler_options{d.temperature, d.top_k, d.top_p, d.repetition_penalty, d.penalty_window, d.seed};
}

t2r_sampler* t2r_sampler_create(const t2r_model* model, const t2r_sampler_options* options) {
  if (null_argument(model, "model")) return nullptr;
  const t2r_sampler_options given = options ? *options : t2r_sampler_default_options();
  return guarded<t2r_sampler*>(nullptr, [&] {
    t2r::SamplerOptions o{given.temperature,        given.top_k,          given.top_p,
                          given.repetition_penalty, given.penalty_window, given.seed};
    return new t2r_sampler{t2r::Sampler(int32_t(model->model->hparams().vocab_size), o)};
  });
}

void t2r_sampler_free(t2r_sampler* sampler) { delete sampler; }
int32_t t2r_sample(t2r_sampler* sampler, const float* logits) { return sampler->sampler.sample(logits); }
void t2r_sampler_accept(t2r_sampler* sampler, int32_t token) { sampler->sampler.accept(token); }

}  // extern "C"
