// t2r-bench: decode and prompt speed against the memory-bandwidth limit, and decode speed and
// memory versus context length for a T2R model and its softmax twin; for translation models, decode
// speed and memory versus target and source length (translation_bench.h).
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "flag_values.h"
#include "bandwidth.h"
#include "matmul_bench.h"
#include "context.h"
#include "error.h"
#include "sequence_state.h"
#include "session.h"
#include "svg_chart.h"
#include "synthetic_model.h"
#include "translation_bench.h"
#ifdef T2R_VULKAN
#include "vulkan/session.h"
#endif

namespace {

using namespace t2r;

const char kUsage[] =
    "usage: t2r-bench [options]\n"
    "  --model NAME|FILE     synthetic 'shipped', 'gpt2-small' (default), 'llama3.1-8b', 'mistral-7b'\n"
    "                        or 'tiny', or a .t2r file;\n"
    "                        translation: synthetic 'mt-reference', 'mt-base', 'mt-big', or a .t2r file\n"
    "  --attention LIST      synthetic models: t2r,softmax (default both), lolcats, supra, liger\n"
    "  --dtype LIST          synthetic models: f32,f16,bf16,q8_0,q4_0 (default f32,f16)\n"
    "  --threads LIST        thread counts (default 1 and one per physical core)\n"
    "  --tokens N            decode tokens timed per measurement (default 32)\n"
    "  --prompt N            prompt tokens timed (default 512)\n"
    "  --repeat N            runs per measurement, the fastest reported (default 3)\n"
    "  --contexts LIST       context lengths of the sweep (default 128,...,16384; 'none' skips it)\n"
    "  --sequences LIST      also decode batches of this many sequences at once, each at a context\n"
    "                        of --batch-context (e.g. 1,2,4,8,16,32; default: none)\n"
    "  --batch-context N     the context of every sequence in the --sequences batches (default 2048)\n"
    "  --backend cpu|vulkan  where the model runs (default cpu; vulkan measures decode and prompt only)\n"
    "  --matmul N            time the matmul kernel alone on the synthetic model's projection shapes\n"
    "                        times N tokens, per --dtype, 1 thread, against the arithmetic peak\n"
    "                        measured in the same run, and exit\n"
    "translation models (the first --dtype only; --tokens, --repeat and --threads apply):\n"
    "  --targets LIST        target lengths of the target sweep (default 16,32,...,1024)\n"
    "  --sources LIST        source lengths of the source sweep (default 16,32,...,1024), each\n"
    "                        decoding --tokens target tokens\n"
    "  --source N            the source length of the target sweep (default 32)\n"
    "  --beams LIST          beam sizes: sequences decoded per step of a sentence (default 1,5)\n"
    "  --out DIR             where results.csv, results.json and the SVG plots go (default bench-results)\n"
    "  --write-model FILE    write the synthetic model (the first of --attention and --dtype) to FILE\n"
    "                        and exit, to run it elsewhere (WebAssembly, README)\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-bench: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Options {
  std::string model = "gpt2-small";
  std::vector<std::string> attention = {"t2r", "softmax"};
  std::vector<DType> dtypes = {DType::F32, DType::F16};
  std::vector<int> threads;
  long tokens = 32, prompt = 512, repeat = 3;
  std::vector<long> contexts = {128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  std::vector<long> sequences;
  long batch_context = 2048;
  std::string out = "bench-results";
  std::string backend = "cpu";
  std::vector<long> targets = {16, 32, 64, 128, 256, 512, 1024}, sources = targets, beams = {1, 5};
  long source = 32;
  std::string write_model;
  long matmul_tokens = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) usage_error("unexpected argument '" + arg + "'");
    if (i + 1 >= argc) usage_error(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--model") {
      o.model = value;
    } else if (arg == "--attention") {
      o.attention = split_list(value);
      for (const auto& a : o.attention) {
        if (a != "t2r" && a != "softmax" && a != "lolcats" && a != "supra" && a != "liger") {
          usage_error("--attention takes t2r, softmax, lolcats, supra and liger, got '" + a + "'");
        }
      }
    } else if (arg == "--dtype") {
      o.dtypes.clear();
      for (const auto& name : split_list(value)) {
        DType t;
        if (!dtype_from_name(name, &t)) usage_error("unknown dtype '" + name + "'");
        o.dtypes.push_back(t);
      }
    } else if (arg == "--threads") {
      for (const auto& n : split_list(value)) o.threads.push_back(int(flags::integer(arg, n, 1, 1024)));
    } else if (arg == "--tokens") {
      o.tokens = flags::integer(arg, value, 1, 1 << 20);
    } else if (arg == "--prompt") {
      o.prompt = flags::integer(arg, value, 1, 1 << 20);
    } else if (arg == "--repeat") {
      o.repeat = flags::integer(arg, value, 1, 1000);
    } else if (arg == "--contexts") {
      o.contexts.clear();
      if (value != "none") {
        for (const auto& n : split_list(value)) o.contexts.push_back(flags::integer(arg, n, 1, 1 << 24));
      }
    } else if (arg == "--sequences") {
      o.sequences.clear();
      for (const auto& n : split_list(value)) o.sequences.push_back(flags::integer(arg, n, 1, 4096));
    } else if (arg == "--batch-context") {
      o.batch_context = flags::integer(arg, value, 0, 1 << 24);
    } else if (arg == "--targets" || arg == "--sources" || arg == "--beams") {
      std::vector<long>& list = arg == "--targets" ? o.targets : arg == "--sources" ? o.sources : o.beams;
      list.clear();
      for (const auto& n : split_list(value)) {
        list.push_back(flags::integer(arg, n, 1, arg == "--beams" ? 64 : 1 << 20));
      }
      if (list.empty()) usage_error(arg + " needs at least one value");
    } else if (arg == "--source") {
      o.source = flags::integer(arg, value, 1, 1 << 20);
    } else if (arg == "--out") {
      o.out = value;
    } else if (arg == "--matmul") {
      o.matmul_tokens = flags::integer(arg, value, 1, 1 << 16);
    } else if (arg == "--write-model") {
      o.write_model = value;
    } else if (arg == "--backend") {
      if (value != "cpu" && value != "vulkan") usage_error("--backend takes cpu or vulkan, got '" + value + "'");
#ifndef T2R_VULKAN
      if (value == "vulkan") usage_error("this build has no vulkan backend");
#endif
      o.backend = value;
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  if (o.threads.empty()) {
    o.threads.push_back(1);
    if (physical_core_count() > 1) o.threads.push_back(physical_core_count());
  }
  return o;
}

struct LoadedModel {
  std::string label;  // e.g. "gpt2-small t2r q8_0"
  std::string attention;
  DType dtype;
  std::unique_ptr<Model> model;
};

// Loads and says what the weights cost in memory: the file's bytes, and those the CPU kernel path
// repacked at load (held in memory instead of the mapped pages), with the load time.
std::unique_ptr<Model> load_model(const std::string& path, const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  auto model = Model::load(path);
  std::fprintf(stderr, "loaded %s in %.2f s: %llu bytes of weights in the file, %llu bytes repacked at load\n", label.c_str(),
               seconds_since(start), static_cast<unsigned long long>(model->weight_bytes()),
               static_cast<unsigned long long>(model->packed_bytes()));
  return model;
}

std::vector<LoadedModel> load_models(const Options& o) {
  std::vector<LoadedModel> models;
  bench::SyntheticConfig config;
  if (!bench::synthetic_config(o.model, &config)) {
    auto model = load_model(o.model, o.model);
    const std::string attention(model->hparams().attention_summary());
    models.push_back({o.model, attention, model->file().tensors().front().dtype, std::move(model)});
    return models;
  }
  for (const auto& attention : o.attention) {
    for (DType dtype : o.dtypes) {
      const std::string label = o.model + " " + attention + " " + std::string(dtype_name(dtype));
      const char* tmp = std::getenv("TMPDIR");
      const std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/t2r-bench-" + std::to_string(getpid()) + ".t2r";
      std::fprintf(stderr, "building %s...\n", label.c_str());
      if (config.encoder_layers > 0) {
        bench::synthetic_translation_model(config, attention == "t2r", dtype).write(path);
      } else {
        bench::synthetic_model(config, std::vector<std::string>(size_t(config.n_layers), attention), dtype).write(path);
      }
      auto model = load_model(path, label);
      std::remove(path.c_str());  // the mapping outlives the name
      models.push_back({label, attention, dtype, std::move(model)});
    }
  }
  return models;
}

// Bytes of weights one decoded token reads: every matrix once, except the input embedding of
// an untied model, of which it reads one row.
uint64_t weight_bytes_per_token(const Model& model) {
  uint64_t bytes = model.weight_bytes();
  if (model.file().find("output")) bytes -= model.file().find("token_embedding")->size;
  return bytes;
}

std::vector<int32_t> random_ids(size_t n, int64_t vocab) {
  std::mt19937 rng(7);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = int32_t(rng() % uint32_t(vocab));
  return ids;
}

// The fastest of `repeat` runs of measure(), which returns a speed: on a shared machine the
// slower runs measure the neighbours (read_bandwidth reports its best pass the same way).
template <typename Measure>
double fastest(long repeat, Measure measure) {
  double best = 0;
  for (long i = 0; i < repeat; ++i) best = std::max(best, measure());
  return best;
}

// Decode tokens/s from the session's position (restored before each run by `rewind`).
template <typename AnySession, typename Rewind>
double decode_speed(AnySession& session, long tokens, long repeat, Rewind rewind) {
  const int64_t vocab = session.model().hparams().vocab_size;
  return fastest(repeat, [&] {
    rewind();
    int32_t token = 1;
    session.step(token);  // warm-up: first touch of the weights and caches
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < tokens; ++i) {
      const float* logits = session.step(token);
      token = int32_t((i * 7919 + int64_t(logits[0] > 0)) % vocab);
    }
    return double(tokens) / seconds_since(start);
  });
}

