// t2r-vulkan-check: lists the Vulkan devices, runs a model on one, compares its logits with the
// CPU session's and measures decode speed.
//   t2r-vulkan-check [model.t2r] [--device INDEX|NAME] [--tokens N] [--list]
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

int run(int argc, char** argv) {
  std::string path = T2R_DEFAULT_MODEL;
  t2r::vulkan::SessionOptions options;
  int tokens = 256;
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
    } else if (!arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      std::fprintf(stderr, "usage: t2r-vulkan-check [model.t2r] [--device INDEX|NAME] [--tokens N] [--list]\n");
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
