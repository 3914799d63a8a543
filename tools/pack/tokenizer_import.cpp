#include "tokenizer_import.h"

#include <charconv>
#include <unordered_map>

#include "error.h"
#include "json.h"
#include "mapped_file.h"

namespace t2r {
namespace {

// GPT-2 files spell each byte as a printable code point (bytes_to_unicode in its encoder.py):
// printable Latin-1 bytes stand for themselves, the other 68 bytes take U+0100.. in order.
// Returns the byte of a code point, or -1.
int byte_of_code_point(char32_t cp) {
  static const std::vector<int> table = [] {
    std::vector<int> t(256 + 68, -1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[size_t(printable ? b : 256 + extra++)] = b;
    }
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

// Raw bytes of a token spelled in GPT-2's byte alphabet. `spelled` is valid UTF-8 (the JSON
// reader checks it; vocab.bpe symbols are looked up in the vocabulary first).
std::string token_to_bytes(const std::string& spelled) {
  std::string out;
  for (size_t i = 0; i < spelled.size();) {
    const uint8_t lead = uint8_t(spelled[i++]);
    int extra = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    char32_t cp = extra > 0 ? lead & (0x3F >> extra) : lead;
    for (; extra > 0 && i < spelled.size(); --extra) cp = cp << 6 | (spelled[i++] & 0x3F);
    const int b = byte_of_code_point(cp);
    if (b < 0) {
      throw Error("token \"" + spelled + "\" has a character outside GPT-2's byte alphabet");
    }
    out += char(b);
  }
  return out;
}

// The BPE vocabulary and merges, as written (spelled tokens) and as TokenizerData wants them.
struct Bpe {
  std::unordered_map<std::string, int32_t> ids;  // spelled token -> BPE id
  std::vector<std::string> tokens;               // raw bytes by BPE id
  std::vector<int32_t> merges;

  explicit Bpe(const json::Value& vocab) {
    const auto& members = vocab.as_object();
    tokens.resize(members.size());
    std::vector<bool> seen(members.size());
    for (const auto& [spelled, id_value] : members) {
      const int64_t id = id_value.as_int();
      if (id < 0 || size_t(id) >= members.size()) {
        throw Error("vocabulary id " + std::to_string(id) + " of \"" + spelled +
                    "\" leaves a gap: ids must be 0.." + std::to_string(members.size() - 1));
      }
      if (seen[size_t(id)]) throw Error("vocabulary id " + std::to_string(id) + " repeats");
      if (!ids.emplace(spelled, int32_t(id)).second) {
        throw Error("vocabulary token \"" + spelled + "\" repeats");
      }
      seen[size_t(id)] = true;
      tokens[size_t(id)] = token_to_bytes(spelled);
    }
  }

  // `where` names the merge (file line or index) in errors.
  void add_merge(const std::string& left, const std::string& right, const std::string& where) {
    for (const std::string* symbol : {&left, &right}) {
      auto it = ids.find(*symbol);
      if (it == ids.end()) throw Error(where + ": unknown token \"" + *symbol + "\"");
      merges.push_back(it->second);
    }
  }
};

std::string read_file(const std::string& path) { return std::string(MappedFile(path).bytes()); }

// Runs `body`, prefixing any t2r::Error with the file it concerns (MappedFile names it itself).
template <typename F>
auto in_file(const std::string& path, F body) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

// Whether an optional member is absent, null, or equal to `expected`.
bool absent_or(const json::Value& object, std::string_view key, const json::Value& expected) {
  const json::Value* v = object.find(key);
  if (!v || v->is_null()) return true;
  if (v->type() != expected.type()) return false;
  switch (v->type()) {
    case json::Value::Type::Bool: return v->as_bool() == expected.as_bool();
    case json::Value::Type::String: return v->as_string() == expected.as_string();
    default: return false;
  }
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("unsupported: " + what);
}

bool has_type(const json::Value& object, std::string_view key, std::string_view type) {
  const json::Value* v = object.find(key);
  return v && v->type() == json::Value::Type::Object && v->at("type").as_string() == type;
}

bool is_null(const json::Value& object, std::string_view key) {
  const json::Value* v = object.find(key);
  return !v || v->is_null();
}

}  // namespace

TokenizerData import_hf_tokenizer(const std::string& tokenizer_json_path, int32_t vocab_size) {
  const std::string text = read_file(tokenizer_json_path);
  return in_file(tokenizer_json_path, [&] {
    const json::Value root = json::parse(text);
    const json::Value& model = root.at("model");
    const json::Value no = json::Value::boolean(false), yes = json::Value::boolean(true);
    const json::Value empty = json::Value::string("");

    // Everything that would change ids or text relative to plain GPT-2 byte-level BPE.
    require(is_null(root, "normalizer"), "a normalizer");
    require(is_null(root, "truncation"), "truncation");
    require(has_type(root, "pre_tokenizer", "ByteLevel"), "a pre_tokenizer other than ByteLevel");
    const json::Value& pre = root.at("pre_tokenizer");
    require(absent_or(pre, "add_prefix_space", no), "ByteLevel add_prefix_space = true");
    require(absent_or(pre, "use_regex", yes), "ByteLevel use_regex = false");
    require(is_null(root, "post_processor") || has_type(root, "post_processor", "ByteLevel"),
            "a post_processor other than ByteLevel");
    require(has_type(root, "decoder", "ByteLevel"), "a decoder other than ByteLevel");
    require(model.at("type").as_string() == "BPE", "model type " + model.at("type").as_string());
    require(is_null(model, "dropout"), "BPE dropout");
    require(absent_or(model, "byte_fallback", no), "BPE byte_fallback");
    require(absent_or(model, "ignore_merges", no), "BPE ignore_merges");
    require(absent_or(model, "continuing_subword_prefix", empty), "continuing_subword_prefix");
    require(absent_or(model, "end_of_word_suffix", empty), "end_of_word_suffix");
    // unk_token and fuse_unk never act: every byte has a token (the Tokenizer checks).

    Bpe bpe(model.at("vocab"));
    const auto& merges = model.at("merges").as_array();
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string where = "merge " + std::to_string(r);
      const json::Value& m = merges[r];
      if (m.type() == json::Value::Type::Array) {  // newer files: ["left", "right"]
        if (m.as_array().size() != 2) throw Error(where + " is not a pair");
        bpe.add_merge(m.as_array()[0].as_string(), m.as_array()[1].as_string(), where);
      } else {  // older files: "left right"
        const std::string& s = m.as_string();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          throw Error(where + " \"" + s + "\" is not two tokens separated by one space");
        }
        bpe.add_merge(s.substr(0, space), s.substr(space + 1), where);
      }
    }

    TokenizerData data;
    data.eos_id = -1;
    if (const json::Value* added = root.find("added_tokens")) {
      for (const json::Value& t : added->as_array()) {
        const std::string& content = t.at("content").as_string();
        for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
          require(absent_or(t, flag, no), std::string("added token option ") + flag);
        }
        const int64_t id = t.at("id").as_int();
        if (id < 0 || id >= vocab_size) {
          throw Error("added token \"" + content + "\" has id " + std::to_string(id) +
                      " outside the model's vocab_size " + std::to_string(vocab_size));
        }
        data.special_texts.push_back(content);
        data.special_ids.push_back(int32_t(id));
        if (content == "<|endoftext|>") data.eos_id = int32_t(id);
      }
    }
    if (data.eos_id < 0) throw Error("no added token \"<|endoftext|>\" to end documents with");
    data.bpe_tokens = std::move(bpe.tokens);
    data.merges = std::move(bpe.merges);
    data.vocab_size = vocab_size;
    return data;
  });
}