// Prompt tokens/s of a prefill from the empty sequence.
template <typename AnySession>
double prompt_speed(AnySession& session, const std::vector<int32_t>& prompt, long repeat) {
  return fastest(repeat, [&] {
    session.reset();
    const auto start = std::chrono::steady_clock::now();
    session.prefill(prompt.data(), prompt.size());
    return double(prompt.size()) / seconds_since(start);
  });
}

// A saved state (`version`) at `position` whose `floats` payload floats are random: decoding costs
// the same whatever the state's values are, and filling a 16k softmax cache by prefill would take
// far longer than the measurement.
std::vector<unsigned char> random_state(uint32_t version, const Model& model, int64_t position, size_t floats) {
  std::vector<unsigned char> state(kStateHeaderBytes + floats * sizeof(float));
  write_state_header(state.data(), {version, model.file().checksum(), position, uint64_t(floats * sizeof(float))});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(0.0f, 0.1f);
  for (size_t i = 0; i < floats; ++i) {
    const float v = uniform(rng);
    std::memcpy(state.data() + kStateHeaderBytes + i * sizeof(float), &v, sizeof(float));
  }
  return state;
}

// Puts the session at `position` with a filled state, as if it had read that many tokens.
void seek(Session& session, int64_t position) {
  const Hyperparams& hp = session.model().hparams();
  const size_t floats =
      size_t(hp.vocab_size) + state_payload_floats(hp, session.context().state_layout(), position);
  const std::vector<unsigned char> state = random_state(kSessionStateVersion, session.model(), position, floats);
  session.restore_state(state.data(), state.size());
}

