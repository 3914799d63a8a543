// t2r-vulkan-check: lists the Vulkan devices, runs a model on one, compares its logits with the
// CPU session's and measures decode speed, prompt speed and the decode speed of batches.
//   t2r-vulkan-check [model.t2r] [--device INDEX|NAME] [--tokens N] [--prompt N] [--batch B] [--list]
// --prompt N: a prompt of N tokens as one batch (a session with a prefill chunk of N), timed.
// --batch B: B sequences decoding together (B rows a step, each asking for logits), timed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "session.h"
#include "vulkan/session.h"

namespace {

int32_t argmax(const float* x, int64_t n) { return int32_t(std::max_element(x, x + n) - x); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A prompt of `count` tokens fed as one batch, after a warm-up prompt of the same length.
void measure_prompt(const t2r::Model& model, t2r::vulkan::SessionOptions options, int count) {
  options.prefill_chunk = count;
  t2r::vulkan::Session session(model, options);
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 17 + 3) % size_t(model.hparams().vocab_size));
  session.prefill(tokens.data(), tokens.size());
  session.reset();
  const auto start = std::chrono::steady_clock::now();
  session.prefill(tokens.data(), tokens.size());
  const double seconds = seconds_since(start);
  std::printf("prompt: %d tokens in %.3f s: %.1f tokens/s\n", count, seconds, count / seconds);
}

// B sequences decoding greedily together, one row each per step, every row's logits read back.
void measure_batch(const t2r::Model& model, const t2r::vulkan::SessionOptions& session, int B, int tokens) {
  t2r::vulkan::ContextOptions options;
  options.max_sequences = B;
  options.max_batch = B;
  options.max_outputs = B;
  options.max_context = session.max_context;
  options.device = session.device;
  t2r::vulkan::Context context(model, options);
  const int64_t V = model.hparams().vocab_size;
  std::vector<t2r::BatchRow> rows(static_cast<size_t>(B));
  for (int s = 0; s < B; ++s) rows[size_t(s)] = t2r::BatchRow{int32_t((s * 131 + 3) % V), s, 0, true};
  const int steps = std::max(1, tokens / B);
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < steps; ++t) {
    const float* logits = context.decode(rows.data(), rows.size());
    for (int s = 0; s < B; ++s) {
      rows[size_t(s)].token = argmax(logits + size_t(s) * size_t(V), V);
      ++rows[size_t(s)].position;
    }
  }
  const double seconds = seconds_since(start);
  std::printf("batch of %d sequences: %d steps in %.3f s: %.1f tokens/s (%.1f steps/s)\n", B, steps, seconds,
              B * steps / seconds, steps / seconds);
}

int run(int argc, char** argv) {
  std::string path = T2R_DEFAULT_MODEL;
  t2r::vulkan::SessionOptions options;
  int tokens = 256, prompt = 0, batch = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--list") {
      for (const std::string& line : t2r::vulkan::list_devices()) std::printf("%s\n", line.c_str());
      return 0;
    } else if (arg == "--device" && i + 1 < argc) {
      const std::string value = argv[++i];
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) {
        options.device.index = std::atoi(value.c_str());
      } else {
        options.device.name = value;
      }
    } else if (arg == "--tokens" && i + 1 < argc) {
      tokens = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--prompt" && i + 1 < argc) {
      prompt = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--batch" && i + 1 < argc) {
      batch = std::max(1, std::atoi(argv[++i]));
    } else if (!arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      std::fprintf(stderr, "usage: t2r-vulkan-check [model.t2r] [--device INDEX|NAME] [--tokens N] [--prompt N] [--batch B] [--list]\n");
      return 2;
    }
  }

  auto model = t2r::Model::load(path);
  const int64_t V = model->hparams().vocab_size;
  t2r::vulkan::Session gpu(*model, options);
  std::printf("device: %s (subgroup size %u%s)\n", gpu.device().name().c_str(), gpu.device().subgroup_size(),
              gpu.device().subgroup_arithmetic() ? ", subgroup arithmetic" : "");
  std::printf("session: %.1f MB of device memory\n", double(gpu.bytes()) / 1e6);

  // Agreement: the same greedy sequence through both backends. (The CPU session goes before
  // the timing: its worker threads would compete with a CPU Vulkan device.)
  const int compare = std::min(tokens, 64);
  double max_diff = 0;
  {
    t2r::Session cpu(*model);
    int32_t token = model->tokenizer().eos_id();
    for (int t = 0; t < compare; ++t) {
      const float* g = gpu.step(token);
      const float* c = cpu.step(token);
      for (int64_t v = 0; v < V; ++v) max_diff = std::max(max_diff, double(std::fabs(g[v] - c[v])));
      token = argmax(c, V);
    }
  }
  std::printf("max |logit diff| vs CPU over %d tokens: %.3g\n", compare, max_diff);

  // Decode speed: greedy, feeding each argmax back (the logits come back every step).
  gpu.reset();
  int32_t token = model->tokenizer().eos_id();
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < tokens; ++t) token = argmax(gpu.step(token), V);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("decode: %d tokens in %.3f s: %.1f tokens/s (%.1f us/token)\n", tokens, seconds, tokens / seconds,
              1e6 * seconds / tokens);
  if (prompt > 0) measure_prompt(*model, options, prompt);
  if (batch > 0) measure_batch(*model, options, batch, tokens);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "t2r-vulkan-check: %s\n", e.what());
    return 1;
  }
}
