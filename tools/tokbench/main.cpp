// t2r-tokbench: encoding speed of tokenizer files on one thread, and whether it stays linear
// in the text's length (the first 1 MB against the whole text). tools/tokbench/run measures
// the oracles (transformers.js, the SentencePiece library) on the same text in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "flag_values.h"
#include "mapped_file.h"
#include "tokenizer.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"

namespace {

const char kUsage[] =
    "usage: t2r-tokbench TEXT TOKENIZER... [--repeat N]\n"
    "  TEXT        the text to encode (tools/tokbench/make_text.py writes a mixed one)\n"
    "  TOKENIZER   a tokenizer.json (with its tokenizer_config.json beside it, if any) or a\n"
    "              SentencePiece .model file\n"
    "  --repeat N  runs per measurement, the fastest reported (default 3)\n"
    "Prints, per tokenizer, MB/s (10^6 bytes) on the first 1 MB and on the whole text.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-tokbench: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Seconds of the fastest of `repeat` encodings of `text`, and the number of ids.
std::pair<double, size_t> time_encode(const t2r::Tokenizer& tok, std::string_view text, long repeat) {
  double best = 1e30;
  size_t n = 0;
  std::vector<int32_t> ids;
  for (long r = 0; r < repeat; ++r) {
    ids.clear();
    const auto start = std::chrono::steady_clock::now();
    tok.encode(text, ids);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    n = ids.size();
  }
  return {best, n};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  long repeat = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeat") {
      if (++i >= argc) usage_error("--repeat needs a value");
      try {
        repeat = long(t2r::flags::integer("--repeat", argv[i], 1, 1000));
      } catch (const t2r::flags::BadFlagValue& e) {
        usage_error(e.what());
      }
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      usage_error("unknown option " + arg);
    } else {
      files.push_back(arg);
    }
  }
  if (files.size() < 2) usage_error("give a text and at least one tokenizer");
  try {
    const t2r::MappedFile text_file(files[0]);
    const std::string_view text = text_file.bytes();
    const std::string_view first_mb = text.substr(0, 1000000);
    std::printf("%-44s %-22s %10s %12s %10s\n", "tokenizer", "kind", "1 MB MB/s", "whole MB/s",
                "ids");
    for (size_t f = 1; f < files.size(); ++f) {
      const std::string& path = files[f];
      const t2r::Tokenizer tok(ends_with(path, ".json") ? t2r::import_hf_tokenizer(path, 0)
                                                        : t2r::import_sentencepiece_tokenizer(path, 0));
      const double t1 = time_encode(tok, first_mb, repeat).first;
      const auto [t, n] = time_encode(tok, text, repeat);
      std::printf("%-44s %-22s %10.2f %12.2f %10zu\n", path.substr(path.size() > 44 ? path.size() - 44 : 0).c_str(),
                  t2r::tokenizer_kind_name(tok.data().kind), double(first_mb.size()) / 1e6 / t1,
                  double(text.size()) / 1e6 / t, n);
    }
  } catch (const t2r::Error& e) {
    std::fprintf(stderr, "t2r-tokbench: %s\n", e.what());
    return 1;
  }
  return 0;
}
