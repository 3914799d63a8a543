// t2r-fuzz-seeds OUT [SHARED_MODELS]: writes a small seed corpus for each fuzz target into
// OUT/<target>/, built from tiny synthetic models, crafted files and, when the reference
// checkpoints are given, their small files (configs, reference.json, the fairseq data.pkl).
// Seeds are generated rather than checked in to keep the repository small.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "json.h"
#include "mapped_file.h"
#include "session.h"
#include "synthetic_model.h"
#include "tokenizer_import.h"
#include "torch_checkpoint_builder.h"
#include "zip_archive.h"

namespace fs = std::filesystem;
using namespace t2r;
using namespace t2r::test;

namespace {

std::string out_dir;
int written = 0;

void seed(const std::string& target, const std::string& name, const void* data, size_t size) {
  fs::create_directories(out_dir + "/" + target);
  std::ofstream(out_dir + "/" + target + "/" + name, std::ios::binary)
      .write(static_cast<const char*>(data), std::streamsize(size));
  ++written;
}
void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  seed(target, name, bytes.data(), bytes.size());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void model_and_state_seeds() {
  bench::SyntheticConfig config;
  bench::synthetic_config("tiny", &config);
  for (bool t2r : {true, false}) {
    for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
      const std::vector<unsigned char> bytes = bench::synthetic_model(config, t2r, dtype).serialize();
      const std::string name = std::string(t2r ? "t2r-" : "softmax-") + std::string(dtype_name(dtype));
      if (dtype != DType::F32) seed("model_file", name + ".t2r", bytes.data(), bytes.size());
      if (dtype != DType::F32) continue;
      // States of the very model fuzz_state_restore builds, after a few positions.
      auto model = Model::from_file(
          ModelFile::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "tiny"));
      SessionOptions options;
      options.threads = 1;
      options.max_context = 32;
      Session session(*model, options);
      for (int tokens : {0, 1, 3}) {
        for (int i = 0; i < tokens; ++i) session.step(65 + i);
        std::vector<unsigned char> state(session.state_size());
        session.save_state(state.data(), state.size());
        seed("state_restore", name + "-" + std::to_string(tokens) + ".state", state.data(), state.size());
        session.reset();
      }
    }
  }
}

// A tiny translation model of each attention (ids only), for fuzz_model_file's beam-search path.
void translation_model_seeds() {
  bench::SyntheticConfig config;
  bench::synthetic_config("tiny", &config);
  config.n_kv_heads = config.n_heads;  // a translation decoder's heads all have their own keys
  config.encoder_layers = 1;
  for (bool t2r : {true, false}) {
    const std::vector<unsigned char> bytes = bench::synthetic_translation_model(config, t2r, DType::F16).serialize();
    seed("model_file", std::string(t2r ? "mt-t2r" : "mt-softmax") + "-f16.t2r", bytes.data(), bytes.size());
  }
}

void safetensors_seeds() {
  auto file = [](const std::string& header, const std::string& data) {
    std::string out;
    put(out, header.size(), 8);
    return out + header + data;
  };
  seed("safetensors", "mixed.safetensors",
       file(R"({"__metadata__":{"text":"hi"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
            R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},)"
            R"("h":{"dtype":"BF16","shape":[1,2],"data_offsets":[32,36]}})",
            float_storage({1, -2, 0.5f, 3}) + raw("\x05\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff") +
                raw("\x80\x3f\x00\xc0")));
  seed("safetensors", "ints.safetensors",
       file(R"({"a":{"dtype":"I32","shape":[3],"data_offsets":[0,12]},)"
            R"("e":{"dtype":"F16","shape":[0],"data_offsets":[12,12]}})",
            raw("\x01\0\0\0\x02\0\0\0\x03\0\0\0")));
}

void checkpoint_seeds(const std::string& shared) {
  const std::string model = pstr("w") + ptensor(pstorage("0", "FloatStorage", 6), 0, {2, 3}, {3, 1}) + pstr("t") +
                            ptensor(pstorage("0", "FloatStorage", 6), 1, {2}, {3}) + pstr("h") +
                            "ctorch._utils\n_rebuild_parameter\n(" +
                            ptensor(pstorage("1", "HalfStorage", 2), 0, {2}, {1}) +
                            "\x88"
                            "ccollections\nOrderedDict\n)RtR";
  const std::string pkl = checkpoint_pickle(kArgs, model);
  seed("unpickle", "crafted.pkl", pkl);
  seed("torch_checkpoint", "zip64.pt", checkpoint_zip(pkl));
  seed("torch_checkpoint", "plain.pt",
       build_zip({{"archive/data.pkl", pkl}, {"archive/data/0", float_storage({0, 1, 2, 3, 4, 5})},
                  {"archive/data/1", raw("\x00\x3c\x00\xc0")}},
                 false, "comment"));
  if (shared.empty()) return;
  // The real fairseq pickle (args Namespace and the state dict with its storages).
  const MappedFile real(shared + "/fairseq-t2r/checkpoint.pt");
  ZipArchive zip(real.bytes(), "checkpoint.pt");
  for (const std::string& name : zip.names()) {
    if (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0) {
      seed("unpickle", "fairseq-t2r.pkl", std::string(zip.read(name)));
    }
  }
}

