// Hugging Face Llama checkpoints (config.json + safetensors, single or sharded), with this
// project's T2R / ELU convention: config "t2r" block and self_attn.feature_map tensors.
#include <cmath>
#include <map>
#include <memory>

#include "checkpoint_import.h"
#include "error.h"
#include "json.h"
#include "mapped_file.h"
#include "safetensors.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

namespace t2r {
namespace {

// All tensors of a checkpoint, whether in one file or in shards named by the index.
class TensorSource {
 public:
  explicit TensorSource(const std::string& dir) {
    const std::string index_path = dir + "/model.safetensors.index.json";
    if (is_regular_file(index_path)) {
      json::Value index = json::parse(MappedFile(index_path).bytes());
      std::map<std::string, size_t> shard_of_file;
      for (const auto& [name, file] : index.at("weight_map").as_object()) {
        const std::string& shard = file.as_string();
        if (shard.find('/') != std::string::npos || shard.rfind("..", 0) == 0) {
          throw Error(index_path + ": shard name '" + shard + "' must be a plain file name");
        }
        auto it = shard_of_file.find(shard);
        if (it == shard_of_file.end()) {
          it = shard_of_file.emplace(shard, shards_.size()).first;
          shards_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + shard));
        }
        located_[name] = shards_[it->second].get();
      }
    } else {
      shards_.push_back(std::make_unique<SafetensorsFile>(dir + "/model.safetensors"));
      for (const auto& name : shards_[0]->names()) located_[name] = shards_[0].get();
    }
  }

  bool has(const std::string& name) const { return located_.count(name) != 0; }

  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) const {
    auto it = located_.find(name);
    if (it == located_.end()) throw Error("checkpoint has no tensor '" + name + "'");
    const SafetensorsTensor& t = it->second->at(name);
    if (t.shape != shape) throw Error(it->second->label() + ": tensor '" + name + "' has an unexpected shape");
    return tensor_to_f32(t);
  }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> located_;
};

}  // namespace

