#include "lolcats_adapters.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "error.h"
#include "hf_common.h"
#include "mapped_file.h"
#include "schema.h"
#include "torch_checkpoint.h"

namespace t2r {
namespace {

// The released configuration (the repo's distill_llama3_1_8b_lk_smd_wtk64_fd64_w01 and
// finetune_lora_qkvo yaml files), used where neither the block nor the tensors say otherwise.
constexpr int64_t kDefaultWindow = 64;
constexpr double kDefaultLoraAlpha = 16;
constexpr double kDefaultFeatureEps = 1e-12;

// The adapter's tensors by the name after the last "model." (the repo's loaders accept PEFT's
// base_model.model.model.layers..., a bare state dict and its vLLM port's names alike), with PEFT's
// ".default" adapter name dropped.
class AdapterTensors {
 public:
  explicit AdapterTensors(const std::string& path) : path_(path), checkpoint_(read_torch_state_dict(path)) {
    for (const TorchTensor& t : checkpoint_.state_dict) {
      std::string name = t.name;
      if (const size_t at = name.rfind("model."); at != std::string::npos) name = name.substr(at + 6);
      if (const size_t at = name.find(".default."); at != std::string::npos) name.erase(at, 8);
      if (!by_name_.emplace(name, &t).second) throw Error(path + ": two tensors are named '" + name + "'");
    }
  }
  // Throws naming the file and tensor when it is missing or has another rank.
  const TorchTensor& get(const std::string& name, size_t rank) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) throw Error(path_ + ": no tensor '" + name + "' (nor with a prefix ending in 'model.')");
    if (it->second->shape.size() != rank) {
      throw Error(path_ + ": tensor '" + name + "' has rank " + std::to_string(it->second->shape.size()) +
                  ", expected " + std::to_string(rank));
    }
    used_.insert(name);
    return *it->second;
  }
  // Every tensor must have been used: one this reader does not know may change what the model computes.
  void check_all_used() const {
    for (const auto& [name, tensor] : by_name_) {
      if (!used_.count(name)) throw Error(path_ + ": unexpected tensor '" + tensor->name + "'");
    }
  }

 private:
  std::string path_;
  TorchCheckpoint checkpoint_;
  std::map<std::string, const TorchTensor*> by_name_;
  std::set<std::string> used_;
};

std::string short_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void expect_shape(const std::string& what, const TorchTensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) {
    std::string want, got;
    for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    for (int64_t d : t.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    throw Error(what + ": tensor '" + t.name + "' has shape [" + got + "], expected [" + want + "]");
  }
}

// A setting of the block that must have the one value t2r computes, when present.
void require(HfConfig& config, const json::Value* section, const char* key, const json::Value& allowed,
             const std::string& where) {
  const json::Value* value = section ? section->find(key) : nullptr;
  if (!value || value->is_null()) return;
  if (json_text(*value) != json_text(allowed)) config.unsupported(where + key + " " + json_text(*value));
}

}  // namespace

bool has_lolcats(HfConfig& config, const LolcatsFiles& files) {
  return !files.distill.empty() || !files.lora.empty() || config.find("lolcats") != nullptr;
}