TokenizerData import_fairseq_tokenizer(const std::string& checkpoint_dir) {
  const std::string encoder_path = checkpoint_dir + "/encoder.json";
  const std::string merges_path = checkpoint_dir + "/vocab.bpe";
  const std::string dict_path = checkpoint_dir + "/dict.txt";
  const std::string encoder_text = read_file(encoder_path);
  Bpe bpe = in_file(encoder_path, [&] { return Bpe(json::parse(encoder_text)); });

  // Splits a text file into lines; a final newline does not start another line.
  auto lines_of = [](const std::string& text) {
    std::vector<std::string_view> lines;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      lines.push_back(std::string_view(text).substr(start, end - start));
      start = end + 1;
    }
    return lines;
  };

  const std::string merges_text = read_file(merges_path);
  in_file(merges_path, [&] {
    const auto lines = lines_of(merges_text);
    // Like fairseq's gpt2_bpe_utils: the first line is a "#version" comment.
    for (size_t i = 1; i < lines.size(); ++i) {
      const std::string where = "line " + std::to_string(i + 1);
      const std::string_view line = lines[i];
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        throw Error(where + " is not two tokens separated by one space");
      }
      bpe.add_merge(std::string(line.substr(0, space)), std::string(line.substr(space + 1)),
                    where);
    }
  });

  TokenizerData data;
  constexpr int32_t kFirstSymbol = 4;  // after <s> <pad> </s> <unk>
  data.eos_id = 2;
  data.unk_id = 3;
  data.bpe_to_model.assign(bpe.tokens.size(), data.unk_id);
  const std::string dict_text = read_file(dict_path);
  in_file(dict_path, [&] {
    const auto lines = lines_of(dict_text);
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = "line " + std::to_string(i + 1);
      const std::string_view symbol = lines[i].substr(0, lines[i].find(' '));
      if (symbol.substr(0, 10) == "madeupword") continue;  // padding to a multiple of 8
      int32_t bpe_id = -1;
      const auto [end, ec] = std::from_chars(symbol.data(), symbol.data() + symbol.size(), bpe_id);
      if (ec != std::errc() || end != symbol.data() + symbol.size() || bpe_id < 0 ||
          size_t(bpe_id) >= bpe.tokens.size()) {
        throw Error(where + ": \"" + std::string(symbol) + "\" is not a BPE id of encoder.json");
      }
      int32_t& slot = data.bpe_to_model[size_t(bpe_id)];
      if (slot != data.unk_id) throw Error(where + ": BPE id " + std::string(symbol) + " repeats");
      slot = kFirstSymbol + int32_t(i);
    }
    data.vocab_size = kFirstSymbol + int32_t(lines.size());
  });
  data.bpe_tokens = std::move(bpe.tokens);
  data.merges = std::move(bpe.merges);
  return data;
}

}  // namespace t2r