ImportedModel import_huggingface(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const json::Value config = json::parse(MappedFile(config_path).bytes());
  auto unsupported = [&](const std::string& what) -> void {
    throw Error(config_path + ": unsupported model: " + what);
  };
  const json::Value* model_type = config.find("model_type");
  if (!model_type || model_type->as_string() != "llama") unsupported("model_type must be \"llama\"");
  auto flag = [&](const char* key, bool fallback) {
    const json::Value* v = config.find(key);
    return v && !v->is_null() ? v->as_bool() : fallback;
  };
  if (flag("attention_bias", false) || flag("mlp_bias", false)) unsupported("biases in attention or mlp");
  if (const json::Value* act = config.find("hidden_act"); act && act->as_string() != "silu") {
    unsupported("hidden_act " + act->as_string());
  }
  if (const json::Value* scaling = config.find("rope_scaling"); scaling && !scaling->is_null()) {
    unsupported("rope_scaling");
  }

  const int64_t V = config.at("vocab_size").as_int(), d = config.at("hidden_size").as_int(),
                F = config.at("intermediate_size").as_int(), L = config.at("num_hidden_layers").as_int(),
                H = config.at("num_attention_heads").as_int();
  const int64_t Hkv = config.find("num_key_value_heads") ? config.at("num_key_value_heads").as_int() : H;
  if (V <= 0 || d <= 0 || F <= 0 || L <= 0 || H <= 0 || Hkv <= 0 || H % Hkv != 0) unsupported("inconsistent sizes");
  const json::Value* head_dim_value = config.find("head_dim");
  const int64_t dh = head_dim_value && !head_dim_value->is_null() ? head_dim_value->as_int() : d / H;
  if (dh <= 0 || dh % 2 != 0) unsupported("head_dim must be positive and even");

  std::string attention = "softmax";
  int64_t r = 0;
  double floor = 0;
  if (const json::Value* t2r = config.find("t2r")) {
    const std::string map = t2r->at("feature_map").as_string();
    floor = t2r->at("denominator_floor").as_number();
    if (!(floor > 0)) unsupported("t2r.denominator_floor must be positive");
    if (map == "relu") {
      attention = "t2r";
      r = t2r->at("feature_dim").as_int();
      if (r <= 0) unsupported("t2r.feature_dim must be positive");
      if (const json::Value* placement = t2r->find("placement");
          placement && placement->as_string() != "after_rope_and_query_scale") {
        unsupported("t2r.placement " + placement->as_string());
      }
    } else if (map == "elu+1") {
      attention = "elu";
    } else {
      unsupported("t2r.feature_map '" + map + "'");
    }
  }

  ImportedModel m;
  m.metadata.set("general.architecture", std::string("llama"));
  m.metadata.set("general.source", dir);
  m.metadata.set("model.vocab_size", V);
  m.metadata.set("model.dim", d);
  m.metadata.set("model.n_layers", L);
  m.metadata.set("model.n_heads", H);
  m.metadata.set("model.n_kv_heads", Hkv);
  m.metadata.set("model.head_dim", dh);
  m.metadata.set("model.ffn_dim", F);
  m.metadata.set("model.norm", std::string("rmsnorm"));
  m.metadata.set("model.norm_eps", config.find("rms_norm_eps") ? config.at("rms_norm_eps").as_number() : 1e-6);
  m.metadata.set("model.ffn", std::string("swiglu"));
  m.metadata.set("model.embedding_scale", 1.0);
  m.metadata.set("model.positions", std::string("rotary"));
  m.metadata.set("model.rope_theta", config.find("rope_theta") ? config.at("rope_theta").as_number() : 10000.0);
  m.metadata.set("model.max_positions",
                 config.find("max_position_embeddings") ? config.at("max_position_embeddings").as_int() : 2048);
  m.metadata.set("attention.kind", attention);
  if (attention != "softmax") m.metadata.set("attention.denominator_floor", floor);
  if (attention == "t2r") {
    m.metadata.set("attention.feature_dim", r);
    m.metadata.set("attention.feature_map_folded", int64_t(0));  // rotary sits between projection and map
  }

  TensorSource source(dir);
  const auto u = [](int64_t v) { return uint64_t(v); };
  m.add("token_embedding", {u(V), u(d)}, source.get("model.embed_tokens.weight", {V, d}));
  if (!flag("tie_word_embeddings", false)) {
    m.add("output", {u(V), u(d)}, source.get("lm_head.weight", {V, d}));
  } else if (source.has("lm_head.weight")) {
    unsupported("tie_word_embeddings is true but lm_head.weight is present");
  }
  m.add("output_norm.weight", {u(d)}, source.get("model.norm.weight", {d}));
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = "model.layers." + std::to_string(l) + ".";
    const std::string dst = "layers." + std::to_string(l) + ".";
    m.add(dst + "attn_norm.weight", {u(d)}, source.get(src + "input_layernorm.weight", {d}));
    m.add(dst + "ffn_norm.weight", {u(d)}, source.get(src + "post_attention_layernorm.weight", {d}));
    m.add(dst + "attn.q.weight", {u(H * dh), u(d)}, source.get(src + "self_attn.q_proj.weight", {H * dh, d}));
    m.add(dst + "attn.k.weight", {u(Hkv * dh), u(d)}, source.get(src + "self_attn.k_proj.weight", {Hkv * dh, d}));
    m.add(dst + "attn.v.weight", {u(Hkv * dh), u(d)}, source.get(src + "self_attn.v_proj.weight", {Hkv * dh, d}));
    m.add(dst + "attn.o.weight", {u(d), u(H * dh)}, source.get(src + "self_attn.o_proj.weight", {d, H * dh}));
    if (attention == "t2r") {
      m.add(dst + "attn.feature_map.weight", {u(H), u(r), u(dh)},
            source.get(src + "self_attn.feature_map.weight", {H, r, dh}));
      m.add(dst + "attn.feature_map.bias", {u(H), u(r)}, source.get(src + "self_attn.feature_map.bias", {H, r}));
    }
    m.add(dst + "ffn.gate.weight", {u(F), u(d)}, source.get(src + "mlp.gate_proj.weight", {F, d}));
    m.add(dst + "ffn.up.weight", {u(F), u(d)}, source.get(src + "mlp.up_proj.weight", {F, d}));
    m.add(dst + "ffn.down.weight", {u(d), u(F)}, source.get(src + "mlp.down_proj.weight", {d, F}));
  }

  TokenizerData tokenizer = import_hf_tokenizer(dir + "/tokenizer.json", int32_t(V));
  if (const json::Value* eos = config.find("eos_token_id"); eos && eos->type() == json::Value::Type::Number) {
    tokenizer.eos_id = int32_t(eos->as_int());
  }
  write_tokenizer_metadata(tokenizer, m.metadata);
  m.description = "Hugging Face llama, " + attention + " attention" +
                  (attention == "t2r" ? " (feature size " + std::to_string(r) + ")" : "") + ", " + std::to_string(L) +
                  " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads / " + std::to_string(Hkv) +
                  " kv heads, ffn " + std::to_string(F) + ", vocab " + std::to_string(V);
  return m;
}

}  // namespace t2r
