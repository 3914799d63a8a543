#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

#include "checkpoint_import.h"
#include "safetensors.h"
#include "session.h"

namespace t2r::test {

std::string reference_dir(const std::string& name) { return std::string(T2R_REFERENCE_MODELS) + "/" + name; }

std::string packed_reference_path(const std::string& name, DType dtype) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/t2r-test-" + std::to_string(getpid()) + "-" + name + "-" +
         std::string(dtype_name(dtype)) + ".t2r";
}

const Model& packed_reference_model(const std::string& name, DType dtype) {
  static std::map<std::string, std::unique_ptr<Model>> cache;
  const std::string path = packed_reference_path(name, dtype);
  auto it = cache.find(path);
  if (it == cache.end()) {
    write_model(import_checkpoint(reference_dir(name)), dtype, path);
    it = cache.emplace(path, Model::load(path)).first;
    std::remove(path.c_str());  // the mapping stays valid after unlink
  }
  return *it->second;
}

const ReferenceOutputs& reference_outputs(const std::string& name) {
  static std::map<std::string, ReferenceOutputs> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  ReferenceOutputs r;
  SafetensorsFile file(reference_dir(name) + "/reference.safetensors");
  if (file.find("input_ids")) r.input_ids = tensor_to_i32(file.at("input_ids"));  // not in translation models' files
  if (file.find("logits")) r.logits = tensor_to_f32(file.at("logits"));
  if (file.find("valid_ids")) r.valid_ids = tensor_to_i32(file.at("valid_ids"));
  auto text = file.metadata().find("text");
  if (text != file.metadata().end()) r.text = text->second;
  std::ifstream json_file(reference_dir(name) + "/reference.json");
  if (json_file) {
    std::stringstream s;
    s << json_file.rdbuf();
    r.json = json::parse(s.str());
  }
  return cache.emplace(name, std::move(r)).first->second;
}

std::vector<int32_t> ids_of(const json::Value& array) {
  std::vector<int32_t> ids;
  for (const auto& v : array.as_array()) ids.push_back(int32_t(v.as_int()));
  return ids;
}

int32_t argmax(const float* x, int64_t n) { return int32_t(std::max_element(x, x + n) - x); }

double slice_perplexity(const Model& model, const std::vector<int32_t>& ids) {
  Session session(model);
  const int64_t V = model.hparams().vocab_size;
  double nll = 0;
  size_t count = 0;
  for (size_t start = 0; start + 512 <= ids.size(); start += 512) {
    session.reset();
    for (size_t t = start; t + 1 < start + 512; ++t) {
      const float* logits = session.step(ids[t]);
      double max = logits[0];
      for (int64_t v = 1; v < V; ++v) max = std::max(max, double(logits[v]));
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(logits[v]) - max);
      nll += std::log(sum) + max - double(logits[ids[t + 1]]);
      ++count;
    }
  }
  return std::exp(nll / double(count));
}

}  // namespace t2r::test

#endif
