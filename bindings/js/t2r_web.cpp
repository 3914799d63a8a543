// The native side of the JavaScript module (t2r.mjs): the calls of the C API that take structs or
// 64-bit integers, as plain 32-bit and double arguments that JavaScript passes directly (a wasm32
// build without BigInt integration splits 64-bit values, and JavaScript cannot lay out structs),
// and the kernel path, which the C API does not expose.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels.h"
#include "t2r.h"

extern "C" {

t2r_session* t2r_web_session_create(const t2r_model* model, double max_context, double memory_budget) {
  t2r_session_options options = t2r_session_default_options();
  options.max_context = int64_t(max_context);
  options.memory_budget = uint64_t(memory_budget);
  return t2r_session_create(model, &options);
}

t2r_sampler* t2r_web_sampler_create(const t2r_model* model, float temperature, int32_t top_k, float top_p,
                                    float repetition_penalty, int32_t penalty_window, double seed) {
  t2r_sampler_options options = t2r_sampler_default_options();
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.repetition_penalty = repetition_penalty;
  if (penalty_window > 0) options.penalty_window = penalty_window;
  options.seed = uint64_t(seed);
  return t2r_sampler_create(model, &options);
}

// Counts fit 32 bits here: a wasm32 memory holds less than 4 GB.
int32_t t2r_web_tokenize(const t2r_model* model, const char* text, size_t length, int32_t* ids, size_t capacity,
                         uint32_t flags) {
  return int32_t(t2r_tokenize_with(model, text, length, ids, capacity, flags));
}

int32_t t2r_web_state_save(const t2r_session* session, void* buffer, size_t capacity) {
  return int32_t(t2r_state_save(session, buffer, capacity));
}

double t2r_web_session_position(const t2r_session* session) { return double(t2r_session_position(session)); }

// The model's t2r_model_info as JSON, valid until the next call.
const char* t2r_web_model_info(const t2r_model* model) {
  static char json[1024];
  t2r_model_info i;
  t2r_model_get_info(model, &i);
  std::snprintf(json, sizeof json,
           "{\"architecture\":\"%s\",\"attention\":\"%s\",\"vocabSize\":%lld,\"dim\":%lld,\"layers\":%lld,"
           "\"heads\":%lld,\"kvHeads\":%lld,\"headDim\":%lld,\"featureDim\":%lld,\"ffnDim\":%lld,"
           "\"maxPositions\":%lld,\"parameters\":%llu,\"weightBytes\":%llu,\"fileBytes\":%llu,\"eosId\":%d,"
           "\"bosId\":%d,\"tokenizer\":\"%s\",\"addsBos\":%s}",
           i.architecture, i.attention, (long long)i.vocab_size, (long long)i.dim, (long long)i.n_layers,
           (long long)i.n_heads, (long long)i.n_kv_heads, (long long)i.head_dim, (long long)i.feature_dim,
           (long long)i.ffn_dim, (long long)i.max_positions, (unsigned long long)i.parameter_count,
           (unsigned long long)i.weight_bytes, (unsigned long long)i.file_bytes, i.eos_id, i.bos_id, i.tokenizer,
           i.adds_bos ? "true" : "false");
  return json;
}

t2r_translator* t2r_web_translator_create(const t2r_model* model, int32_t beam, int32_t nbest, float length_penalty,
                                          int32_t max_len_b, int32_t max_sentences) {
  t2r_translator_options options = t2r_translator_default_options();
  options.beam = beam;
  options.nbest = nbest;
  options.length_penalty = length_penalty;
  options.max_len_b = max_len_b;
  options.max_sentences = max_sentences;
  options.threads = 1;
  return t2r_translator_create(model, &options);
}

// Translates the '\n'-separated lines of `texts`; returns their n-best as JSON
// ([[{"text":..., "score":..., "ids":[...]}, ...], ...]), valid until the next call, or NULL.
const char* t2r_web_translate(t2r_translator* translator, const char* texts, size_t length) {
  std::vector<std::string> lines(1);
  for (size_t i = 0; i < length; ++i) {
    if (texts[i] == '\n') {
      lines.emplace_back();
    } else {
      lines.back() += texts[i];
    }
  }
  std::vector<const char*> pointers;
  for (const std::string& line : lines) pointers.push_back(line.c_str());
  if (t2r_translate(translator, pointers.data(), pointers.size()) != 0) return nullptr;
  static std::string json;
  json = "[";
  for (size_t i = 0; i < lines.size(); ++i) {
    json += i ? ",[" : "[";
    for (size_t k = 0; k < t2r_translation_count(translator, i); ++k) {
      json += k ? ",{\"text\":\"" : "{\"text\":\"";
      for (const char* c = t2r_translation_text(translator, i, k); *c; ++c) {  // JSON string escapes
        if (*c == '"' || *c == '\\') {
          json += '\\';
          json += *c;
        } else if (static_cast<unsigned char>(*c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", *c);
          json += escaped;
        } else {
          json += *c;
        }
      }
      char score[64];
      std::snprintf(score, sizeof score, "\",\"score\":%.17g,\"ids\":[", double(t2r_translation_score(translator, i, k)));
      json += score;
      size_t count = 0;
      const int32_t* ids = t2r_translation_ids(translator, i, k, &count);
      for (size_t t = 0; t < count; ++t) json += (t ? "," : "") + std::to_string(ids[t]);
      json += "]}";
    }
    json += "]";
  }
  json += "]";
  return json.c_str();
}

// "wasm-simd128" or "scalar".
const char* t2r_web_kernel_path() {
  t2r::cpu::init_kernels();
  return t2r::cpu::kernel_path().data();  // a table's name: a string literal
}

// Switches every session to a kernel path; 0 on success, -1 when this build has no such path.
int32_t t2r_web_select_kernel_path(const char* path) {
  t2r::cpu::init_kernels();
  return t2r::cpu::select_kernel_path(path) ? 0 : -1;
}

}  // extern "C"
