// t2r-longrun: free-running generation over a very long sequence, to show that a T2R session
// stays finite and fixed in memory. Samples with a seed and feeds each sample back, checks every
// logit vector for NaN and infinity, and at 1k, 10k, 100k, ... tokens prints the speed, peak and
// current RSS, the largest |S| and z of the recurrent state, and how far the float32 state of the
// last layer has drifted from a double-precision accumulation of exactly the same increments.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "flag_values.h"
#include "sampler.h"
#include "session.h"

using namespace t2r;

namespace {

const char kUsage[] =
    "usage: t2r-longrun MODEL.t2r [--tokens N] [--threads N] [--seed S] [--temp T] [--top-p P]\n"
    "  --tokens N    tokens to generate (default 1000000)\n"
    "  --threads N   CPU threads (default 1)\n"
    "  --seed S      sampling seed (default 1)\n"
    "  --temp T      sampling temperature (default 1)\n"
    "  --top-p P     nucleus sampling mass (default 1: off)\n"
    "Exits with status 1 at the first logit that is NaN or infinite.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-longrun: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

double peak_rss_mb() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

// Resident memory now, in MB: all of it, and the anonymous part (heap, session, stacks; the
// rest is the mapped model file and code). /proc/self/smaps_rollup walks the page tables, so it
// is exact; statm and getrusage read the kernel's per-CPU batched counters, which can lag by tens
// of pages.
struct Resident {
  double total_mb = 0, anonymous_mb = 0;
};
Resident resident_now() {
  Resident r;
  if (FILE* f = std::fopen("/proc/self/smaps_rollup", "r")) {
    char line[256];
    double kb;
    while (std::fgets(line, sizeof line, f)) {
      if (std::sscanf(line, "Rss: %lf kB", &kb) == 1) r.total_mb = kb / 1024.0;
      if (std::sscanf(line, "Anonymous: %lf kB", &kb) == 1) r.anonymous_mb = kb / 1024.0;
    }
    std::fclose(f);
  }
  return r;
}

// The last layer's recurrent state accumulated in double from the same phi(k) and v the session
// adds in float32, so that the difference is the float32 accumulation error alone.
class DoubleShadow {
 public:
  DoubleShadow(size_t heads, size_t r, size_t dh, float floor)
      : heads_(heads), r_(r), dh_(dh), floor_(floor), state_(heads * r * dh), normalizer_(heads * r) {}

  void add(const Session& session) {
    for (size_t h = 0; h < heads_; ++h) {
      const HeadView view = session.last_layer_head(h);
      double* state = &state_[h * r_ * dh_];
      double* normalizer = &normalizer_[h * r_];
      for (size_t i = 0; i < r_; ++i) {
        normalizer[i] += view.phi_k[i];
        for (size_t j = 0; j < dh_; ++j) state[i * dh_ + j] += double(view.phi_k[i]) * double(view.v[j]);
      }
    }
  }

  struct Drift {
    double z, s, out;  // largest difference relative to the largest double value, per quantity
  };
  // Compares the session's float32 state with this one; `out` is the attention output of the
  // last token's phi(q), computed in double from each state.
  Drift compare(const Session& session) const {
    double z_diff = 0, z_max = 0, s_diff = 0, s_max = 0, out_diff = 0, out_max = 0;
    for (size_t h = 0; h < heads_; ++h) {
      const HeadView view = session.last_layer_head(h);
      const double* state = &state_[h * r_ * dh_];
      const double* normalizer = &normalizer_[h * r_];
      double den_f = 0, den_d = 0;
      for (size_t i = 0; i < r_; ++i) {
        z_diff = std::max(z_diff, std::fabs(double(view.normalizer[i]) - normalizer[i]));
        z_max = std::max(z_max, std::fabs(normalizer[i]));
        den_f += double(view.phi_q[i]) * view.normalizer[i];
        den_d += double(view.phi_q[i]) * normalizer[i];
      }
      den_f = std::max(den_f, double(floor_));
      den_d = std::max(den_d, double(floor_));
      for (size_t j = 0; j < dh_; ++j) {
        double num_f = 0, num_d = 0;
        for (size_t i = 0; i < r_; ++i) {
          const double sf = view.state[i * dh_ + j], sd = state[i * dh_ + j];
          s_diff = std::max(s_diff, std::fabs(sf - sd));
          s_max = std::max(s_max, std::fabs(sd));
          num_f += double(view.phi_q[i]) * sf;
          num_d += double(view.phi_q[i]) * sd;
        }
        out_diff = std::max(out_diff, std::fabs(num_f / den_f - num_d / den_d));
        out_max = std::max(out_max, std::fabs(num_d / den_d));
      }
    }
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    return {ratio(z_diff, z_max), ratio(s_diff, s_max), ratio(out_diff, out_max)};
  }

