// libFuzzer target: the protobuf reader and the SentencePiece importer, and every tokenizer
// kind. The first byte says what the rest is:
//   0     a SentencePiece .model file: it gives a clear t2r::Error or a tokenizer, which must
//         then encode text to ids in range;
//   1..   text for one of the fixed tokenizers: the four fixture .model files of the tests and,
//         where ../shared/models has them, Llama 3.1's and Mistral's tokenizer.json. Ids must
//         be in range; byte-level and byte-fallback kinds must decode back to the input (but
//         for a U+2581 in it, which Mistral's decodes as the space it stands for); the same
//         bytes read as int32 ids must stream (Utf8Stream) to valid UTF-8.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

#include "error.h"
#include "tokenizer.h"
#include "tokenizer_import.h"
#include "utf8.h"

namespace {

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

const std::vector<std::unique_ptr<t2r::Tokenizer>>& tokenizers() {
  static const std::vector<std::unique_ptr<t2r::Tokenizer>> all = [] {
    std::vector<std::unique_ptr<t2r::Tokenizer>> out;
    const std::string oracles = T2R_SOURCE_DIR "/tests/tokenizer_oracles/";
    for (const char* name : {"unigram_nfkc", "unigram_bytes", "bpe_bytes", "bpe_plain"}) {
      out.push_back(std::make_unique<t2r::Tokenizer>(
          t2r::import_sentencepiece_tokenizer(oracles + name + ".model", 0)));
    }
    const std::string models = T2R_REFERENCE_MODELS;
    if (exists(models + "/lolcats-llama3/tokenizer.json")) {
      out.push_back(std::make_unique<t2r::Tokenizer>(
          t2r::import_hf_tokenizer(models + "/lolcats-llama3/tokenizer.json", 128256)));
      out.push_back(std::make_unique<t2r::Tokenizer>(
          t2r::import_hf_tokenizer(models + "/supra-mistral/tokenizer.json", 32000)));
    }
    return out;
  }();
  return all;
}

bool valid_utf8(const std::string& s) {
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t len = t2r::utf8::sequence_at(s, i, &cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void check(const t2r::Tokenizer& tok, std::string_view text) {
  for (bool special : {true, false}) {
    const std::vector<int32_t> ids = tok.encode(text, {true, special});
    for (int32_t id : ids) {
      if (id < 0 || id >= tok.vocab_size()) std::abort();
    }
    const t2r::TokenizerData& d = tok.data();
    // (A U+2581 written in the input decodes as the space it stands for.)
    const bool lossless = d.kind == t2r::TokenizerKind::ByteBpe ||
                          (d.kind == t2r::TokenizerKind::Bpe && d.byte_fallback &&
                           text.find("\xe2\x96\x81") == std::string_view::npos);
    if (lossless && !special && tok.decode(tok.encode(text, {false, false})) != text) std::abort();
  }
  std::vector<int32_t> ids(text.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), text.data(), ids.size() * 4);
  t2r::Utf8Stream stream;
  std::string all, piece;
  for (int32_t id : ids) {
    stream.push(tok.token_bytes(id), piece);
    all += piece;
  }
  stream.finish(piece);
  if (!valid_utf8(all + piece)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 0) {
    try {
      const t2r::Tokenizer tok(t2r::parse_sentencepiece_model(rest, 0));
      check(tok, "Hello world, 12345 \xe6\x97\xa5\xe6\x9c\xac \xff <s></s>");
    } catch (const t2r::Error&) {
    }
    return 0;
  }
  const auto& all = tokenizers();
  check(*all[(data[0] - 1) % all.size()], rest);
  return 0;
}
