#include "tokenizer_import.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <unordered_map>

#include "error.h"
#include "json.h"
#include "mapped_file.h"
#include "piece_spelling.h"

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

// Splits a text file into lines; a final newline does not start another line.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

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

namespace {

// Llama 3's pre-tokenizer regex, the only Split pattern Pretokenizer::Llama3 implements.
constexpr std::string_view kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const std::string& type_of(const json::Value& v) { return v.at("type").as_string(); }

// Members of a "Sequence" (under `list_key`), or the value itself.
std::vector<const json::Value*> steps(const json::Value& v, std::string_view list_key) {
  std::vector<const json::Value*> out;
  if (type_of(v) == "Sequence") {
    for (const json::Value& step : v.at(list_key).as_array()) out.push_back(&step);
  } else {
    out.push_back(&v);
  }
  return out;
}

// A Replace normalizer or decoder that replaces the string `from` with `to`.
bool is_replace(const json::Value& v, std::string_view from, std::string_view to) {
  const json::Value* pattern = v.find("pattern");
  const json::Value* literal = pattern ? pattern->find("String") : nullptr;
  return type_of(v) == "Replace" && literal && literal->type() == json::Value::Type::String &&
         literal->as_string() == from && v.at("content").as_string() == to;
}

std::string describe(const json::Value* v) { return v ? type_of(*v) : "none"; }

// The model id of a token named in tokenizer_config.json (a string or {"content": ...}).
int32_t config_token(const json::Value& config, std::string_view key,
                     const std::unordered_map<std::string, int32_t>& ids) {
  const json::Value* v = config.find(key);
  if (!v || v->is_null()) return -1;
  const std::string& name = v->type() == json::Value::Type::Object ? v->at("content").as_string()
                                                                    : v->as_string();
  const auto it = ids.find(name);
  if (it == ids.end()) {
    throw Error("tokenizer_config.json: " + std::string(key) + " \"" + name + "\" is no token");
  }
  return it->second;
}

}  // namespace

