// t2r-translate: translate lines of stdin with a t2r translation model (beam search, n-best,
// batches of sentences), score them with BLEU, and expose teacher-forced logits for checking.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bleu.h"
#include "error.h"
#include "flag_values.h"
#include "translator.h"
#include "utf8.h"

namespace flags = t2r::flags;

namespace {

const char kUsage[] =
    "usage: t2r-translate [MODEL.t2r] [options] < SOURCE.txt > TRANSLATIONS.txt\n"
    "\n"
    "Translates each line of stdin (default model: the shipped Spanish-to-English one) and prints\n"
    "the translations in input order.\n"
    "  --beam N               beam size; 1 is greedy (default 5)\n"
    "  --lenpen L             length penalty: scores are divided by length^L (default 1)\n"
    "  --nbest N              hypotheses per sentence, best first (default 1)\n"
    "  --scores               print \"i<TAB>score<TAB>text\" lines (always so with --nbest > 1)\n"
    "  --max-len-a A          at most A * source length + B target tokens (default 0)\n"
    "  --max-len-b B          (default 200)\n"
    "  --min-len N            no </s> before N tokens (default 1)\n"
    "  --batch-size S         sentences decoded at once, sorted by length (default 16)\n"
    "  -t, --threads N        CPU threads (default: one per physical core)\n"
    "  --temp T --top-k K --top-p P --seed S\n"
    "                         sample instead of searching (beam 1 only)\n"
    "  --bleu REF_FILE        after translating, print corpus BLEU against REF_FILE (one reference\n"
    "                         line per source line; sacreBLEU's default 13a tokenization) to stderr\n"
    "  --stats                print sentences/s, target tokens/s and memory to stderr\n"
    "Checking:\n"
    "  --src-ids 5,17,2 --prev-ids 2,9,4 --dump-logits OUT.f32\n"
    "                         teacher forcing: write the logits of every target position as\n"
    "                         float32 [T, V] (T = the number of --prev-ids)\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-translate: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "t2r-translate: %s\n", message.c_str());
  std::exit(1);
}

struct Options {
  std::string model_path = T2R_DEFAULT_TRANSLATION_MODEL;
  t2r::TranslatorOptions translator;
  bool scores = false, stats = false;
  std::string bleu_path, src_ids, prev_ids, dump_logits_path;
};

Options parse(int argc, char** argv) {
  Options o;
  o.translator.max_sentences = 16;
  bool model_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "-h" || arg == "--help") {
        std::fputs(kUsage, stdout);
        std::exit(0);
      } else if (arg == "--beam") {
        o.translator.beam = int(flags::integer(arg, value(), 1, 64));
      } else if (arg == "--lenpen") {
        o.translator.length_penalty = float(flags::number(arg, value(), -100, 100));
      } else if (arg == "--nbest") {
        o.translator.nbest = int(flags::integer(arg, value(), 1, 64));
      } else if (arg == "--scores") {
        o.scores = true;
      } else if (arg == "--max-len-a") {
        o.translator.max_len_a = float(flags::number(arg, value(), 0, 1e5));
      } else if (arg == "--max-len-b") {
        o.translator.max_len_b = int(flags::integer(arg, value(), 0, 1 << 20));
      } else if (arg == "--min-len") {
        o.translator.min_len = int(flags::integer(arg, value(), 0, 1 << 20));
      } else if (arg == "--batch-size") {
        o.translator.max_sentences = int(flags::integer(arg, value(), 1, 1024));
      } else if (arg == "-t" || arg == "--threads") {
        o.translator.threads = int(flags::integer(arg, value(), 1, 1024));
      } else if (arg == "--temp") {
        o.translator.sampler.temperature = float(flags::number(arg, value(), 0, 100));
      } else if (arg == "--top-k") {
        o.translator.sampler.top_k = int32_t(flags::integer(arg, value(), 0, INT32_MAX));
      } else if (arg == "--top-p") {
        o.translator.sampler.top_p = float(flags::number(arg, value(), 0, 1));
      } else if (arg == "--seed") {
        o.translator.sampler.seed = uint64_t(flags::integer(arg, value(), 0, INT64_MAX));
      } else if (arg == "--bleu") {
        o.bleu_path = value();
      } else if (arg == "--stats") {
        o.stats = true;
      } else if (arg == "--src-ids") {
        o.src_ids = value();
      } else if (arg == "--prev-ids") {
        o.prev_ids = value();
      } else if (arg == "--dump-logits") {
        o.dump_logits_path = value();
      } else if (!arg.empty() && arg[0] == '-') {
        usage_error("unknown option '" + arg + "'");
      } else if (model_given) {
        usage_error("more than one model given");
      } else {
        o.model_path = arg;
        model_given = true;
      }
    } catch (const flags::BadFlagValue& e) {
      usage_error(e.what());
    }
  }
  if (o.translator.nbest > o.translator.beam) usage_error("--nbest cannot exceed --beam");
  if (o.translator.sampler.temperature > 0 && o.translator.beam != 1) usage_error("sampling (--temp) needs --beam 1");
  const bool forcing = !o.src_ids.empty() || !o.prev_ids.empty() || !o.dump_logits_path.empty();
  if (forcing && (o.src_ids.empty() || o.prev_ids.empty() || o.dump_logits_path.empty())) {
    usage_error("--src-ids, --prev-ids and --dump-logits go together");
  }
  return o;
}

std::vector<int32_t> parse_id_list(const std::string& flag, const std::string& text) {
  std::vector<int32_t> ids;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    try {
      ids.push_back(int32_t(flags::integer(flag, text.substr(start, comma - start), 0, INT32_MAX)));
    } catch (const flags::BadFlagValue& e) {
      usage_error(e.what());
    }
    start = comma + 1;
  }
  return ids;
}

