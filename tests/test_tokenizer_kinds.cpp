// The tokenizer kinds against their oracles: ids committed in tests/tokenizer_oracles by
// transformers.js (Llama 3.1 and Mistral tokenizer.json files, from ../shared/models) and by
// the SentencePiece library (four small trained .model files, committed, and the translation
// references' sentencepiece.bpe.model). See tests/tokenizer_oracles/*.{js,py}.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "error.h"
#include "json.h"
#include "mapped_file.h"
#include "synthetic_model.h"
#include "tokenizer.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

using t2r::EncodeOptions;
using t2r::Tokenizer;
using t2r::TokenizerData;

namespace {

using Ids = std::vector<int32_t>;

const std::string kOracles = std::string(T2R_SOURCE_DIR) + "/tests/tokenizer_oracles/";

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

t2r::json::Value read_json(const std::string& path) {
  return t2r::json::parse(t2r::MappedFile(path).bytes());
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

Ids ids_of(const t2r::json::Value& array) {
  Ids out;
  for (const auto& v : array.as_array()) out.push_back(int32_t(v.as_int()));
  return out;
}

struct Case {
  std::string name, text;
  bool invalid_utf8;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = [] {
    std::vector<Case> out;
    const t2r::json::Value all_cases = read_json(kOracles + "cases.json");
    for (const auto& c : all_cases.as_array()) {
      const auto* invalid = c.find("invalid_utf8");
      out.push_back({c.at("name").as_string(), from_hex(c.at("hex").as_string()),
                     invalid && invalid->as_bool()});
    }
    return out;
  }();
  return all;
}

// The text a stream of token_bytes gives, through Utf8Stream.
std::string streamed(const Tokenizer& tok, const Ids& ids) {
  t2r::Utf8Stream stream;
  std::string text, piece;
  for (int32_t id : ids) {
    stream.push(tok.token_bytes(id), piece);
    text += piece;
  }
  stream.finish(piece);
  return text + piece;
}

// Every case's ids against the oracle's; the decoded text against the input where the
// oracle's decoding restores it; and the same ids after a trip through model metadata.
void check_against_oracle(const Tokenizer& tok, const t2r::json::Value& expected) {
  std::map<std::string, const t2r::json::Value*> by_name;
  for (const auto& row : expected.as_array()) by_name[row.at("name").as_string()] = &row;
  size_t compared = 0;
  for (const Case& c : cases()) {
    CAPTURE(c.name);
    const Ids ids = tok.encode(c.text);
    const auto found = by_name.find(c.name);
    if (found != by_name.end()) {
      const t2r::json::Value& row = *found->second;
      CHECK(ids == ids_of(row.at("ids")));
      ++compared;
      if (row.at("round_trips").as_bool()) {
        CHECK(tok.decode(ids) == c.text);
        // Streaming keeps UTF-8 whole across byte pieces split over tokens.
        const std::string s = streamed(tok, ids);
        CHECK((s == c.text || s == " " + c.text));
      }
      if (const auto* bos = row.find("with_special")) {
        Ids with = ids_of(*bos);
        with.insert(with.end(), ids.begin(), ids.end());
        CHECK(tok.encode(c.text, EncodeOptions{true, true}) == with);
      }
    }
  }
  CHECK(compared == expected.as_array().size());
  t2r::Metadata m;
  t2r::write_tokenizer_metadata(tok.data(), m);
  const Tokenizer reread(t2r::read_tokenizer_metadata(m, tok.vocab_size()));
  for (const Case& c : cases()) CHECK(reread.encode(c.text) == tok.encode(c.text));
}

}  // namespace

TEST_CASE("tokenizer kinds: SentencePiece unigram and BPE models match the library") {
  const auto expected = read_json(kOracles + "sp_expected.json");
  for (const char* name : {"unigram_nfkc", "unigram_bytes", "bpe_bytes", "bpe_plain"}) {
    CAPTURE(name);
    const Tokenizer tok(t2r::import_sentencepiece_tokenizer(kOracles + name + ".model", 0));
    check_against_oracle(tok, expected.at(name));
  }
#ifdef T2R_REFERENCE_MODELS
  const std::string mt_model = std::string(T2R_REFERENCE_MODELS) + "/mt-t2r/sentencepiece.bpe.model";
  if (exists(mt_model)) {
    const Tokenizer tok(t2r::import_sentencepiece_tokenizer(mt_model, 0));
    CHECK(tok.data().kind == t2r::TokenizerKind::SentencePieceUnigram);  // despite its name
    check_against_oracle(tok, expected.at("mt"));
  } else {
    MESSAGE("skipped: no " << mt_model);
  }
#endif
}

TEST_CASE("tokenizer kinds: SentencePiece details") {
  const Tokenizer bytes(t2r::import_sentencepiece_tokenizer(kOracles + "unigram_bytes.model", 0));
  CHECK(bytes.data().kind == t2r::TokenizerKind::SentencePieceUnigram);
  CHECK(bytes.data().byte_fallback);
  CHECK(bytes.data().charsmap.empty());
  const Tokenizer nfkc(t2r::import_sentencepiece_tokenizer(kOracles + "unigram_nfkc.model", 0));
  CHECK(!nfkc.data().charsmap.empty());
  CHECK(nfkc.bos_id() == 1);
  CHECK(nfkc.eos_id() == 2);
  CHECK(nfkc.data().unk_id == 0);
  CHECK(nfkc.token_bytes(1).empty());  // control pieces decode to nothing
  // Invalid UTF-8 bytes are U+FFFD each, as the library reads them; with byte fallback that
  // is three byte pieces, which stream back as one U+FFFD.
  const Ids ids = bytes.encode("a\xff");
  CHECK(streamed(bytes, ids) == " a\xEF\xBF\xBD");
  CHECK(bytes.decode(ids) == "a\xEF\xBF\xBD");
}

TEST_CASE("tokenizer kinds: SentencePiece models that are not well-formed are refused") {
  const std::string good(t2r::MappedFile(kOracles + "bpe_plain.model").bytes());
  auto message = [](const std::string& bytes) {
    try {
      const Tokenizer tok(t2r::parse_sentencepiece_model(bytes, 0));
    } catch (const t2r::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message(good).empty());
  CHECK(message(good.substr(0, good.size() / 2)).find("ModelProto") != std::string::npos);
  CHECK(message("") == "the model has no pieces");
  CHECK(message(std::string("\x0b", 1)).find("wire type 3") != std::string::npos);  // a group
  CHECK(message(std::string("\x0a\x05\x0a\x03", 4)).find("beyond the end") != std::string::npos);
  CHECK(message(std::string("\x12\x02\x18\x03", 4)).find("model_type 3") != std::string::npos);
  CHECK(message(std::string("\x0a\x04\x0a\x02hi", 6)).find("no control piece") != std::string::npos);
  // Random corruption: a clear error or a working tokenizer, never a crash.
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    for (int k = 0; k < 4; ++k) bad[rng() % bad.size()] = char(rng());
    try {
      const Tokenizer tok(t2r::parse_sentencepiece_model(bad, 0));
      tok.encode("Hello world, 123 \xff");
    } catch (const t2r::Error&) {
    }
  }
}

#ifdef T2R_REFERENCE_MODELS
TEST_CASE("tokenizer kinds: Llama 3.1 and Mistral tokenizer.json match transformers.js") {
  const auto expected = read_json(kOracles + "hf_expected.json");
  const std::string models = T2R_REFERENCE_MODELS;
  struct File {
    const char* oracle;
    std::string path;
    int32_t vocab;
  };
  for (const File& f : {File{"llama3", models + "/lolcats-llama3/tokenizer.json", 128256},
                        File{"mistral", models + "/supra-mistral/tokenizer.json", 32000}}) {
    CAPTURE(f.oracle);
    if (!exists(f.path)) {
      MESSAGE("skipped: no " << f.path);
      continue;
    }
    const Tokenizer tok(t2r::import_hf_tokenizer(f.path, f.vocab));
    check_against_oracle(tok, expected.at(f.oracle));
    for (const Case& c : cases()) {
      CAPTURE(c.name);
      // Any bytes: byte-level BPE and byte fallback both keep invalid UTF-8 exactly.
      CHECK(tok.decode(tok.encode(c.text, EncodeOptions{false, false})) == c.text);
    }
  }
  const Tokenizer llama3(t2r::import_hf_tokenizer(models + "/lolcats-llama3/tokenizer.json", 128256));
  CHECK(llama3.data().pretokenizer == t2r::Pretokenizer::Llama3);
  CHECK(llama3.data().ignore_merges);
  CHECK(llama3.bos_id() == 128000);
  CHECK(llama3.eos_id() == 128009);  // tokenizer_config.json's eos_token <|eot_id|>
  // Special texts match by default and are plain text when asked.
  CHECK(llama3.encode("<|begin_of_text|>") == Ids{128000});
  CHECK(llama3.encode("<|begin_of_text|>", EncodeOptions{false, false}) == Ids{27, 91, 7413, 3659, 4424, 91, 29});
  const Tokenizer mistral(t2r::import_hf_tokenizer(models + "/supra-mistral/tokenizer.json", 32000));
  CHECK(mistral.data().kind == t2r::TokenizerKind::Bpe);
  CHECK(mistral.encode("▁the").size() == 2);
  CHECK(mistral.encode("the") == Ids{272});  // "▁the", as the issue says
  CHECK(mistral.encode("Hello", EncodeOptions{true, true}) == Ids{1, 22557});
  CHECK(mistral.encode("Hello", EncodeOptions{false, true}) == Ids{22557});
}
#endif

namespace {

// A tiny synthetic model (random weights) carrying `tokenizer`, for t2r-run.
std::string model_with(const TokenizerData& tokenizer, const std::string& name) {
  t2r::bench::SyntheticConfig config{"tiny", tokenizer.vocab_size, 64, 1, 2, 1, 64, 8, true};
  t2r::ModelWriter w = t2r::bench::synthetic_model(config, true, t2r::DType::F16);
  t2r::write_tokenizer_metadata(tokenizer, w.metadata());
  const std::string path = (std::filesystem::temp_directory_path() / ("t2r_kind_" + name + ".t2r")).string();
  w.write(path);
  return path;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

std::string joined(const Ids& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "\n";
}

}  // namespace

TEST_CASE("tokenizer kinds: t2r-run --tokenize prints the ids of every kind from a model file") {
  struct Kind {
    std::string name;
    TokenizerData data;
  };
  std::vector<Kind> kinds;
  kinds.push_back({"sp_unigram", t2r::import_sentencepiece_tokenizer(kOracles + "unigram_bytes.model", 0)});
  kinds.push_back({"sp_bpe", t2r::import_sentencepiece_tokenizer(kOracles + "bpe_bytes.model", 0)});
#ifdef T2R_REFERENCE_MODELS
  const std::string models = T2R_REFERENCE_MODELS;
  if (exists(models + "/lolcats-llama3/tokenizer.json")) {
    kinds.push_back({"llama3", t2r::import_hf_tokenizer(models + "/lolcats-llama3/tokenizer.json", 128256)});
    kinds.push_back({"mistral", t2r::import_hf_tokenizer(models + "/supra-mistral/tokenizer.json", 32000)});
  }
#endif
  const std::string text = "Hello <|eot_id|></s> world 12345";
  for (Kind& k : kinds) {
    CAPTURE(k.name);
    k.data.add_bos = k.data.bos_id >= 0;  // SentencePiece adds none by itself; ask for it here
    const Tokenizer tok(k.data);
    const std::string path = model_with(k.data, k.name);
    const std::string quoted = " '" + text + "'";
    CHECK(run(std::string(T2R_RUN_EXE) + " " + path + " --tokenize" + quoted) ==
          joined(tok.encode(text, EncodeOptions{true, true})));
    CHECK(run(std::string(T2R_RUN_EXE) + " " + path + " --no-bos --tokenize" + quoted) ==
          joined(tok.encode(text, EncodeOptions{false, true})));
    CHECK(run(std::string(T2R_RUN_EXE) + " " + path + " --special-as-text --tokenize" + quoted) ==
          joined(tok.encode(text, EncodeOptions{true, false})));
    const std::string info = run(std::string(T2R_RUN_EXE) + " " + path + " --info");
    CHECK(info.find(std::string("tokenizer    ") + t2r::tokenizer_kind_name(k.data.kind)) != std::string::npos);
    std::filesystem::remove(path);
    // --bos adds the BOS a model records but does not add; --bos --no-bos is refused.
    REQUIRE(k.data.bos_id >= 0);
    k.data.add_bos = false;
    const std::string no_bos = model_with(k.data, k.name + "_no_bos");
    Ids with_bos = tok.encode(text, EncodeOptions{false, true});
    with_bos.insert(with_bos.begin(), k.data.bos_id);
    CHECK(run(std::string(T2R_RUN_EXE) + " " + no_bos + " --bos --tokenize" + quoted) == joined(with_bos));
    CHECK(run(std::string(T2R_RUN_EXE) + " " + no_bos + " --bos --no-bos --tokenize" + quoted)
              .find("t2r-run: --bos and --no-bos contradict") == 0);
    std::filesystem::remove(no_bos);
  }
}

TEST_CASE("tokenizer kinds: long inputs without word breaks stay fast") {
  // One word of 10^6 bytes is merged on one heap (no rescans); unigram's lattice is linear.
  std::vector<std::unique_ptr<Tokenizer>> kinds;
  for (const char* name : {"unigram_nfkc", "bpe_plain", "bpe_bytes"}) {
    kinds.push_back(std::make_unique<Tokenizer>(
        t2r::import_sentencepiece_tokenizer(kOracles + name + ".model", 0)));
  }
#ifdef T2R_REFERENCE_MODELS
  const std::string models = T2R_REFERENCE_MODELS;
  if (exists(models + "/lolcats-llama3/tokenizer.json")) {
    kinds.push_back(std::make_unique<Tokenizer>(
        t2r::import_hf_tokenizer(models + "/lolcats-llama3/tokenizer.json", 128256)));
    kinds.push_back(std::make_unique<Tokenizer>(
        t2r::import_hf_tokenizer(models + "/supra-mistral/tokenizer.json", 32000)));
  }
#endif
  std::string mixed;
  for (int i = 0; i < 100000; ++i) mixed += "ab\xe4\xb8\xad<|";
  for (const auto& tok : kinds) {
    CAPTURE(t2r::tokenizer_kind_name(tok->data().kind));
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& text : {std::string(1000000, 'a'), std::string(300000, ' '), mixed}) {
      const Ids ids = tok->encode(text);
      CHECK((!ids.empty() || text[0] == ' '));  // SentencePiece removes extra whitespace
    }
    // Generous bound (sanitizer builds, a shared machine): quadratic work would take hours.
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  }
}

TEST_CASE("tokenizer kinds: a small SentencePiece-style tokenizer.json, always at hand") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("t2r_kinds_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  // <unk> <s> </s>, the 256 byte pieces (ids 3..258), then ▁ a b ▁a ab ▁ab.
  std::string vocab = "{\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2";
  const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    vocab += std::string(", \"<0x") + hex[b >> 4] + hex[b & 15] + ">\": " + std::to_string(3 + b);
  }
  vocab += ", \"\xe2\x96\x81\": 259, \"a\": 260, \"b\": 261, \"\xe2\x96\x81" "a\": 262, \"ab\": 263, \"\xe2\x96\x81" "ab\": 264}";
  const std::string merges = "[\"a b\", \"\xe2\x96\x81 a\", \"\xe2\x96\x81 ab\"]";
  auto json = [&](const std::string& model_extra, const std::string& top_extra) {
    return R"({"added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false},
      {"id": 1, "content": "<s>", "special": true, "normalized": false},
      {"id": 2, "content": "</s>", "special": true, "normalized": false}],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
      "pre_tokenizer": null,
      "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
        {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
      "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
      "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "vocab": )" +
           vocab + ", \"merges\": " + merges + model_extra + "}" + top_extra + "}";
  };
  auto write = [&](const std::string& text) {
    const std::string path = (dir / "tokenizer.json").string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  };
  const Tokenizer tok(t2r::import_hf_tokenizer(write(json("", "")), 300));
  CHECK(tok.data().kind == t2r::TokenizerKind::Bpe);
  CHECK(tok.encode("ab a b") == Ids{264, 262, 259, 261});
  CHECK(tok.encode("ab", EncodeOptions{true, true}) == Ids{1, 264});
  // Byte fallback: é is <0xC3> <0xA9>; each segment between special texts gets its ▁.
  CHECK(tok.encode("a\xc3\xa9") == Ids{262, 3 + 0xC3, 3 + 0xA9});
  CHECK(tok.encode("a</s>a") == Ids{262, 2, 262});
  CHECK(tok.decode(tok.encode("ab \xc3\xa9\xff")) == "ab \xc3\xa9\xff");
  CHECK(tok.eos_id() == 2);
  // Without byte fallback, a run of unknown characters is one <unk> (fuse_unk).
  const Tokenizer no_bytes(t2r::import_hf_tokenizer(write(json(", \"byte_fallback\": false", "")), 300));
  CHECK(no_bytes.encode("a\xc3\xa9xyb") == Ids{262, 0, 261});
  auto refused = [&](const std::string& top_extra) {
    try {
      t2r::import_hf_tokenizer(write(json("", top_extra)), 300);
    } catch (const t2r::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(", \"normalizer\": {\"type\": \"NFKC\"}").find("unsupported: normalizer NFKC") != std::string::npos);
  CHECK(refused(", \"decoder\": {\"type\": \"Metaspace\"}").find("unsupported: a decoder other than") != std::string::npos);
  CHECK(refused(", \"post_processor\": {\"type\": \"RobertaProcessing\"}").find("unsupported: post_processor RobertaProcessing") != std::string::npos);
  CHECK(refused(", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                "{\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}, \"normalizer\": null")
            .find("unsupported: a Split pattern other than Llama 3's") != std::string::npos);
  fs::remove_all(dir);
}
