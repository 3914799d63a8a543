// t2r-run: generate text with a t2r model, and expose the runtime for checking from outside
// (tokenize, dump logits, perplexity). Built on the public C API only.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "flag_values.h"
#include "stop_text.h"
#include "t2r.h"

namespace flags = t2r::flags;
using t2r::run::StopText;

namespace {

const char kUsage[] =
    "usage: t2r-run [MODEL.t2r] [options]\n"
    "\n"
    "Generation (default: the shipped model, greedy):\n"
    "  -p, --prompt TEXT      prompt (default: empty, which starts a new document)\n"
    "  -f, --file FILE        read the prompt from FILE\n"
    "  -n, --tokens N         tokens to generate (default 64)\n"
    "  -i, --interactive      then read lines from stdin: each line, with its newline, continues the\n"
    "                         same sequence (the state carries over) and gets N more tokens; Ctrl-D\n"
    "                         (end of input) ends\n"
    "  --stop TEXT            end the generation before TEXT, which is not printed (repeatable)\n"
    "  --temp T               sampling temperature; 0 is greedy (default 0)\n"
    "  --top-k K              sample among the K most likely tokens (default 0: all)\n"
    "  --top-p P              nucleus sampling mass (default 1: off)\n"
    "  --repeat-penalty R     penalize the last 64 tokens (default 1: off)\n"
    "  --seed S               random seed; the same seed gives the same text (default 0)\n"
    "  --max-context N        KV cache positions for softmax models (default: the model's)\n"
    "  --memory-budget SIZE   refuse a session needing more than SIZE bytes (K, M, G: 1024-based\n"
    "                         suffixes, e.g. 512M; default: no limit)\n"
    "  -t, --threads N        CPU threads (default: one per physical core)\n"
    "  --backend cpu|vulkan   where the model runs (default cpu)\n"
    "  --device N|NAME        vulkan: device index or part of its name (default: the best one)\n"
    "  --length-config C     length-adaptive prefill of the prompt: per layer, the fraction of its\n"
    "                         tokens kept (\"1,1,0.8,0.6,...\": the first 1, non-increasing), or the\n"
    "                         name of a configuration stored in the model (t2r-search writes them)\n"
    "  --stop-at-eos          stop when the model ends the document\n"
    "  --parallel N           generate N continuations of the prompt in one batch: the prompt is\n"
    "                         read once, then continuation i samples with seed S + i (default 1)\n"
    "  --stats                print load time, tokens/s and memory to stderr\n"
    "Tokenizing (the prompt and --tokenize):\n"
    "  --no-bos               add no BOS/EOS\n"
    "  --bos                  start with the model's BOS token even if its tokenizer adds none\n"
    "  --special-as-text      special-token texts (\"<|eot_id|>\") are plain text, for untrusted input\n"
    "Checking:\n"
    "  --info                 print the model's hyperparameters\n"
    "  --tokenize TEXT        print the token ids of TEXT (with the BOS/EOS the model expects)\n"
    "  --ids 5,17,3 --dump-logits OUT.f32\n"
    "                         feed these ids; write every position's logits as float32 [T, V]\n"
    "  --ppl-ids FILE         perplexity of int32 ids in FILE over windows of 512 tokens, each\n"
    "                         from an empty state, predicting tokens 1..511 of each window\n";

struct Options {
  std::string model_path;
  std::string prompt, prompt_file;
  bool has_prompt = false;
  bool interactive = false;
  std::vector<std::string> stops;
  bool force_bos = false;
  long tokens = 64;
  t2r_sampler_options sampling = t2r_sampler_default_options();
  t2r_session_options session = t2r_session_default_options();
  std::string backend, device;
  bool stop_at_eos = false, stats = false, info = false;
  std::string tokenize_text, ids_text, dump_logits_path, ppl_path, length_config;
  bool tokenize = false;
  long parallel = 1;
  uint32_t tokenize_flags = 0;  // T2R_TOKENIZE_*
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-run: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "t2r-run: %s\n", message.c_str());
  std::exit(1);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "-p" || arg == "--prompt") {
      o.prompt = value();
      o.has_prompt = true;
    } else if (arg == "-f" || arg == "--file") {
      o.prompt_file = value();
    } else if (arg == "-i" || arg == "--interactive") {
      o.interactive = true;
    } else if (arg == "--stop") {
      o.stops.push_back(value());
      if (o.stops.back().empty()) usage_error("--stop needs a non-empty text");
    } else if (arg == "-n" || arg == "--tokens") {
      o.tokens = flags::integer(arg, value(), 0, int64_t(1) << 40);
    } else if (arg == "--temp") {
      o.sampling.temperature = float(flags::number(arg, value(), 0, 100));
    } else if (arg == "--top-k") {
      o.sampling.top_k = int32_t(flags::integer(arg, value(), 0, 1 << 30));
    } else if (arg == "--top-p") {
      o.sampling.top_p = float(flags::number(arg, value(), 1e-6f, 1));
    } else if (arg == "--repeat-penalty") {
      o.sampling.repetition_penalty = float(flags::number(arg, value(), 1e-3f, 100));
    } else if (arg == "--seed") {
      o.sampling.seed = uint64_t(flags::integer(arg, value(), 0, int64_t(1) << 62));
    } else if (arg == "--max-context") {
      o.session.max_context = flags::integer(arg, value(), 1, int64_t(1) << 32);
    } else if (arg == "--memory-budget") {
      o.session.memory_budget = flags::size(arg, value());
    } else if (arg == "--backend") {
      o.backend = value();
    } else if (arg == "--device") {
      o.device = value();
    } else if (arg == "-t" || arg == "--threads") {
      o.session.threads = int32_t(flags::integer(arg, value(), 1, 1024));
    } else if (arg == "--length-config") {
      o.length_config = value();
    } else if (arg == "--parallel") {
      o.parallel = flags::integer(arg, value(), 1, 4096);
    } else if (arg == "--stop-at-eos") {
      o.stop_at_eos = true;
    } else if (arg == "--stats") {
      o.stats = true;
    } else if (arg == "--info") {
      o.info = true;
    } else if (arg == "--tokenize") {
      o.tokenize_text = value();
      o.tokenize = true;
    } else if (arg == "--no-bos") {
      o.tokenize_flags |= T2R_TOKENIZE_NO_BOS_EOS;
    } else if (arg == "--bos") {
      o.force_bos = true;
    } else if (arg == "--special-as-text") {
      o.tokenize_flags |= T2R_TOKENIZE_SPECIAL_AS_TEXT;
    } else if (arg == "--ids") {
      o.ids_text = value();
    } else if (arg == "--dump-logits") {
      o.dump_logits_path = value();
    } else if (arg == "--ppl-ids") {
      o.ppl_path = value();
    } else if (!arg.empty() && arg[0] == '-') {
      usage_error("unknown option '" + arg + "'");
    } else if (o.model_path.empty()) {
      o.model_path = arg;
    } else {
      usage_error("unexpected argument '" + arg + "' (the model path was already given)");
    }
  }
  if (o.ids_text.empty() != o.dump_logits_path.empty()) usage_error("--ids and --dump-logits go together");
  if (o.has_prompt && !o.prompt_file.empty()) usage_error("-p and -f both give the prompt: choose one");
  if (o.force_bos && (o.tokenize_flags & T2R_TOKENIZE_NO_BOS_EOS)) usage_error("--bos and --no-bos contradict");
  if (o.interactive && (o.parallel > 1 || !o.dump_logits_path.empty() || !o.ppl_path.empty())) {
    usage_error("-i continues one sequence; it does not combine with --parallel, --dump-logits or --ppl-ids");
  }
  if (!o.length_config.empty() && (!o.dump_logits_path.empty() || !o.ppl_path.empty())) {
    usage_error("--length-config applies to the prompt of a generation, not to --dump-logits or --ppl-ids");
  }
  if (o.parallel > 1 && (!o.length_config.empty() || !o.dump_logits_path.empty() || !o.ppl_path.empty())) {
    usage_error("--parallel generates text; it does not combine with --length-config, --dump-logits or --ppl-ids");
  }
  if (o.model_path.empty()) o.model_path = T2R_DEFAULT_MODEL;
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double peak_rss_mb() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