// Aggregate decode tokens/s of `sequences` sequences, each at position `context` with a filled
// state, one row of each per batch; and the prompt tokens/s of the same context (64-row chunks of
// one sequence), the arithmetic roof of a batch.
struct BatchSpeed {
  double decode = 0, prompt = 0;
  size_t context_bytes = 0, sequence_bytes = 0;
};

BatchSpeed batch_speed(const Model& model, int threads, long sequences, long context, long tokens, long prompt,
                       long repeat) {
  const Hyperparams& hp = model.hparams();
  ContextOptions options;
  options.max_sequences = int(sequences);
  options.max_batch = int(std::max<long>(sequences, 64));
  options.max_context = context + tokens + 2;
  options.threads = threads;
  Context batch(model, options);
  BatchSpeed speed;
  speed.context_bytes = batch.bytes();
  speed.sequence_bytes = batch.state_layout().floats * sizeof(float);

  // One filled state of `context` positions, restored into every sequence.
  const std::vector<unsigned char> state = random_state(
      kSequenceStateVersion, model, context, state_payload_floats(hp, batch.state_layout(), context));
  std::vector<BatchRow> rows(size_t(std::max<long>(sequences, 64)));
  speed.decode = fastest(repeat, [&] {
    for (long s = 0; s < sequences; ++s) batch.restore(int(s), state.data(), state.size());
    const auto step = [&](long i) {
      for (long s = 0; s < sequences; ++s) {
        rows[size_t(s)] = {int32_t((i * 7919 + s) % hp.vocab_size), int32_t(s), batch.position(int(s)), true};
      }
      batch.decode(rows.data(), size_t(sequences));
    };
    step(0);  // warm-up: first touch of the weights and caches
    const auto start = std::chrono::steady_clock::now();
    for (long i = 1; i <= tokens; ++i) step(i);
    return double(tokens * sequences) / seconds_since(start);
  });
  const std::vector<int32_t> ids = random_ids(size_t(prompt), hp.vocab_size);
  speed.prompt = fastest(repeat, [&] {
    batch.clear(0);
    const auto start = std::chrono::steady_clock::now();
    for (size_t done = 0; done < ids.size(); done += 64) {
      const size_t count = std::min<size_t>(64, ids.size() - done);
      for (size_t i = 0; i < count; ++i) rows[i] = {ids[done + i], 0, int64_t(done + i), i + 1 == count};
      batch.decode(rows.data(), count);
    }
    return double(ids.size()) / seconds_since(start);
  });
  return speed;
}

