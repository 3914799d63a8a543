#include "hf_tensors.h"

#include "error.h"
#include "json.h"
#include "mapped_file.h"

namespace t2r {

HfTensors::HfTensors(const std::string& dir) {
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

const SafetensorsTensor& HfTensors::find(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = located_.find(name);
  if (it == located_.end()) throw Error("checkpoint has no tensor '" + name + "'");
  const SafetensorsTensor& t = it->second->at(name);
  if (t.shape != shape) throw Error(it->second->label() + ": tensor '" + name + "' has an unexpected shape");
  return t;
}

std::vector<float> HfTensors::get(const std::string& name, const std::vector<int64_t>& shape) const {
  return tensor_to_f32(find(name, shape));
}

RowReader stream_rows(const std::shared_ptr<const HfTensors>& tensors, const std::string& name,
                      const std::vector<int64_t>& shape) {
  tensors->read_rows(name, shape, 0, 0, nullptr);  // checks name and shape, reads nothing
  return [tensors, name, shape](uint64_t first, uint64_t count, float* out) {
    tensors->read_rows(name, shape, first, count, out);
  };
}

void HfTensors::read_rows(const std::string& name, const std::vector<int64_t>& shape, uint64_t first, uint64_t count,
                          float* out) const {
  const SafetensorsTensor& t = find(name, shape);
  const size_t element = t.dtype == "F32" ? 4 : 2, cols = t.bytes.size() / element / size_t(shape[0]);
  tensor_range_to_f32(t, first * cols, count * cols, out);
  release_mapped_pages(t.bytes.substr(first * cols * element, count * cols * element));
}

}  // namespace t2r