std::vector<int32_t> tokenize(const t2r_model* model, const std::string& text, uint32_t flags) {
  std::vector<int32_t> ids(text.size() + 16);
  int64_t n = t2r_tokenize_with(model, text.data(), text.size(), ids.data(), ids.size(), flags);
  if (n < 0) fail(t2r_last_error());
  if (size_t(n) > ids.size()) {
    ids.resize(size_t(n));
    n = t2r_tokenize_with(model, text.data(), text.size(), ids.data(), ids.size(), flags);
  }
  ids.resize(size_t(n));
  return ids;
}

// The prompt's ids: the model's BOS/EOS as the flags say, and with --bos a BOS where the model's
// tokenizer adds none.
std::vector<int32_t> prompt_ids(const t2r_model* model, const t2r_model_info& info, const std::string& text,
                                const Options& o) {
  std::vector<int32_t> ids = tokenize(model, text, o.tokenize_flags);
  if (o.force_bos && !info.adds_bos) {
    if (info.bos_id < 0) fail("--bos: the model has no BOS token");
    ids.insert(ids.begin(), info.bos_id);
  }
  return ids;
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) fail("cannot read " + path);
  return text;
}

void print(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

const float* step_or_fail(t2r_session* session, int32_t id) {
  const float* logits = t2r_step(session, id);
  if (!logits) fail(t2r_last_error());
  return logits;
}

struct Generated {
  long tokens;
  double seconds;
};

// Samples up to `count` tokens from `logits` and prints their text through `stop`, feeding each to
// the session; the last one too when `feed_last` (an interactive sequence goes on after it). Ends
// early at `end_token` (not printed, not fed) or at a stop string.
Generated generate_text(t2r_session* session, t2r_sampler* sampler, t2r_text_stream* text, StopText& stop,
                        const float* logits, long count, int32_t end_token, bool feed_last) {
  const auto start = std::chrono::steady_clock::now();
  long generated = 0;
  size_t length = 0;
  while (generated < count && !stop.stopped()) {
    const int32_t id = t2r_sample(sampler, logits);
    ++generated;
    if (id == end_token) break;
    const char* piece = t2r_text_stream_push(text, id, &length);
    print(stop.push({piece, length}));
    if (generated == count && !feed_last) break;  // the last token's logits are not needed
    logits = step_or_fail(session, id);
  }
  const char* rest = t2r_text_stream_finish(text, &length);
  print(stop.push({rest, length}));
  print(stop.finish());
  return {generated, seconds_since(start)};
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    try {
      ids.push_back(int32_t(flags::integer("--ids", text.substr(start, comma - start), 0, INT32_MAX)));
    } catch (const flags::BadFlagValue& e) {
      usage_error(e.what());
    }
    start = comma + 1;
  }
  return ids;
}

