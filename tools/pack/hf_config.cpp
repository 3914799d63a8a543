#include "hf_config.h"

#include <cmath>
#include <cstdio>

#include "error.h"
#include "mapped_file.h"

namespace t2r {
namespace {

// Keys that never change what a checkpoint computes at inference: training settings, generation
// defaults (t2r-run's flags set those), labels and bookkeeping. Anything not read by an importer and
// not listed here is refused.
const std::set<std::string>& ignored_keys() {
  static const std::set<std::string> keys = {
      // bookkeeping
      "_name_or_path", "architectures", "transformers_version", "model_name", "auto_map", "tokenizer_class",
      // training
      "initializer_range", "attention_dropout", "hidden_dropout", "dropout", "embd_pdrop", "resid_pdrop",
      "attn_pdrop", "summary_first_dropout",
      // GPT2DoubleHeadsModel's classification head, which a language model does not have
      "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels", "gradient_checkpointing", "use_cache", "pretraining_tp",
      "torchscript", "tf_legacy_loss", "problem_type", "finetuning_task", "id2label", "label2id",
      // output options of the Python model
      "output_attentions", "output_hidden_states", "return_dict", "use_return_dict",
      "chunk_size_feed_forward", "return_dict_in_generate", "output_scores",
      // token ids that only generation and padding use (the tokenizer's files define the text)
      "pad_token_id", "bos_token_id", "sep_token_id", "decoder_start_token_id",
      // generation defaults
      "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
      "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
      "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
      "num_return_sequences", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "task_specific_params",
      "prefix"};
  return keys;
}

}  // namespace

std::string json_text(const json::Value& value) {
  std::string s;
  switch (value.type()) {
    case json::Value::Type::Null: s = "null"; break;
    case json::Value::Type::Bool: s = value.as_bool() ? "true" : "false"; break;
    case json::Value::Type::Number: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", value.as_number());
      s = buf;
      break;
    }
    case json::Value::Type::String: s = "\"" + value.as_string() + "\""; break;
    case json::Value::Type::Array: {
      s = "[";
      for (const auto& item : value.as_array()) s += (s.size() > 1 ? ", " : "") + json_text(item);
      s += "]";
      break;
    }
    case json::Value::Type::Object: {
      s = "{";
      for (const auto& [key, item] : value.as_object()) {
        s += (s.size() > 1 ? ", \"" : "\"") + key + "\": " + json_text(item);
      }
      s += "}";
      break;
    }
  }
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

HfConfig::HfConfig(const std::string& path) : path_(path) {
  try {
    root_ = json::parse(MappedFile(path).bytes());
    root_.as_object();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

const json::Value* HfConfig::find(const std::string& key) {
  read_.insert(key);
  const json::Value* v = root_.find(key);
  return v && !v->is_null() ? v : nullptr;
}

const json::Value& HfConfig::at(const std::string& key) {
  const json::Value* v = find(key);
  if (!v) unsupported("no \"" + key + "\"");
  return *v;
}

int64_t HfConfig::integer(const std::string& key, int64_t fallback) {
  const json::Value* v = find(key);
  return v ? v->as_int() : fallback;
}

double HfConfig::number(const std::string& key, double fallback) {
  const json::Value* v = find(key);
  return v ? v->as_number() : fallback;
}

bool HfConfig::flag(const std::string& key, bool fallback) {
  const json::Value* v = find(key);
  return v ? v->as_bool() : fallback;
}

void HfConfig::unsupported(const std::string& what) const { throw Error(path_ + ": unsupported model: " + what); }

void HfConfig::require_absent_or(const std::string& key, const json::Value& allowed) {
  const json::Value* v = find(key);
  if (!v || json_text(*v) == json_text(allowed)) return;
  unsupported("\"" + key + "\": " + json_text(*v));
}

void HfConfig::check_all_read() const {
  for (const auto& [key, value] : root_.as_object()) {
    if (read_.count(key) || ignored_keys().count(key)) continue;
    unsupported("\"" + key + "\": " + json_text(value) + " is not understood (a key that may change the math is "
                "refused rather than guessed)");
  }
}

}  // namespace t2r