void json_seeds(const std::string& shared) {
  seed("json", "values.json", R"({"a":[1,-2.5e-3,true,false,null],"s":"\u00e9\ud83d\ude00\n\"","o":{"":{}}})");
  seed("json", "number.json", "-0.0e+10");
  if (shared.empty()) return;
  for (const char* name : {"llama-t2r", "llama-elu", "llama-t2r-lengthdrop", "fairseq-t2r"}) {
    for (const char* file : {"config.json", "reference.json"}) {
      const std::string path = shared + "/" + name + "/" + file;
      if (is_regular_file(path)) seed("json", std::string(name) + "-" + file, read_file(path));
    }
  }
}

void tokenizer_seeds(const std::string& shared) {
  seed("tokenizer", "english.txt", "The quick brown fox's 12 jumps  over\tthe lazy dog.\n\n");
  seed("tokenizer", "unicode.txt", "Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x80\x94 na\xc3\xafve");
  seed("tokenizer", "invalid-utf8.txt", raw("ab\xff\xc3(\xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf"));
  seed("tokenizer", "special.txt", "end<|endoftext|>start <|endoftext|><|endoftext|>");
  const int32_t ids[] = {464, 2068, 0, 8191, 8192, -1, 50000, 3};
  seed("tokenizer", "ids.bin", ids, sizeof ids);
  if (shared.empty()) return;
  // The greedy prompts of the reference outputs.
  const json::Value reference = json::parse(read_file(shared + "/llama-t2r/reference.json"));
  int n = 0;
  for (const auto& prompt : reference.at("greedy").as_object()) {
    seed("tokenizer", "prompt-" + std::to_string(n++) + ".txt", prompt.first);
  }
}

// fuzz_tokenizer_kinds: the fixture .model files (first byte 0) and the oracle test texts for
// each fixed tokenizer (first byte 1..6), read from tests/tokenizer_oracles.
void tokenizer_kinds_seeds() {
  const std::string oracles = T2R_SOURCE_DIR "/tests/tokenizer_oracles/";
  for (const char* name : {"unigram_nfkc", "unigram_bytes", "bpe_bytes", "bpe_plain"}) {
    seed("tokenizer_kinds", std::string(name) + ".model", std::string(1, '\0') + read_file(oracles + name + ".model"));
  }
  const json::Value cases = json::parse(read_file(oracles + "cases.json"));
  for (const auto& c : cases.as_array()) {
    const std::string& hex = c.at("hex").as_string();
    std::string text;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) text += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    if (text.size() > 300) continue;
    for (char which = 1; which <= 6; ++which) {
      seed("tokenizer_kinds", c.at("name").as_string() + "-" + std::to_string(int(which)), which + text);
    }
  }
}

// fuzz_fairseq_dictionary: dictionaries over the pieces of the fixture model it uses, and the head of
// a real translation dictionary.
void fairseq_dictionary_seeds(const std::string& shared) {
  const std::string model = T2R_SOURCE_DIR "/tests/tokenizer_oracles/unigram_nfkc.model";
  const TokenizerData pieces = import_sentencepiece_tokenizer(model, 0);
  std::string dictionary;
  for (size_t i = 0; i < pieces.bpe_tokens.size() && i < 64; ++i) {
    if (pieces.piece_types[i] == PieceType::Normal) dictionary += pieces.bpe_tokens[i] + " " + std::to_string(100 - i) + "\n";
  }
  seed("fairseq_dictionary", "pieces.txt", dictionary);
  seed("fairseq_dictionary", "padded.txt", dictionary + "madeupword0000 0\nmadeupword0001 0\n");
  seed("fairseq_dictionary", "empty.txt", "");
  if (shared.empty()) return;
  const std::string real = read_file(shared + "/mt-t2r/dict.en.txt");
  seed("fairseq_dictionary", "mt-head.txt", real.substr(0, real.find('\n', 4000) + 1));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: t2r-fuzz-seeds OUT_DIR [SHARED_MODELS_DIR]\n");
    return 2;
  }
  out_dir = argv[1];
  const std::string shared = argc == 3 ? argv[2] : "";
  try {
    model_and_state_seeds();
    translation_model_seeds();
    safetensors_seeds();
    checkpoint_seeds(shared);
    json_seeds(shared);
    tokenizer_seeds(shared);
    tokenizer_kinds_seeds();
    fairseq_dictionary_seeds(shared);
  } catch (const Error& e) {
    std::fprintf(stderr, "t2r-fuzz-seeds: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %d seeds to %s\n", written, out_dir.c_str());
  return 0;
}