TokenizerData import_hf_tokenizer(const std::string& tokenizer_json_path, int32_t vocab_size) {
  const std::string text = read_file(tokenizer_json_path);
  const std::string dir = tokenizer_json_path.substr(0, tokenizer_json_path.find_last_of('/') + 1);
  const std::string config_path = dir + "tokenizer_config.json";
  const bool has_config = std::ifstream(config_path).good();
  const std::string config_text = has_config ? read_file(config_path) : "{}";
  const json::Value config = in_file(config_path, [&] { return json::parse(config_text); });
  return in_file(tokenizer_json_path, [&] {
    const json::Value root = json::parse(text);
    const json::Value& model = root.at("model");
    const json::Value no = json::Value::boolean(false), yes = json::Value::boolean(true);
    const json::Value empty = json::Value::string("");
    TokenizerData data;

    // The kind, from the normalizer and pre-tokenizer; each step is one t2r implements
    // exactly, else refused by its name.
    const json::Value* normalizer = root.find("normalizer");
    if (normalizer && normalizer->is_null()) normalizer = nullptr;
    const json::Value* pre = root.find("pre_tokenizer");
    if (pre && pre->is_null()) pre = nullptr;
    require(model.at("type").as_string() == "BPE", "model type " + model.at("type").as_string());
    require(is_null(root, "truncation"), "truncation");
    if (pre) {
      require(!normalizer, "a normalizer (" + describe(normalizer) + ") before a pre_tokenizer");
      const auto pre_steps = steps(*pre, "pretokenizers");
      const json::Value& last = *pre_steps.back();
      require(type_of(last) == "ByteLevel", "pre_tokenizer " + type_of(last));
      require(absent_or(last, "add_prefix_space", no), "ByteLevel add_prefix_space = true");
      if (pre_steps.size() == 1) {
        require(absent_or(last, "use_regex", yes), "ByteLevel use_regex = false without a Split");
      } else {
        require(pre_steps.size() == 2, "a pre_tokenizer Sequence of " +
                                           std::to_string(pre_steps.size()) + " steps");
        const json::Value& split = *pre_steps[0];
        require(type_of(split) == "Split", "pre_tokenizer " + type_of(split) + " before ByteLevel");
        const json::Value* regex = split.at("pattern").find("Regex");
        require(regex && regex->as_string() == kLlama3Pattern,
                "a Split pattern other than Llama 3's");
        require(split.at("behavior").as_string() == "Isolated", "Split behavior other than Isolated");
        require(absent_or(split, "invert", no), "Split invert = true");
        require(absent_or(last, "use_regex", no), "ByteLevel use_regex = true after a Split");
        data.pretokenizer = Pretokenizer::Llama3;
      }
      data.kind = TokenizerKind::ByteBpe;
      require(has_type(root, "decoder", "ByteLevel"), "a decoder other than ByteLevel");
      require(absent_or(model, "byte_fallback", no), "BPE byte_fallback with ByteLevel");
      data.ignore_merges = !absent_or(model, "ignore_merges", no);
    } else {
      // SentencePiece-style: Prepend("▁") (optional) and Replace(" ", "▁").
      require(normalizer != nullptr, "a BPE without pre_tokenizer or normalizer");
      auto norm_steps = steps(*normalizer, "normalizers");
      if (type_of(*norm_steps[0]) == "Prepend") {
        require(norm_steps[0]->at("prepend").as_string() == kSpacePiece, "Prepend of another text than U+2581");
        data.add_dummy_prefix = true;
        norm_steps.erase(norm_steps.begin());
      }
      require(norm_steps.size() == 1 && is_replace(*norm_steps[0], " ", kSpacePiece),
              "normalizer " + describe(normalizer) + " other than [Prepend(U+2581)], Replace(' ', U+2581)");
      // Decoder: Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) (with the Prepend).
      require(root.find("decoder") && !is_null(root, "decoder"), "no decoder");
      const auto dec = steps(root.at("decoder"), "decoders");
      bool ok = dec.size() == 3u + data.add_dummy_prefix && is_replace(*dec[0], kSpacePiece, " ") &&
                type_of(*dec[1]) == "ByteFallback" && type_of(*dec[2]) == "Fuse";
      if (ok && data.add_dummy_prefix) {
        const json::Value& strip = *dec[3];
        ok = type_of(strip) == "Strip" && strip.at("content").as_string() == " " &&
             strip.at("start").as_int() == 1 && strip.at("stop").as_int() == 0;
      }
      require(ok, "a decoder other than Replace(U+2581, ' '), ByteFallback, Fuse[, Strip(' ', 1, 0)]");
      data.kind = TokenizerKind::Bpe;
      data.byte_fallback = !absent_or(model, "byte_fallback", no);
      data.fuse_unk = !absent_or(model, "fuse_unk", no);
      require(absent_or(model, "ignore_merges", no), "BPE ignore_merges without a pre_tokenizer");
    }
    require(is_null(model, "dropout"), "BPE dropout");
    require(absent_or(model, "continuing_subword_prefix", empty), "continuing_subword_prefix");
    require(absent_or(model, "end_of_word_suffix", empty), "end_of_word_suffix");

    // Vocabulary: byte-level tokens are spelled in GPT-2's byte alphabet, the others as is.
    std::unordered_map<std::string, int32_t> ids;  // spelled token -> id
    std::vector<std::string> tokens;
    if (data.kind == TokenizerKind::ByteBpe) {
      Bpe bpe(model.at("vocab"));
      ids = std::move(bpe.ids);
      tokens = std::move(bpe.tokens);
    } else {
      const auto& members = model.at("vocab").as_object();
      tokens.resize(members.size());
      for (const auto& [spelled, id_value] : members) {
        const int64_t id = id_value.as_int();
        if (id < 0 || size_t(id) >= members.size() || !tokens[size_t(id)].empty()) {
          throw Error("vocabulary id " + std::to_string(id) + " of \"" + spelled +
                      "\" repeats or leaves a gap: ids must be 0.." + std::to_string(members.size() - 1));
        }
        if (!ids.emplace(spelled, int32_t(id)).second) throw Error("vocabulary token \"" + spelled + "\" repeats");
        tokens[size_t(id)] = spelled;
      }
    }
    const auto& merges = model.at("merges").as_array();
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string where = "merge " + std::to_string(r);
      const json::Value& m = merges[r];
      std::string left, right;
      if (m.type() == json::Value::Type::Array) {  // newer files: ["left", "right"]
        if (m.as_array().size() != 2) throw Error(where + " is not a pair");
        left = m.as_array()[0].as_string();
        right = m.as_array()[1].as_string();
      } else {  // older files: "left right"
        const std::string& s = m.as_string();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          throw Error(where + " \"" + s + "\" is not two tokens separated by one space");
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      }
      for (const std::string* symbol : {&left, &right}) {
        const auto it = ids.find(*symbol);
        if (it == ids.end()) throw Error(where + ": unknown token \"" + *symbol + "\"");
        data.merges.push_back(it->second);
      }
    }
    if (data.kind == TokenizerKind::Bpe) {
      const json::Value* unk = model.find("unk_token");
      if (unk && !unk->is_null()) {
        const auto it = ids.find(unk->as_string());
        if (it == ids.end()) throw Error("unk_token \"" + unk->as_string() + "\" is not in the vocabulary");
        data.unk_id = it->second;
      }
    }

    // Added tokens, special or not, are matched in the raw text before anything else.
    std::unordered_map<std::string, int32_t> all_ids = ids;
    if (const json::Value* added = root.find("added_tokens")) {
      for (const json::Value& t : added->as_array()) {
        const std::string& content = t.at("content").as_string();
        for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
          require(absent_or(t, flag, no), std::string("added token option ") + flag);
        }
        require(data.kind == TokenizerKind::ByteBpe || absent_or(t, "normalized", no),
                "added token \"" + content + "\" matched after normalization (normalized = true)");
        const int64_t id = t.at("id").as_int();
        if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
          throw Error("added token \"" + content + "\" has id " + std::to_string(id) +
                      " outside the model's vocab_size " + std::to_string(vocab_size));
        }
        data.special_texts.push_back(content);
        data.special_ids.push_back(int32_t(id));
        all_ids[content] = int32_t(id);
      }
    }

    // BOS / EOS: TemplateProcessing's single template ([SpecialToken], A, [SpecialToken]),
    // overridden by tokenizer_config.json's add_bos_token / add_eos_token as transformers
    // does for Llama tokenizers.
    if (const json::Value* post = root.find("post_processor"); post && !post->is_null()) {
      for (const json::Value* step : steps(*post, "processors")) {
        if (type_of(*step) == "ByteLevel") continue;  // offsets only
        require(type_of(*step) == "TemplateProcessing", "post_processor " + type_of(*step));
        const auto& single = step->at("single").as_array();
        bool seen_a = false;
        for (const json::Value& item : single) {
          if (const json::Value* seq = item.find("Sequence")) {
            require(!seen_a && seq->at("id").as_string() == "A", "a template with sequence B or A twice");
            seen_a = true;
            continue;
          }
          const std::string& name = item.at("SpecialToken").at("id").as_string();
          const auto& special = step->at("special_tokens").at(name).at("ids").as_array();
          require(special.size() == 1, "a template token of " + std::to_string(special.size()) + " ids");
          const int32_t id = int32_t(special[0].as_int());
          require(id >= 0 && (vocab_size == 0 || id < vocab_size), "a template token id outside the vocabulary");
          if (!seen_a) {
            require(!data.add_bos, "two template tokens before the text");
            data.bos_id = id;
            data.add_bos = true;
          } else {
            require(!data.add_eos, "two template tokens after the text");
            data.eos_id = id;
            data.add_eos = true;
          }
        }
        require(seen_a, "a template without the text");
      }
    }
    const int32_t config_bos = config_token(config, "bos_token", all_ids);
    const int32_t config_eos = config_token(config, "eos_token", all_ids);
    if (config_bos >= 0) data.bos_id = config_bos;
    if (const json::Value* v = config.find("add_bos_token"); v && !v->is_null()) data.add_bos = v->as_bool();
    if (const json::Value* v = config.find("add_eos_token"); v && !v->is_null()) data.add_eos = v->as_bool();
    if (data.add_bos && data.bos_id < 0) throw Error("add_bos_token without a bos_token");

    if (config_eos >= 0 && !data.add_eos) {
      data.eos_id = config_eos;
    } else if (!data.add_eos) {
      data.eos_id = -1;
      for (const char* name : {"<|endoftext|>", "</s>"}) {
        const auto it = all_ids.find(name);
        if (data.eos_id < 0 && it != all_ids.end()) data.eos_id = it->second;
      }
    }
    if (data.eos_id < 0) {
      throw Error("no eos_token in tokenizer_config.json and no token \"<|endoftext|>\" or \"</s>\" to end documents with");
    }
    data.vocab_size = vocab_size;
    if (vocab_size == 0) {  // the tokenizer's own: past its largest id
      data.vocab_size = int32_t(tokens.size());
      for (int32_t id : data.special_ids) data.vocab_size = std::max(data.vocab_size, id + 1);
    }
    data.bpe_tokens = std::move(tokens);
    return data;
  });
}

