// libFuzzer target: the JSON reader, and every accessor on what it returns.
#include <cstdint>
#include <string_view>

#include "error.h"
#include "json.h"

namespace {

void visit(const t2r::json::Value& v) {
  using Type = t2r::json::Value::Type;
  switch (v.type()) {
    case Type::Number:
      try {
        v.as_int();
      } catch (const t2r::Error&) {
      }
      break;
    case Type::Array:
      for (const auto& item : v.as_array()) visit(item);
      break;
    case Type::Object:
      for (const auto& member : v.as_object()) {
        visit(member.second);
        v.at(member.first);
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    visit(t2r::json::parse(std::string_view(reinterpret_cast<const char*>(data), size)));
  } catch (const t2r::Error&) {
  }
  return 0;
}