// Lines of a text stream, without their '\n' (and a '\r' before it); each must be UTF-8.
std::vector<std::string> read_lines(std::istream& in, const std::string& label) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    for (size_t i = 0; i < line.size();) {
      char32_t cp;
      const size_t n = t2r::utf8::sequence_at(line, i, &cp);
      if (n == 0) {
        fail(label + " line " + std::to_string(lines.size() + 1) + ": invalid UTF-8 at byte " + std::to_string(i));
      }
      i += n;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

void dump_teacher_forced_logits(const t2r::Model& model, const Options& o) {
  const std::vector<int32_t> src = parse_id_list("--src-ids", o.src_ids), prev = parse_id_list("--prev-ids", o.prev_ids);
  t2r::ContextOptions c;
  c.max_batch = int(std::min<size_t>(prev.size(), 4096));
  c.max_outputs = c.max_batch;
  c.max_context = int64_t(prev.size());
  c.max_source_length = int64_t(src.size());
  c.threads = o.translator.threads;
  t2r::Context context(model, c);
  context.encode(0, src.data(), src.size());
  context.attach(0, 0);
  FILE* f = std::fopen(o.dump_logits_path.c_str(), "wb");
  if (!f) fail("cannot create " + o.dump_logits_path + ": " + std::strerror(errno));
  const size_t V = size_t(model.hparams().vocab_size);
  std::vector<t2r::BatchRow> rows;
  for (size_t done = 0; done < prev.size(); done += rows.size()) {
    rows.clear();
    for (size_t t = done; t < prev.size() && rows.size() < size_t(c.max_batch); ++t) {
      rows.push_back({prev[t], 0, int64_t(t), true});
    }
    const float* logits = context.decode(rows.data(), rows.size());
    if (std::fwrite(logits, sizeof(float), rows.size() * V, f) != rows.size() * V) fail("cannot write " + o.dump_logits_path);
  }
  if (std::fclose(f) != 0) fail("cannot write " + o.dump_logits_path);
  std::printf("wrote %zu x %zu logits to %s\n", prev.size(), V, o.dump_logits_path.c_str());
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

int run(const Options& o) {
  const auto load_start = std::chrono::steady_clock::now();
  const std::unique_ptr<t2r::Model> model = t2r::Model::load(o.model_path);
  if (!model->hparams().has_encoder()) fail(o.model_path + ": a language model, not a translation model (use t2r-run)");
  if (!o.dump_logits_path.empty()) {
    dump_teacher_forced_logits(*model, o);
    return 0;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  const std::vector<std::string> lines = read_lines(std::cin, "stdin");
  std::vector<std::string> references;
  if (!o.bleu_path.empty()) {
    std::ifstream file(o.bleu_path, std::ios::binary);
    if (!file) fail("cannot open " + o.bleu_path + ": " + std::strerror(errno));
    references = read_lines(file, o.bleu_path);
    if (references.size() != lines.size()) {
      fail(o.bleu_path + ": " + std::to_string(references.size()) + " reference lines for " +
           std::to_string(lines.size()) + " source lines");
    }
  }

  t2r::TranslatorOptions options = o.translator;
  // The encoder's buffers are planned for the longest source of the input.
  std::vector<std::vector<int32_t>> sources;
  size_t longest = 1;
  for (const std::string& line : lines) {
    sources.push_back(t2r::translation_source_ids(*model, line));
    longest = std::max(longest, sources.back().size());
  }
  options.max_source_length = int64_t(longest);
  options.max_sentences = int(std::min<size_t>(size_t(options.max_sentences), std::max<size_t>(lines.size(), 1)));
  const auto translator = std::make_unique<t2r::Translator>(*model, options);

  const auto start = std::chrono::steady_clock::now();
  const auto results = translator->translate_all(sources);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  size_t target_tokens = 0;
  t2r::BleuStats bleu;
  const bool with_scores = o.scores || o.translator.nbest > 1;
  for (size_t i = 0; i < results.size(); ++i) {
    for (const t2r::Hypothesis& h : results[i]) {
      const std::string text = t2r::translation_text(*model, h.ids);
      if (with_scores) {
        std::printf("%zu\t%.6f\t%s\n", i, double(h.score), text.c_str());
      } else {
        std::printf("%s\n", text.c_str());
      }
      if (&h == &results[i].front()) {
        target_tokens += h.ids.size();
        if (!references.empty()) bleu.add(text, references[i]);
      }
    }
  }
  std::fflush(stdout);
  if (!references.empty()) {
    const t2r::BleuScore s = t2r::bleu_score(bleu);
    const double ratio = bleu.ref_len > 0 ? double(bleu.sys_len) / double(bleu.ref_len) : 0;
    std::fprintf(stderr, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)\n",
                 s.score, s.precisions[0], s.precisions[1], s.precisions[2], s.precisions[3], s.brevity_penalty, ratio,
                 static_cast<long long>(bleu.sys_len), static_cast<long long>(bleu.ref_len));
  }
  if (o.stats) {
    std::fprintf(stderr,
                 "load %.3f s; %zu sentences, %zu target tokens in %.3f s: %.1f sentences/s, %.1f target tokens/s "
                 "(beam %d, batch %d, %d threads); context %.2f MB, peak RSS %.1f MB\n",
                 load_s, lines.size(), target_tokens, seconds, double(lines.size()) / seconds,
                 double(target_tokens) / seconds, options.beam, options.max_sentences, translator->context().threads(),
                 double(translator->context().bytes()) / 1e6, double(peak_rss_kib()) / 1024.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  try {
    return run(options);
  } catch (const t2r::Error& e) {
    fail(e.what());
  } catch (const std::bad_alloc&) {
    fail("out of memory");
  }
}