std::vector<int32_t> read_id_file(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() % 4 != 0) fail(path + ": size is not a multiple of 4 bytes (expected int32 ids)");
  std::vector<int32_t> ids(bytes.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), bytes.data(), bytes.size());  // data() may be null when empty
  return ids;
}

void dump_logits(t2r_session* session, const std::vector<int32_t>& ids, int64_t vocab, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("cannot create " + path + ": " + std::strerror(errno));
  for (int32_t id : ids) {
    const float* logits = step_or_fail(session, id);
    if (std::fwrite(logits, sizeof(float), size_t(vocab), f) != size_t(vocab)) fail("cannot write " + path);
  }
  if (std::fclose(f) != 0) fail("cannot write " + path);
  std::printf("wrote %zu x %lld logits to %s\n", ids.size(), static_cast<long long>(vocab), path.c_str());
}

void perplexity(t2r_session* session, const std::vector<int32_t>& ids, int64_t vocab) {
  const size_t window = 512;
  double nll = 0;
  size_t predicted = 0, windows = 0;
  for (size_t start = 0; start + 1 < ids.size(); start += window, ++windows) {
    const size_t end = std::min(ids.size(), start + window);
    t2r_session_reset(session);
    for (size_t t = start; t + 1 < end; ++t) {
      const float* logits = step_or_fail(session, ids[t]);
      const int32_t target = ids[t + 1];
      if (target < 0 || target >= vocab) fail("id " + std::to_string(target) + " is outside the vocabulary");
      double max = logits[0];
      for (int64_t v = 1; v < vocab; ++v) max = std::max(max, double(logits[v]));
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - max);
      nll += std::log(sum) + max - double(logits[target]);
      ++predicted;
    }
  }
  if (predicted == 0) fail("--ppl-ids needs at least 2 ids");
  std::printf("perplexity %.6f over %zu predicted tokens (%zu windows of up to %zu)\n", std::exp(nll / double(predicted)),
              predicted, windows, window);
}

