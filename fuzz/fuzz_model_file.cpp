// libFuzzer target: the model-file reader and everything built on what it returns. The header's
// file size and checksum are set to match the input, so that mutations get past them to the
// metadata, the tensor table, the hyperparameters, the tensor binding and the tokenizer; a model
// that loads then runs a session over its weights, or for a translation model a short beam search.
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "checksum.h"
#include "error.h"
#include "session.h"
#include "translator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A mapping is page-aligned; give the reader the same 64-byte alignment.
  static std::vector<unsigned char> buffer;
  buffer.resize(size + 64);
  unsigned char* bytes = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
  if (size > 0) std::memcpy(bytes, data, size);
  if (size >= 96) {
    const uint64_t file_size = size, zero = 0;
    std::memcpy(bytes + 16, &file_size, 8);
    std::memcpy(bytes + 80, &zero, 8);
    const uint64_t sum = t2r::checksum64(bytes, size);
    std::memcpy(bytes + 80, &sum, 8);
  }
  try {
    auto model = t2r::Model::from_file(
        t2r::ModelFile::parse(std::string_view(reinterpret_cast<const char*>(bytes), size), "fuzz.t2r"));
    if (model->hparams().has_encoder()) {
      std::vector<int32_t> source = model->has_tokenizer() ? t2r::translation_source_ids(*model, "Y dijo Dios")
                                                           : std::vector<int32_t>{5, 7, 2};
      if (source.size() > 8) source.resize(8);
      for (int32_t& id : source) id = int32_t(uint32_t(id) % uint32_t(model->hparams().encoder.vocab_size));
      t2r::TranslatorOptions options;
      options.beam = 2;
      options.max_sentences = 1;
      options.max_source_length = 8;
      options.max_len_b = 3;
      options.threads = 1;
      options.memory_budget = 64 << 20;
      t2r::Translator translator(*model, options);
      std::vector<std::vector<t2r::Hypothesis>> out;
      translator.translate({source}, out);
      if (model->has_tokenizer()) t2r::translation_text(*model, out[0][0].ids);
      return 0;
    }
    std::vector<int32_t> ids = model->tokenizer().encode("Hello, wor\xc3\xa9ld<|endoftext|>!");
    model->tokenizer().decode(ids);
    for (int32_t& id : ids) id = int32_t(uint32_t(id) % uint32_t(model->hparams().vocab_size));
    t2r::SessionOptions options;
    options.threads = 1;
    options.prefill_chunk = 3;  // prefill takes the chunked path, step the recurrent one
    options.max_context = 16;
    options.memory_budget = 64 << 20;  // a hostile shape may ask for any amount
    t2r::Session session(*model, options);
    session.prefill(ids.data(), ids.size() < 8 ? ids.size() : 8);
    session.step(ids[0]);
  } catch (const t2r::Error&) {
  }
  return 0;
}
