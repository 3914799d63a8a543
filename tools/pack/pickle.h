// A strict unpickler for torch.save's data.pkl that never executes anything: it builds a
// value graph, resolves globals only from a fixed allow-list, and interprets only the few
// allowed callables (OrderedDict, tensor rebuilding, argparse.Namespace, storages).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace t2r::pickle {

// Memo references share values instead of copying them, so values form a graph. The unpickler
// keeps it acyclic, at most kMaxDepth deep and at most kMaxTreeSize values when expanded as a
// tree, so it can be walked recursively without further checks.
constexpr uint32_t kMaxDepth = 512;
constexpr uint64_t kMaxTreeSize = uint64_t(1) << 22;
constexpr size_t kMaxValues = size_t(1) << 20;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Namespace, Global,
                    Storage, Tensor };
  Kind kind = Kind::None;
  bool boolean = false;             // Bool
  int64_t integer = 0;              // Int
  double real = 0;                  // Float
  std::string text;                 // String (UTF-8), Bytes; Global: "module name"; Storage: its key
  std::vector<const Value*> items;  // Tuple, List
  std::vector<std::pair<const Value*, const Value*>> pairs;  // Dict, Namespace, in order

  std::string storage_type;  // Storage: "FloatStorage", "HalfStorage", ...
  std::string location;      // Storage: device, e.g. "cpu"
  int64_t numel = 0;         // Storage: element count

  const Value* storage = nullptr;  // Tensor
  int64_t storage_offset = 0;      // Tensor, in elements
  std::vector<int64_t> shape, stride;

  // The Dict or Namespace entry whose key is the string `key` (the last if repeated), or nullptr.
  const Value* get(std::string_view key) const;

  // Bookkeeping behind the guarantees above.
  bool frozen = false;  // held by another value, hence no longer modifiable
  uint32_t depth = 1;
  uint64_t tree_size = 1;
};

std::string_view kind_name(Value::Kind k);

// Owns every value of one unpickled stream.
class Document {
 public:
  const Value& root() const { return *root_; }

 private:
  friend Document unpickle(std::string_view data);
  Document() = default;
  std::deque<Value> values_;  // a deque keeps addresses stable as it grows and when moved
  const Value* root_ = nullptr;
};

// Throws t2r::Error("pickle: <what> at offset N") for malformed data, unsupported opcodes,
// exceeded limits, and globals outside the allow-list (refused as soon as they are named).
Document unpickle(std::string_view data);

}  // namespace t2r::pickle