void print_info(const t2r_model* model, const std::string& path) {
  t2r_model_info i;
  t2r_model_get_info(model, &i);
  std::printf("model        %s\narchitecture %s\nattention    %s (feature size %lld)\n", path.c_str(), i.architecture,
              i.attention, static_cast<long long>(i.feature_dim));
  std::printf("sizes        vocab %lld, dim %lld, layers %lld, heads %lld / kv %lld, head dim %lld, ffn %lld\n",
              static_cast<long long>(i.vocab_size), static_cast<long long>(i.dim), static_cast<long long>(i.n_layers),
              static_cast<long long>(i.n_heads), static_cast<long long>(i.n_kv_heads),
              static_cast<long long>(i.head_dim), static_cast<long long>(i.ffn_dim));
  std::printf("parameters   %.2fM, %.2f MB of weights, file %.2f MB\n", double(i.parameter_count) / 1e6,
              double(i.weight_bytes) / 1e6, double(i.file_bytes) / 1e6);
  std::printf("tokenizer    %s, eos %d, bos %d%s\n", i.tokenizer, i.eos_id, i.bos_id,
              i.adds_bos ? " (added)" : "");
}

// N continuations of one prompt in one context: the prompt is prefilled once into sequence 0 and
// copied to the others; then each step decodes one row of every unfinished sequence in one batch.
void generate_parallel(const t2r_model* model, const Options& o, const std::vector<int32_t>& prompt,
                       const t2r_model_info& info, double load_seconds) {
  const size_t N = size_t(o.parallel), chunk = 64;
  t2r_context_options options = t2r_context_default_options();
  options.max_sequences = int32_t(N);
  options.max_batch = int32_t(std::max(N, chunk));
  options.max_context = o.session.max_context;
  options.threads = o.session.threads;
  options.memory_budget = o.session.memory_budget;
  options.backend = o.backend.empty() ? nullptr : o.backend.c_str();
  options.device = o.device.empty() ? nullptr : o.device.c_str();
  t2r_context* context = t2r_context_create(model, &options);
  if (!context) fail(t2r_last_error());
  if (o.stats) {
    std::fprintf(stderr, "[load %.1f ms; context of %zu sequences %zu bytes, allocated once]\n", load_seconds * 1e3, N,
                 t2r_context_bytes(context));
  }
  const auto prompt_start = std::chrono::steady_clock::now();
  std::vector<t2r_batch_row> rows(std::max(N, chunk));
  const float* logits = nullptr;
  for (size_t done = 0; done < prompt.size(); done += chunk) {
    const size_t count = std::min(chunk, prompt.size() - done);
    for (size_t i = 0; i < count; ++i) rows[i] = {prompt[done + i], 0, int64_t(done + i), i + 1 == count};
    logits = t2r_decode(context, rows.data(), count, nullptr);
    if (!logits) fail(t2r_last_error());
  }
  const double prompt_seconds = seconds_since(prompt_start);
  for (size_t s = 1; s < N; ++s) {
    if (t2r_sequence_copy(context, 0, int32_t(s)) != 0) fail(t2r_last_error());
  }

  const size_t V = size_t(info.vocab_size);
  std::vector<t2r_sampler*> samplers(N);
  std::vector<t2r_text_stream*> streams(N);
  std::vector<std::string> texts(N);
  std::vector<StopText> stops(N, StopText(o.stops));
  std::vector<float> last(logits, logits + V);  // every sequence's first logits: the prompt's
  std::vector<const float*> next(N, last.data());
  std::vector<bool> done(N, false);
  for (size_t s = 0; s < N; ++s) {
    t2r_sampler_options sampling = o.sampling;
    sampling.seed = o.sampling.seed + s;
    samplers[s] = t2r_sampler_create(model, &sampling);
    streams[s] = t2r_text_stream_create(model);
    if (!samplers[s] || !streams[s]) fail(t2r_last_error());
    for (int32_t id : prompt) t2r_sampler_accept(samplers[s], id);
  }
  const auto generate_start = std::chrono::steady_clock::now();
  long generated = 0;
  std::vector<size_t> live;
  for (long step = 0; step < o.tokens; ++step) {
    live.clear();
    for (size_t s = 0; s < N; ++s) {
      if (done[s]) continue;
      const int32_t id = t2r_sample(samplers[s], next[s]);
      ++generated;
      if ((o.stop_at_eos && id == info.eos_id) || step + 1 == o.tokens) done[s] = true;
      if (o.stop_at_eos && id == info.eos_id) continue;
      size_t length;
      const char* piece = t2r_text_stream_push(streams[s], id, &length);
      texts[s].append(stops[s].push({piece, length}));
      if (stops[s].stopped()) done[s] = true;
      if (done[s]) continue;  // the last token's logits are not needed
      rows[live.size()] = {id, int32_t(s), int64_t(prompt.size()) + step, 1};
      live.push_back(s);
    }
    if (live.empty()) break;
    const float* out = t2r_decode(context, rows.data(), live.size(), nullptr);
    if (!out) fail(t2r_last_error());
    for (size_t i = 0; i < live.size(); ++i) next[live[i]] = out + i * V;
  }
  const double generate_seconds = seconds_since(generate_start);
  for (size_t s = 0; s < N; ++s) {
    size_t length;
    const char* rest = t2r_text_stream_finish(streams[s], &length);
    texts[s].append(stops[s].push({rest, length}));
    texts[s].append(stops[s].finish());
    std::printf("--- continuation %zu of %zu (seed %llu) ---\n%s%s\n", s + 1, N,
                static_cast<unsigned long long>(o.sampling.seed + s), o.prompt.c_str(), texts[s].c_str());
    t2r_text_stream_free(streams[s]);
    t2r_sampler_free(samplers[s]);
  }
  std::fflush(stdout);
  if (o.stats) {
    std::fprintf(stderr, "[prompt %zu tokens in %.1f ms, read once for %zu sequences; generated %ld tokens in all, %.1f tok/s; peak RSS %.1f MB]\n",
                 prompt.size(), prompt_seconds * 1e3, N, generated, double(generated) / generate_seconds, peak_rss_mb());
  }
  t2r_context_free(context);
}

}  // namespace

