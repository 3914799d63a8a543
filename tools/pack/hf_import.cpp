// Hugging Face Llama checkpoints (config.json + safetensors, single or sharded), with this
// project's T2R / ELU convention: config "t2r" block and self_attn.feature_map tensors.
#include <cmath>
#include <map>
#include <memory>

#include "checkpoint_import.h"
#include "error.h"
#include "hf_config.h"
#include "hf_rotary.h"
#include "hyperparams.h"
#include "json.h"
#include "length_config.h"
#include "mapped_file.h"
#include "safetensors.h"
#include "schema.h"
#include "tokenizer_import.h"

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
  HfConfig config(dir + "/config.json");
  auto unsupported = [&](const std::string& what) { config.unsupported(what); };
  if (config.at("model_type").as_string() != "llama") unsupported("model_type must be \"llama\"");
  if (config.flag("attention_bias", false) || config.flag("mlp_bias", false)) unsupported("biases in attention or mlp");
  if (const json::Value* act = config.find("hidden_act"); act && act->as_string() != "silu") {
    unsupported("hidden_act " + act->as_string());
  }
  for (const char* key : {"torch_dtype", "dtype"}) {  // the checkpoint's storage type, either generation's name
    const json::Value* dtype = config.find(key);
    if (dtype && dtype->as_string() != "float32" && dtype->as_string() != "float16" &&
        dtype->as_string() != "bfloat16") {
      unsupported("\"" + std::string(key) + "\": " + json_text(*dtype));
    }
  }
  config.require_absent_or("partial_rotary_factor", json::Value::number(1));
  config.require_absent_or("sliding_window", json::Value());
  config.require_absent_or("use_sliding_window", json::Value::boolean(false));
  config.require_absent_or("attention_logit_softcapping", json::Value());
  config.require_absent_or("final_logit_softcapping", json::Value());

  const int64_t V = config.at("vocab_size").as_int(), d = config.at("hidden_size").as_int(),
                F = config.at("intermediate_size").as_int(), L = config.at("num_hidden_layers").as_int(),
                H = config.at("num_attention_heads").as_int();
  const int64_t Hkv = config.integer("num_key_value_heads", H);
  if (V <= 0 || d <= 0 || F <= 0 || L <= 0 || H <= 0 || Hkv <= 0 || H % Hkv != 0) unsupported("inconsistent sizes");
  const int64_t dh = config.integer("head_dim", d / H);
  if (dh <= 0 || dh % 2 != 0) unsupported("head_dim must be positive and even");
  const double norm_eps = config.number("rms_norm_eps", 1e-6);
  const int64_t max_positions = config.integer("max_position_embeddings", 2048);
  const RotarySpec rotary = read_hf_rotary(config, max_positions);
  const bool tied = config.flag("tie_word_embeddings", false);
  const json::Value* eos = config.find("eos_token_id");

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
  // This project's record of LengthDrop training: the window of queries that scores tokens and the
  // tail that always passes must be the runtime's (the rest describes the training).
  if (const json::Value* adaptive = config.find("length_adaptive")) {
    for (const char* key : {"observation_window_w", "pinned_tail"}) {
      const json::Value* value = adaptive->find(key);
      if (value && value->as_int() != int64_t(kLengthWindow)) {
        unsupported("length_adaptive." + std::string(key) + " " + json_text(*value) + " (t2r scores with the last " +
                    std::to_string(kLengthWindow) + " prompt tokens)");
      }
    }
  }
  config.check_all_read();

  Hyperparams hp;
  hp.architecture = "llama";
  hp.vocab_size = V;
  hp.dim = d;
  hp.n_layers = L;
  hp.n_heads = H;
  hp.n_kv_heads = Hkv;
  hp.head_dim = dh;
  hp.ffn_dim = F;
  hp.norm = NormKind::RmsNorm;
  hp.norm_eps = float(norm_eps);
  hp.ffn = FfnKind::SwiGlu;
  hp.embedding_scale = 1;
  hp.positions = PositionKind::Rotary;
  hp.rotary = rotary;
  hp.max_positions = max_positions;
  // Rotary sits between the projections and a T2R feature map, so the map cannot be folded.
  const AttentionSpec spec = attention == "t2r"   ? t2r_attention_spec(r, false, float(floor))
                             : attention == "elu" ? elu_attention_spec(dh, float(floor))
                                                  : softmax_attention_spec();
  hp.layers.assign(size_t(L), LayerSpec{spec});
  ImportedModel m;
  hp.to_metadata(m.metadata);
  m.metadata.set("general.source", dir);

  TensorSource source(dir);
  const auto u = [](int64_t v) { return uint64_t(v); };
  m.add(schema::kTokenEmbedding, {u(V), u(d)}, source.get("model.embed_tokens.weight", {V, d}));
  if (!tied) {
    m.add(schema::kOutput, {u(V), u(d)}, source.get("lm_head.weight", {V, d}));
  } else if (source.has("lm_head.weight")) {
    unsupported("tie_word_embeddings is true but lm_head.weight is present");
  }
  m.add(schema::weight(schema::kOutputNorm), {u(d)}, source.get("model.norm.weight", {d}));
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = "model.layers." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    m.add(schema::weight(dst(schema::kAttnNorm)), {u(d)}, source.get(src + "input_layernorm.weight", {d}));
    m.add(schema::weight(dst(schema::kFfnNorm)), {u(d)}, source.get(src + "post_attention_layernorm.weight", {d}));
    m.add(schema::weight(dst(schema::kAttnQ)), {u(H * dh), u(d)}, source.get(src + "self_attn.q_proj.weight", {H * dh, d}));
    m.add(schema::weight(dst(schema::kAttnK)), {u(Hkv * dh), u(d)}, source.get(src + "self_attn.k_proj.weight", {Hkv * dh, d}));
    m.add(schema::weight(dst(schema::kAttnV)), {u(Hkv * dh), u(d)}, source.get(src + "self_attn.v_proj.weight", {Hkv * dh, d}));
    m.add(schema::weight(dst(schema::kAttnO)), {u(d), u(H * dh)}, source.get(src + "self_attn.o_proj.weight", {d, H * dh}));
    if (attention == "t2r") {
      m.add(schema::weight(dst(schema::kFeatureMap)), {u(H), u(r), u(dh)},
            source.get(src + "self_attn.feature_map.weight", {H, r, dh}));
      m.add(schema::bias(dst(schema::kFeatureMap)), {u(H), u(r)}, source.get(src + "self_attn.feature_map.bias", {H, r}));
    }
    m.add(schema::weight(dst(schema::kFfnGate)), {u(F), u(d)}, source.get(src + "mlp.gate_proj.weight", {F, d}));
    m.add(schema::weight(dst(schema::kFfnUp)), {u(F), u(d)}, source.get(src + "mlp.up_proj.weight", {F, d}));
    m.add(schema::weight(dst(schema::kFfnDown)), {u(d), u(F)}, source.get(src + "mlp.down_proj.weight", {d, F}));
  }

  TokenizerData tokenizer = import_hf_tokenizer(dir + "/tokenizer.json", int32_t(V));
  if (eos) {  // one id, or a list of them whose first ends documents
    const bool list = eos->type() == json::Value::Type::Array;
    if (list && eos->as_array().empty()) unsupported("\"eos_token_id\": []");
    tokenizer.eos_id = int32_t((list ? eos->as_array()[0] : *eos).as_int());
  }
  put_tokenizer(m.metadata, tokenizer);
  m.description = "Hugging Face llama, " + attention + " attention" +
                  (attention == "t2r" ? " (feature size " + std::to_string(r) + ")" : "") + ", " + std::to_string(L) +
                  " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads / " + std::to_string(Hkv) +
                  " kv heads, ffn " + std::to_string(F) + ", vocab " + std::to_string(V);
  return m;
}

}  // namespace t2r