void write_results(const Options& o, const std::string& csv, const std::vector<std::string>& json,
                   const std::vector<bench::Series>& speed_series, const std::vector<bench::Series>& memory_series) {
  if (std::system(("mkdir -p '" + o.out + "'").c_str()) != 0) throw Error("cannot create " + o.out);
  std::ofstream(o.out + "/results.csv") << csv;
  std::ofstream json_file(o.out + "/results.json");
  json_file << "{\n  \"results\": [\n";
  for (size_t i = 0; i < json.size(); ++i) json_file << json[i] << (i + 1 < json.size() ? ",\n" : "\n");
  json_file << "  ]\n}\n";
  if (!speed_series.empty()) {
    const std::string threads = std::to_string(o.threads.back()) + " thread" + (o.threads.back() > 1 ? "s" : "");
    std::ofstream(o.out + "/decode_vs_context.svg")
        << bench::line_chart_svg("Decode speed vs context (" + threads + ")", "context (tokens)", "tokens/s",
                                 speed_series, true, false);
    std::ofstream(o.out + "/memory_vs_context.svg")
        << bench::line_chart_svg("Session memory vs context", "context (tokens)", "MB", memory_series, true, true);
  }
  std::printf("\nwrote %s/results.csv, results.json%s\n", o.out.c_str(),
              speed_series.empty() ? "" : ", decode_vs_context.svg, memory_vs_context.svg");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const flags::BadFlagValue& e) {
    usage_error(e.what());
  }
  try {
    if (!o.write_model.empty()) {
      bench::SyntheticConfig config;
      if (!bench::synthetic_config(o.model, &config)) usage_error("--write-model needs a synthetic --model");
      if (o.attention.empty() || o.dtypes.empty()) usage_error("--write-model needs an --attention and a --dtype");
      const std::string& kind = o.attention.front();
      (config.encoder_layers > 0
           ? bench::synthetic_translation_model(config, kind == "t2r", o.dtypes.front())
           : bench::synthetic_model(config, std::vector<std::string>(size_t(config.n_layers), kind), o.dtypes.front()))
          .write(o.write_model);
      std::printf("wrote %s %s %s to %s\n", o.model.c_str(), o.attention.front().c_str(),
                  std::string(dtype_name(o.dtypes.front())).c_str(), o.write_model.c_str());
      return 0;
    }
    if (o.matmul_tokens > 0) {
      bench::SyntheticConfig config;
      if (!bench::synthetic_config(o.model, &config)) usage_error("--matmul needs a synthetic --model");
      bench::run_matmul_bench(config, o.dtypes, size_t(o.matmul_tokens), o.repeat);
      return 0;
    }
    std::string csv = "section,model,attention,dtype,threads,context,decode_tok_s,prompt_tok_s,weight_gb_s,"
                      "bandwidth_gb_s,bandwidth_ratio,session_bytes\n";
    std::vector<std::string> json;
    auto record = [&](const std::string& section, const LoadedModel& m, int threads, long context, double decode,
                      double prompt, double weight_gbs, double bandwidth, size_t session_bytes) {
      const std::string dtype(dtype_name(m.dtype));
      const double ratio = bandwidth > 0 ? weight_gbs / bandwidth : 0.0;
      char line[512];
      std::snprintf(line, sizeof line, "%s,%s,%s,%s,%d,%ld,%.2f,%.2f,%.2f,%.2f,%.3f,%zu\n", section.c_str(),
                    o.model.c_str(), m.attention.c_str(), dtype.c_str(), threads, context, decode, prompt, weight_gbs,
                    bandwidth, ratio, session_bytes);
      csv += line;
      std::snprintf(line, sizeof line,
                    "    {\"section\": \"%s\", \"model\": \"%s\", \"attention\": \"%s\", \"dtype\": \"%s\", "
                    "\"threads\": %d, \"context\": %ld, \"decode_tok_s\": %.2f, \"prompt_tok_s\": %.2f, "
                    "\"weight_gb_s\": %.2f, \"bandwidth_gb_s\": %.2f, \"bandwidth_ratio\": %.3f, "
                    "\"session_bytes\": %zu}",
                    section.c_str(), o.model.c_str(), m.attention.c_str(), dtype.c_str(), threads, context, decode,
                    prompt, weight_gbs, bandwidth, ratio, session_bytes);
      json.push_back(line);
    };

    std::vector<LoadedModel> models = load_models(o);
    if (models.front().model->hparams().has_encoder()) {
      std::vector<bench::TranslationModel> translation;
      for (const auto& m : models) {
        if (m.dtype == models.front().dtype) translation.push_back({m.label, m.attention, m.model.get()});
      }
      bench::run_translation_bench(
          translation, {o.model, o.threads, o.beams, o.targets, o.sources, o.source, o.tokens, o.repeat, o.out});
      return 0;
    }
#ifdef T2R_VULKAN
    if (o.backend == "vulkan") {
      std::printf("\n%-26s %-28s %11s %11s %14s\n", "model", "device", "decode t/s", "prompt t/s", "device bytes");
      for (const auto& m : models) {
        vulkan::SessionOptions options;
        options.max_context = o.prompt + o.tokens + 2;
        vulkan::Session session(*m.model, options);
        const std::vector<int32_t> prompt = random_ids(size_t(o.prompt), m.model->hparams().vocab_size);
        const double prompt_tok_s = prompt_speed(session, prompt, o.repeat);
        const double decode = decode_speed(session, o.tokens, o.repeat, [&] { session.reset(); });
        std::printf("%-26s %-28s %11.1f %11.1f %14zu\n", m.label.c_str(), session.device().name().c_str(), decode,
                    prompt_tok_s, session.bytes());
        record("vulkan", m, 0, 0, decode, prompt_tok_s, 0, 0, session.bytes());
      }
      write_results(o, csv, json, {}, {});
      return 0;
    }
#endif
    std::printf("measuring read bandwidth (1 GiB)...\n");
    std::vector<double> bandwidth;
    for (int threads : o.threads) {
      ThreadPool pool(threads);
      const bench::ReadBandwidth measured = bench::read_bandwidth(pool);
      bandwidth.push_back(measured.gb_s);
      std::printf("  %d thread%s: %.1f GB/s (%d stream%s per thread)\n", threads, threads > 1 ? "s" : "",
                  measured.gb_s, measured.streams, measured.streams > 1 ? "s" : "");
    }

    std::printf("\n%-26s %7s %11s %11s %9s %7s %12s %14s\n", "model", "threads", "decode t/s", "prompt t/s", "GB/s",
                "of BW", "prompt/dec", "session bytes");
    for (const auto& m : models) {
      const std::vector<int32_t> prompt = random_ids(size_t(o.prompt), m.model->hparams().vocab_size);
      for (size_t ti = 0; ti < o.threads.size(); ++ti) {
        SessionOptions options;
        options.threads = o.threads[ti];
        options.max_context = o.prompt + o.tokens + 2;
        Session session(*m.model, options);
        const double prompt_tok_s = prompt_speed(session, prompt, o.repeat);
        const double decode = decode_speed(session, o.tokens, o.repeat, [&] { session.reset(); });
        const double gbs = decode * double(weight_bytes_per_token(*m.model)) / 1e9;
        std::printf("%-26s %7d %11.1f %11.1f %9.1f %6.0f%% %11.1fx %14zu\n", m.label.c_str(), o.threads[ti], decode,
                    prompt_tok_s, gbs, 100 * gbs / bandwidth[ti], prompt_tok_s / decode, session.bytes());
        record("speed", m, o.threads[ti], 0, decode, prompt_tok_s, gbs, bandwidth[ti], session.bytes());
      }
    }

    // Batches of sequences: aggregate decode speed against min(B x one sequence, prompt speed).
    if (!o.sequences.empty()) {
      std::printf("\n%-26s %7s %9s %11s %11s %7s %14s %14s\n", "sequences at context", "threads", "sequences",
                  "decode t/s", "roof t/s", "of roof", "context bytes", "bytes/sequence");
      for (const auto& m : models) {
        for (int threads : o.threads) {
          double single = 0;
          for (long B : o.sequences) {
            const BatchSpeed speed = batch_speed(*m.model, threads, B, o.batch_context, o.tokens, o.prompt, o.repeat);
            if (single == 0) single = B == 1 ? speed.decode : 0;
            const double roof = single > 0 ? std::min(double(B) * single, speed.prompt) : 0;
            std::printf("%-26s %7d %9ld %11.1f %11.1f %6.0f%% %14zu %14zu\n", m.label.c_str(), threads, B,
                        speed.decode, roof, roof > 0 ? 100 * speed.decode / roof : 0.0, speed.context_bytes,
                        speed.sequence_bytes);
            std::printf("sequences %ld: %.1f tok/s\n", B, speed.decode);
            record("sequences", m, threads, o.batch_context, speed.decode, speed.prompt, 0, 0, speed.context_bytes);
          }
        }
      }
    }

    // Context sweep: one model per attention kind (the first dtype), all threads.
    std::vector<bench::Series> speed_series, memory_series;
    if (!o.contexts.empty()) {
      std::printf("\n%-26s %9s %11s %14s\n", "decode vs context", "context", "decode t/s", "session bytes");
      const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
      for (const auto& m : models) {
        if (m.dtype != models.front().dtype) continue;
        bench::Series speed{m.label, colors[speed_series.size() % 4], {}}, memory = speed;
        for (long context : o.contexts) {
          SessionOptions options;
          options.threads = o.threads.back();
          options.max_context = context + o.tokens + 2;
          Session session(*m.model, options);
          const double decode = decode_speed(session, o.tokens, o.repeat, [&] { seek(session, context); });
          std::printf("%-26s %9ld %11.1f %14zu\n", m.label.c_str(), context, decode, session.bytes());
          record("context", m, o.threads.back(), context, decode, 0, 0, bandwidth.back(), session.bytes());
          speed.points.emplace_back(double(context), decode);
          memory.points.emplace_back(double(context), double(session.bytes()) / 1e6);
        }
        speed_series.push_back(speed);
        memory_series.push_back(memory);
      }
    }

    write_results(o, csv, json, speed_series, memory_series);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "t2r-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
