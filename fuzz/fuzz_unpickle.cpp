// libFuzzer target: the restricted unpickler on raw data.pkl streams, walking the value graph it
// returns as the checkpoint reader does.
#include <cstdint>
#include <string_view>

#include "error.h"
#include "pickle.h"

namespace {

using t2r::pickle::Value;

// The unpickler promises a graph at most kMaxDepth deep, so plain recursion is safe. Returns the
// number of values met, expanding shared ones as a tree.
uint64_t visit(const Value& v) {
  uint64_t count = 1;
  for (const Value* item : v.items) count += visit(*item);
  for (const auto& pair : v.pairs) count += visit(*pair.first) + visit(*pair.second);
  if (v.kind == Value::Kind::Tensor) count += visit(*v.storage);
  v.get("model");
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const t2r::pickle::Document doc =
        t2r::pickle::unpickle(std::string_view(reinterpret_cast<const char*>(data), size));
    if (visit(doc.root()) != doc.root().tree_size) __builtin_trap();  // the bookkeeping behind the limits
  } catch (const t2r::Error&) {
  }
  return 0;
}
