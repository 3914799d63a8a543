// libFuzzer target: the shipped model's BPE tokenizer. Any bytes, valid UTF-8 or not, must
// encode to ids that decode back to exactly those bytes; the same bytes read as int32 ids must
// decode, and stream through Utf8Stream to text that is valid UTF-8 (which a second stream then
// passes through unchanged).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model.h"

namespace {

const t2r::Tokenizer& shipped_tokenizer() {
  static const std::unique_ptr<t2r::Model> model = t2r::Model::load(T2R_DEFAULT_MODEL);
  return model->tokenizer();
}

std::string stream(const std::vector<std::string_view>& pieces) {
  t2r::Utf8Stream utf8;
  std::string text, piece;
  for (std::string_view p : pieces) {
    utf8.push(p, piece);
    text += piece;
  }
  utf8.finish(piece);
  return text + piece;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const t2r::Tokenizer& tokenizer = shipped_tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (tokenizer.decode(tokenizer.encode(text)) != text) std::abort();

  std::vector<int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  tokenizer.decode(ids);
  std::vector<std::string_view> pieces;
  for (int32_t id : ids) pieces.push_back(tokenizer.token_bytes(id));
  const std::string streamed = stream(pieces);
  if (stream({streamed}) != streamed) std::abort();
  return 0;
}
