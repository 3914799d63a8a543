#include "matmul_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <random>

#include "arithmetic_peak.h"
#include "kernels.h"
#include "quantize.h"

namespace t2r::bench {
namespace {

struct Weights {
  std::vector<unsigned char> stored;
  std::unique_ptr<unsigned char[]> packed;
  cpu::Matrix matrix;
};

Weights make_weights(DType dtype, size_t rows, size_t cols, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.02f);
  Weights w;
  const size_t stride = row_bytes(dtype, cols);
  w.stored.resize(rows * stride);
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    for (float& v : row) v = dist(rng);
    unsigned char* out = w.stored.data() + r * stride;
    switch (dtype) {
      case DType::F32: std::memcpy(out, row.data(), stride); break;
      case DType::F16:
      case DType::BF16:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = dtype == DType::F16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
          std::memcpy(out + 2 * i, &h, 2);
        }
        break;
      case DType::Q8_0: quantize_q8_0(row.data(), cols, reinterpret_cast<BlockQ8_0*>(out)); break;
      case DType::Q4_0: quantize_q4_0(row.data(), cols, reinterpret_cast<BlockQ4_0*>(out)); break;
    }
  }
  w.matrix = cpu::Matrix{dtype, w.stored.data(), rows, cols};
  if (const size_t bytes = cpu::packed_bytes(w.matrix)) {
    w.packed.reset(new (std::align_val_t(64)) unsigned char[bytes]);
    w.matrix = cpu::pack(w.matrix, w.packed.get());
  }
  return w;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void run_matmul_bench(const SyntheticConfig& config, const std::vector<DType>& dtypes, size_t tokens, long repeat) {
  cpu::init_kernels();
  const ArithmeticPeak peak = measure_arithmetic_peak();
  std::printf("kernel path %.*s\n", int(cpu::kernel_path().size()), cpu::kernel_path().data());
  if (peak.measured) {
    std::printf("arithmetic peak of one core: %.2f GHz; vfmadd (512-bit) %.2f per cycle = %.1f GMAC/s f32; "
                "vpdpbusd (512-bit) %.2f per cycle = %.1f GMAC/s int8\n",
                peak.ghz, peak.fma_per_cycle, peak.f32_gmacs(), peak.dpbusd_per_cycle, peak.int8_gmacs());
  }
  const size_t d = size_t(config.dim), f = size_t(config.ffn_dim);
  const size_t shapes[][2] = {{d, d}, {f, d}, {d, f}};
  std::mt19937 rng(11);
  std::vector<float> x(tokens * std::max(d, f)), y(tokens * std::max(d, f));
  for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  std::printf("\n%-6s %-14s %8s %10s %10s\n", "dtype", "shape", "tokens", "GMAC/s", "of peak");
  for (DType dtype : dtypes) {
    for (const auto& shape : shapes) {
      const Weights w = make_weights(dtype, shape[0], shape[1], rng);
      const double macs = double(shape[0]) * double(shape[1]) * double(tokens);
      double best = 0;
      for (long i = 0; i <= repeat; ++i) {  // the first run warms the caches and is not counted
        const auto start = std::chrono::steady_clock::now();
        cpu::matmul(w.matrix, x.data(), tokens, nullptr, y.data(), 0, shape[0]);
        if (i > 0) best = std::max(best, macs / seconds_since(start) / 1e9);
      }
      const bool integer = dtype == DType::Q8_0 || dtype == DType::Q4_0;
      const double roof = integer ? peak.int8_gmacs() : peak.f32_gmacs();
      char label[32];
      std::snprintf(label, sizeof label, "[%zu, %zu]", shape[0], shape[1]);
      std::printf("%-6s %-14s %8zu %10.1f", std::string(dtype_name(dtype)).c_str(), label, tokens, best);
      if (peak.measured) std::printf(" %9.0f%%", 100 * best / roof);
      std::printf("\n");
    }
  }
}

}  // namespace t2r::bench