 private:
  size_t heads_, r_, dh_;
  float floor_;
  std::vector<double> state_, normalizer_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int64_t tokens = 1000000;
  SessionOptions session_options;
  session_options.threads = 1;
  SamplerOptions sampling;
  sampling.temperature = 1.0f;
  sampling.seed = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) usage_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "-h" || arg == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (arg == "--tokens") {
        tokens = flags::integer(arg, value(), 1, int64_t(1) << 40);
      } else if (arg == "--threads" || arg == "-t") {
        session_options.threads = int(flags::integer(arg, value(), 1, 1024));
      } else if (arg == "--seed") {
        sampling.seed = uint64_t(flags::integer(arg, value(), 0, int64_t(1) << 62));
      } else if (arg == "--temp") {
        sampling.temperature = float(flags::number(arg, value(), 0, 100));
      } else if (arg == "--top-p") {
        sampling.top_p = float(flags::number(arg, value(), 1e-6, 1));
      } else if (!arg.empty() && arg[0] == '-') {
        usage_error("unknown option '" + arg + "'");
      } else if (path.empty()) {
        path = arg;
      } else {
        usage_error("unexpected argument '" + arg + "'");
      }
    }
  } catch (const flags::BadFlagValue& e) {
    usage_error(e.what());
  }
  if (path.empty()) usage_error("no model given");

  try {
    const std::unique_ptr<Model> model = Model::load(path);
    const Hyperparams& hp = model->hparams();
    if (hp.has_softmax_attention()) throw Error(path + ": softmax attention; t2r-longrun runs linear-attention models");
    Session session(*model, session_options);
    Sampler sampler(int32_t(hp.vocab_size), sampling);
    const LinearAttentionSpec& last = hp.attention(size_t(hp.n_layers - 1)).linear;
    DoubleShadow shadow(size_t(hp.n_heads), size_t(last.features), size_t(hp.head_dim), last.floor);
    const size_t V = size_t(hp.vocab_size);

    std::printf("%s: %lld layers x %lld heads, state r %lld x d_h %lld; %d thread(s), seed %llu, temperature %g\n",
                path.c_str(), static_cast<long long>(hp.n_layers), static_cast<long long>(hp.n_heads),
                static_cast<long long>(last.features), static_cast<long long>(hp.head_dim), session.threads(),
                static_cast<unsigned long long>(sampling.seed), double(sampling.temperature));
    std::printf("float32 drift: largest |float32 - float64| / largest |float64| over the last layer's heads\n");
    std::printf("%10s %9s %12s %9s %9s %10s %10s %9s %9s %9s\n", "tokens", "tok/s", "peak RSS MB", "RSS MB",
                "anon MB", "max |S|", "max z", "drift z", "drift S", "drift out");
    std::fflush(stdout);

    int32_t token = int32_t(model->tokenizer().eos_id());  // a new document
    int64_t next_report = 1000, last_count = 0;
    auto last_time = std::chrono::steady_clock::now();
    for (int64_t t = 1; t <= tokens; ++t) {
      const float* logits = session.step(token);
      shadow.add(session);
      for (size_t v = 0; v < V; ++v) {
        if (!std::isfinite(logits[v])) {
          std::printf("token %lld: logit %zu is %g\n", static_cast<long long>(t), v, double(logits[v]));
          return 1;
        }
      }
      token = sampler.sample(logits);
      if (t == next_report || t == tokens) {
        const auto now = std::chrono::steady_clock::now();
        const double seconds = std::chrono::duration<double>(now - last_time).count();
        const StateMagnitude m = session.state_magnitude();
        const DoubleShadow::Drift drift = shadow.compare(session);
        const Resident resident = resident_now();
        std::printf("%10lld %9.1f %12.2f %9.2f %9.2f %10.4g %10.4g %9.2e %9.2e %9.2e\n", static_cast<long long>(t),
                    double(t - last_count) / seconds, peak_rss_mb(), resident.total_mb, resident.anonymous_mb,
                    double(m.max_abs_state), double(m.max_normalizer), drift.z, drift.s, drift.out);
        std::fflush(stdout);
        if (t == next_report) next_report *= 10;
        last_count = t;
        last_time = std::chrono::steady_clock::now();
      }
    }
    std::printf("all %lld logit vectors finite\n", static_cast<long long>(tokens));
  } catch (const Error& e) {
    std::fprintf(stderr, "t2r-longrun: %s\n", e.what());
    return 1;
  }
  return 0;
}