// At exit: output that could not be written (a full disk, a closed file) is a failure too. exit()
// may not be called again from here, hence _exit.
void check_output_written() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "t2r-run: cannot write the output: %s\n", std::strerror(errno));
    _exit(1);
  }
}

Options parse_options_or_exit(int argc, char** argv) {
  try {
    return parse_options(argc, argv);
  } catch (const flags::BadFlagValue& e) {
    usage_error(e.what());
  }
}

int main(int argc, char** argv) {
  std::atexit(check_output_written);
  const Options o = parse_options_or_exit(argc, argv);
  const auto load_start = std::chrono::steady_clock::now();
  t2r_model* model = t2r_model_load(o.model_path.c_str());
  if (!model) fail(t2r_last_error());
  const double load_seconds = seconds_since(load_start);
  t2r_model_info info;
  t2r_model_get_info(model, &info);

  if (o.info) print_info(model, o.model_path);
  if (o.tokenize) {
    const std::vector<int32_t> ids = prompt_ids(model, info, o.tokenize_text, o);
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? "," : "", ids[i]);
    std::printf("\n");
  }
  if (o.info || o.tokenize) {
    t2r_model_free(model);
    return 0;
  }

  const bool generating = o.dump_logits_path.empty() && o.ppl_path.empty();
  const std::string prompt_text = o.prompt_file.empty() ? o.prompt : read_file(o.prompt_file);
  // -i with no prompt waits for the first line.
  const bool prompted = !o.interactive || o.has_prompt || !o.prompt_file.empty();
  std::vector<int32_t> prompt;
  if (generating && prompted) {
    prompt = prompt_ids(model, info, prompt_text, o);
    if (prompt.empty()) prompt.push_back(info.eos_id);  // an empty prompt starts a new document
  }
  if (generating && o.parallel > 1) {
    generate_parallel(model, o, prompt, info, load_seconds);
    t2r_model_free(model);
    return 0;
  }
  t2r_session_options session_options = o.session;
  t2r_length_config* length_config = nullptr;
  if (!o.length_config.empty()) {
    length_config = t2r_length_config_create(model, o.length_config.c_str());
    if (!length_config) fail(t2r_last_error());
    session_options.max_adaptive_prompt = int64_t(prompt.size());
  }
  session_options.backend = o.backend.empty() ? nullptr : o.backend.c_str();
  session_options.device = o.device.empty() ? nullptr : o.device.c_str();
  t2r_session* session = t2r_session_create(model, &session_options);
  if (!session) fail(t2r_last_error());
  if (o.stats) {
    std::fprintf(stderr, "[load %.1f ms; session %zu bytes, allocated once: state, activations, logits]\n",
                 load_seconds * 1e3, t2r_session_bytes(session));
  }

  if (!o.dump_logits_path.empty()) {
    dump_logits(session, parse_id_list(o.ids_text), info.vocab_size, o.dump_logits_path);
  } else if (!o.ppl_path.empty()) {
    perplexity(session, read_id_file(o.ppl_path), info.vocab_size);
  } else {
    t2r_sampler* sampler = t2r_sampler_create(model, &o.sampling);
    t2r_text_stream* text = t2r_text_stream_create(model);
    if (!sampler || !text) fail(t2r_last_error());
    for (int32_t id : prompt) t2r_sampler_accept(sampler, id);

    const int32_t end_token = o.stop_at_eos ? info.eos_id : -1;
    Generated generated{0, 0};
    auto add = [&](Generated g) {
      generated.tokens += g.tokens;
      generated.seconds += g.seconds;
    };
    double prompt_seconds = 0;
    if (prompted) {
      print(prompt_text);
      const auto prompt_start = std::chrono::steady_clock::now();
      const float* logits = length_config ? t2r_prefill_adaptive(session, prompt.data(), prompt.size(), length_config)
                                          : t2r_prefill(session, prompt.data(), prompt.size());
      if (!logits) fail(t2r_last_error());
      prompt_seconds = seconds_since(prompt_start);
      StopText stop(o.stops);
      add(generate_text(session, sampler, text, stop, logits, o.tokens, end_token, o.interactive));
      print("\n");
    }
    for (std::string line; o.interactive;) {
      if (isatty(STDIN_FILENO)) std::fputs("> ", stderr);
      if (!std::getline(std::cin, line)) break;
      line += '\n';
      // The first text of a sequence gets the prompt's BOS/EOS, a continuation none.
      const std::vector<int32_t> ids =
          t2r_session_position(session) == 0
              ? prompt_ids(model, info, line, o)
              : tokenize(model, line, o.tokenize_flags | T2R_TOKENIZE_NO_BOS_EOS);
      for (int32_t id : ids) t2r_sampler_accept(sampler, id);
      const float* logits = t2r_prefill(session, ids.data(), ids.size());
      if (!logits) fail(t2r_last_error());
      StopText stop(o.stops);
      add(generate_text(session, sampler, text, stop, logits, o.tokens, end_token, true));
      print("\n");
    }
    if (std::cin.bad()) fail("cannot read standard input");
    if (o.stats && length_config) {
      std::fprintf(stderr, "[length config %s: %.1f%% of the prompt's prefill FLOPs]\n", o.length_config.c_str(),
                   100 * t2r_length_config_flops_fraction(length_config, prompt.size()));
    }
    if (o.stats) {
      std::fprintf(stderr, "[prompt %zu tokens in %.1f ms (time to first token), %.1f tok/s; generated %ld tokens, %.1f tok/s; peak RSS %.1f MB]\n",
                   prompt.size(), prompt_seconds * 1e3, double(prompt.size()) / std::max(prompt_seconds, 1e-9),
                   generated.tokens, double(generated.tokens) / std::max(generated.seconds, 1e-9), peak_rss_mb());
    }
    t2r_text_stream_free(text);
    t2r_sampler_free(sampler);
  }
  t2r_length_config_free(length_config);
  t2r_session_free(session);
  t2r_model_free(model);
  return 0;
}