void read_lolcats(HfConfig& config, const LolcatsFiles& files, const std::string& dir, RotaryDecoder& decoder,
                  std::string& used) {
  const json::Value* block = config.find("lolcats");
  const json::Value* attention = block ? block->find("attention") : nullptr;
  const json::Value* finetune = block ? block->find("finetune") : nullptr;
  const json::Value* lora = finetune ? finetune->find("kwargs") : nullptr;
  const json::Value* kernel = attention ? attention->find("learned_kernel_kwargs") : nullptr;
  const json::Value* map = attention ? attention->find("feature_map_kwargs") : nullptr;
  const auto file = [&](const std::string& flag, const char* key) {
    if (!flag.empty()) return flag;
    const json::Value* name = block ? block->find(key) : nullptr;
    if (!name) config.unsupported(std::string("lolcats.") + key + " is missing (or pass the adapter files to t2r-pack)");
    return dir + "/" + name->as_string();
  };
  const std::string distill_path = file(files.distill, "distill_checkpoint"), lora_path = file(files.lora, "finetune_checkpoint");

  // What t2r computes: the windowed ThunderKittens attention with untied per-head softmax_dim maps.
  const std::string a = "lolcats.attention.";
  require(config, attention, "attention_type", json::Value::string("lolcats_llama_window_tk"), a);
  require(config, attention, "feature_map", json::Value::string("softmax_dim"), a);
  require(config, attention, "learned_kernel", json::Value::string("untied_head_einsum"), a);
  require(config, attention, "affine_attention_factors", json::Value::boolean(false), a);
  require(config, attention, "tie_qk_kernels", json::Value::boolean(false), a);
  require(config, kernel, "skip_connection", json::Value::boolean(false), a + "learned_kernel_kwargs.");
  require(config, kernel, "bias", json::Value::boolean(false), a + "learned_kernel_kwargs.");
  require(config, map, "fullspace", json::Value::boolean(true), a + "feature_map_kwargs.");
  require(config, finetune, "method", json::Value::string("lora"), "lolcats.finetune.");
  const auto number = [](const json::Value* section, const char* key, double fallback) {
    const json::Value* v = section ? section->find(key) : nullptr;
    return v && !v->is_null() ? v->as_number() : fallback;
  };
  const int64_t window = int64_t(number(attention, "window_size", double(kDefaultWindow)));
  const double alpha = number(lora, "lora_alpha", kDefaultLoraAlpha);
  const double eps = number(map, "eps", kDefaultFeatureEps);
  if (window <= 0 || !(alpha > 0) || !(eps > 0)) config.unsupported("lolcats: window_size, lora_alpha and eps must be positive");

  const int64_t L = decoder.n_layers, H = decoder.n_heads, Hkv = decoder.n_kv_heads, dh = decoder.head_dim,
                d = decoder.dim;
  const auto u = [](int64_t v) { return uint64_t(v); };
  AdapterTensors distill(distill_path);
  int64_t f = 0;
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".self_attn.";
    const TorchTensor& factors = distill.get(p + "window_factors", 4);
    expect_shape(distill_path, factors, {1, H, 1, 1});
    std::vector<float> weight = torch_tensor_to_f32(factors);
    for (float& w : weight) w = float(1 / (1 + std::exp(-double(w))));  // sigmoid: the window terms' weight
    decoder.attention_tensors.push_back({schema::layer(l, schema::kWindowWeight), {u(H)}, std::move(weight), {}});
    for (const auto& [from, to] : {std::pair{"feature_map_q", schema::kHedgehogQ}, std::pair{"feature_map_k", schema::kHedgehogK}}) {
      const TorchTensor& layer = distill.get(p + from + ".mlp.layer", 3);
      if (f == 0) f = layer.shape[2];
      expect_shape(distill_path, layer, {H, dh, f});
      const std::vector<float> w = torch_tensor_to_f32(layer);  // [H, d_h, f] -> [H, f, d_h]: rows per feature
      std::vector<float> rows(w.size());
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < dh; ++i)
          for (int64_t j = 0; j < f; ++j) rows[size_t((h * f + j) * dh + i)] = w[size_t((h * dh + i) * f + j)];
      decoder.attention_tensors.push_back({schema::weight(schema::layer(l, to)), {u(H), u(f), u(dh)}, std::move(rows), {}});
    }
  }
  distill.check_all_used();
  if (const json::Value* v = kernel ? kernel->find("feature_dim") : nullptr; v && v->as_int() != f) {
    config.unsupported("lolcats.attention.learned_kernel_kwargs.feature_dim " + json_text(*v) + ", but the maps have " +
                       std::to_string(f) + " features");
  }

  AdapterTensors adapters(lora_path);
  int64_t rank = 0;
  const struct {
    const char* name;
    int64_t out, in;
  } projections[] = {{"q_proj", H * dh, d}, {"k_proj", Hkv * dh, d}, {"v_proj", Hkv * dh, d}, {"o_proj", d, H * dh}};
  for (int64_t l = 0; l < L; ++l) {
    for (const auto& proj : projections) {
      const std::string p = "layers." + std::to_string(l) + ".self_attn." + proj.name + ".";
      const TorchTensor& A = adapters.get(p + "lora_A.weight", 2);
      const TorchTensor& B = adapters.get(p + "lora_B.weight", 2);
      if (rank == 0) rank = A.shape[0];
      expect_shape(lora_path, A, {rank, proj.in});
      expect_shape(lora_path, B, {proj.out, rank});
      decoder.low_rank["model." + p + "weight"] = {torch_tensor_to_f32(A), torch_tensor_to_f32(B), rank,
                                                   float(alpha / double(rank))};
    }
  }
  adapters.check_all_used();
  if (const json::Value* v = lora ? lora->find("r") : nullptr; v && v->as_int() != rank) {
    config.unsupported("lolcats.finetune.kwargs.r " + json_text(*v) + ", but the LoRA tensors have rank " +
                       std::to_string(rank));
  }

  decoder.attention = lolcats_attention_spec(2 * f, window, float(eps));
  used = "LoLCATs adapters " + distill_path + " and " + lora_path + ": window " + std::to_string(window) +
         ", softmax_dim feature maps of " + std::to_string(f) + " (phi " + std::to_string(2 * f) + ") per head, eps " +
         short_number(eps) + ", LoRA rank " + std::to_string(rank) + " alpha " + short_number(alpha) +
         " merged into q, k, v, o";
}

}  // namespace t2r