TokenizerData import_fairseq_tokenizer(const std::string& checkpoint_dir) {
  const std::string encoder_path = checkpoint_dir + "/encoder.json";
  const std::string merges_path = checkpoint_dir + "/vocab.bpe";
  const std::string dict_path = checkpoint_dir + "/dict.txt";
  const std::string encoder_text = read_file(encoder_path);
  Bpe bpe = in_file(encoder_path, [&] { return Bpe(json::parse(encoder_text)); });

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

TokenizerData import_fairseq_sentencepiece_tokenizer(const std::string& model_path, const std::string& dict_path) {
  TokenizerData spm = import_sentencepiece_tokenizer(model_path, 0);
  const std::string dict_text = read_file(dict_path);
  return in_file(dict_path, [&] { return fairseq_sentencepiece_tokenizer(std::move(spm), dict_text); });
}

TokenizerData fairseq_sentencepiece_tokenizer(TokenizerData data, std::string_view dictionary) {
  // The dictionary's symbols: line i is "SYMBOL COUNT", index i + 4.
  std::unordered_map<std::string_view, int32_t> index;
  constexpr int32_t kFirstSymbol = 4;  // after <s> <pad> </s> <unk>
  const auto lines = lines_of(dictionary);
  if (lines.size() > size_t(1) << 24) throw Error("more than 2^24 symbols");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1);
    const size_t space = lines[i].rfind(' ');
    const std::string_view symbol = lines[i].substr(0, space), count = lines[i].substr(space + 1);
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    if (space == std::string_view::npos || symbol.empty() || ec != std::errc() || end != count.data() + count.size()) {
      throw Error(where + " is not \"SYMBOL COUNT\"");
    }
    if (!index.emplace(symbol, kFirstSymbol + int32_t(i)).second) {
      throw Error(where + ": \"" + std::string(symbol) + "\" repeats an earlier symbol");
    }
  }
  // fairseq maps each piece string to its index, <unk> where the dictionary lacks it; the
  // SentencePiece control pieces become the dictionary's own <s> and </s>.
  constexpr int32_t kBos = 0, kEos = 2, kUnk = 3;
  data.bpe_to_model.assign(data.bpe_tokens.size(), kUnk);
  for (size_t id = 0; id < data.bpe_tokens.size(); ++id) {
    const PieceType type = data.piece_types[id];
    if (int32_t(id) == data.eos_id) {
      data.bpe_to_model[id] = kEos;
    } else if (int32_t(id) == data.bos_id) {
      data.bpe_to_model[id] = kBos;
    } else if (type != PieceType::Control && type != PieceType::Unknown) {
      const auto it = index.find(data.bpe_tokens[id]);
      if (it != index.end()) data.bpe_to_model[id] = it->second;
    }
  }
  data.vocab_size = kFirstSymbol + int32_t(lines.size());
  data.eos_id = kEos;
  data.bos_id = kBos;
  data.unk_id = kUnk;
  data.add_bos = false;  // fairseq's source: the pieces, then </s>
  data.add_eos = true;
  return data;
}

}  // namespace t2r
