#include "hf_common.h"

#include "length_config.h"
#include "mapped_file.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

namespace t2r {

void check_storage_dtype(HfConfig& config) {
  for (const char* key : {"torch_dtype", "dtype"}) {  // either generation's name
    const json::Value* dtype = config.find(key);
    if (dtype && dtype->as_string() != "float32" && dtype->as_string() != "float16" &&
        dtype->as_string() != "bfloat16") {
      config.unsupported("\"" + std::string(key) + "\": " + json_text(*dtype));
    }
  }
}

int64_t read_eos(HfConfig& config, int64_t vocab_size) {
  const json::Value* eos = config.find("eos_token_id");
  if (!eos) return -1;
  const bool list = eos->type() == json::Value::Type::Array;
  if (list && eos->as_array().empty()) config.unsupported("\"eos_token_id\": []");
  const int64_t id = (list ? eos->as_array()[0] : *eos).as_int();
  if (id < 0 || id >= vocab_size) config.unsupported("\"eos_token_id\": " + json_text(*eos) + " is outside the vocabulary");
  return id;
}


AttentionSpec read_t2r_block(HfConfig& config, int64_t head_dim) {
  const json::Value* t2r = config.find("t2r");
  if (!t2r) return softmax_attention_spec();
  const std::string map = t2r->at("feature_map").as_string();
  const double floor = t2r->at("denominator_floor").as_number();
  if (!(floor > 0)) config.unsupported("t2r.denominator_floor must be positive");
  if (map == "elu+1") return elu_attention_spec(head_dim, float(floor));
  if (map != "relu") config.unsupported("t2r.feature_map '" + map + "'");
  const int64_t r = t2r->at("feature_dim").as_int();
  if (r <= 0) config.unsupported("t2r.feature_dim must be positive");
  if (const json::Value* placement = t2r->find("placement");
      placement && placement->as_string() != "after_rope_and_query_scale") {
    config.unsupported("t2r.placement " + placement->as_string());
  }
  // Unfolded: rotary (where the layout has it) sits between the projections and the map.
  return t2r_attention_spec(r, false, float(floor));
}

void check_length_adaptive(HfConfig& config) {
  const json::Value* adaptive = config.find("length_adaptive");
  if (!adaptive) return;
  for (const char* key : {"observation_window_w", "pinned_tail"}) {
    const json::Value* value = adaptive->find(key);
    if (value && value->as_int() != int64_t(kLengthWindow)) {
      config.unsupported("length_adaptive." + std::string(key) + " " + json_text(*value) + " (t2r scores with the last " +
                         std::to_string(kLengthWindow) + " prompt tokens)");
    }
  }
}

std::string attention_text(const AttentionSpec& spec) {
  const std::string kind(attention_kind_name(spec));
  const bool relu = spec.is_linear() && spec.linear.feature_map == FeatureMap::ReluMlp;
  const bool sized = spec.is_linear() && (relu || spec.linear.feature_map == FeatureMap::Hedgehog);
  const std::string window = spec.is_linear() && spec.linear.window > 0
                                 ? ", a " + std::string(name_of(spec.linear.window_mix)) + " window of " +
                                       std::to_string(spec.linear.window)
                                 : "";
  const std::string decay = spec.is_linear() && spec.linear.decay != Decay::None
                                ? ", " + std::string(name_of(spec.linear.decay)) + " decay"
                                : "";
  return kind + " attention" + (sized ? " (feature size " + std::to_string(spec.linear.features) + ")" : "") + decay +
         window;
}

void put_hf_tokenizer(ImportedModel& out, const std::string& dir, int64_t vocab_size, int64_t eos_id) {
  const std::string path = dir + "/tokenizer.json";
  if (!is_regular_file(path)) {
    out.warnings.push_back(path + " is missing: the model is ids-only (t2r-run --ids, --dump-logits, --ppl-ids; "
                           "text prompts are refused)");
    if (eos_id >= 0) out.metadata.set("tokenizer.eos_id", eos_id);  // Model reads it without a tokenizer
    return;
  }
  TokenizerData tokenizer = import_hf_tokenizer(path, int32_t(vocab_size));
  if (eos_id >= 0) tokenizer.eos_id = int32_t(eos_id);
  write_tokenizer_metadata(tokenizer, out.metadata);
}

}  // namespace t2r
