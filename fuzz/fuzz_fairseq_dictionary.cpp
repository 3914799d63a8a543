// libFuzzer target: a fairseq translation dictionary (dict.XX.txt) over a fixed SentencePiece model,
// as t2r-pack numbers a translation model's pieces. It gives a clear t2r::Error or a tokenizer whose
// ids are all inside the dictionary and whose decoding does not crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "error.h"
#include "tokenizer.h"
#include "tokenizer_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const t2r::TokenizerData sentencepiece =
      t2r::import_sentencepiece_tokenizer(T2R_SOURCE_DIR "/tests/tokenizer_oracles/unigram_nfkc.model", 0);
  try {
    const t2r::Tokenizer tokenizer(
        t2r::fairseq_sentencepiece_tokenizer(sentencepiece, std::string_view(reinterpret_cast<const char*>(data), size)));
    t2r::EncodeOptions options;
    options.add_bos_eos = true;
    options.parse_special = false;
    const std::vector<int32_t> ids = tokenizer.encode("Y dijo Dios: Sea la luz. \xc3\xb1 \xe2\x96\x81 <unk>", options);
    for (int32_t id : ids) {
      if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
    }
    if (ids.empty() || ids.back() != 2) std::abort();  // every source ends in </s>
    tokenizer.decode(ids);
  } catch (const t2r::Error&) {
  }
  return 0;
}
