// Every dispatched kernel on every kernel path this CPU runs (scalar included), against the
// scalar reference, on shapes that exercise vector tails, row groups and tiles; and the
// quantized matmuls against the exact product of the unquantized weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "kernels_reference.h"
#include "quantize.h"

using namespace t2r;
using namespace t2r::cpu;

namespace {

// Runs `check` on every available kernel path, then restores the default one.
template <typename Check>
void for_each_path(Check check) {
  init_kernels();
  const std::string saved(kernel_path());
  for (const std::string& path : available_kernel_paths()) {
    CAPTURE(path);
    REQUIRE(select_kernel_path(path));
    check();
  }
  REQUIRE(select_kernel_path(saved));
}

std::vector<float> random_values(size_t n, std::mt19937& rng, float low = -1, float high = 1) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A [rows, cols] matrix stored in `dtype` from f32 values, as the packer stores it.
struct Stored {
  std::vector<unsigned char> bytes;
  Matrix matrix;
};

Stored store(DType dtype, size_t rows, size_t cols, const std::vector<float>& values) {
  Stored s;
  const size_t stride = row_bytes(dtype, cols);
  s.bytes.resize(rows * stride);
  for (size_t r = 0; r < rows; ++r) {
    const float* in = values.data() + r * cols;
    unsigned char* out = s.bytes.data() + r * stride;
    for (size_t i = 0; i < cols; ++i) {
      if (dtype == DType::F32) std::memcpy(out + 4 * i, in + i, 4);
      const uint16_t h = dtype == DType::F16 ? f32_to_f16(in[i]) : f32_to_bf16(in[i]);
      if (dtype == DType::F16 || dtype == DType::BF16) std::memcpy(out + 2 * i, &h, 2);
    }
    if (dtype == DType::Q8_0) quantize_q8_0(in, cols, reinterpret_cast<BlockQ8_0*>(out));
    if (dtype == DType::Q4_0) quantize_q4_0(in, cols, reinterpret_cast<BlockQ4_0*>(out));
  }
  s.matrix = Matrix{dtype, s.bytes.data(), rows, cols};
  return s;
}

// w packed for the current kernel path (cpu::pack), or w itself when the path has no packing for it.
struct Packed {
  std::vector<unsigned char> bytes;
  Matrix matrix;
};

Packed pack_for_path(const Matrix& w) {
  Packed p;
  p.bytes.resize(packed_bytes(w) + 64);
  void* aligned = p.bytes.data() + (64 - reinterpret_cast<uintptr_t>(p.bytes.data()) % 64) % 64;
  p.matrix = pack(w, aligned);
  return p;
}

// The largest |a - b| over `scale`, elementwise; NaN if any is (an infinity or NaN in a or b).
double max_scaled_error(const std::vector<float>& a, const std::vector<float>& b, const std::vector<double>& scale) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double error = std::fabs(double(a[i]) - double(b[i])) / scale[i];
    if (std::isnan(error)) return error;
    worst = std::max(worst, error);
  }
  return worst;
}

// Y = X W^T + bias on one kernel path against the reference: every output in [row_begin, row_end)
// within `tolerance` of sum_k |w_k x_k| + |bias| (the scale of its rounding), and nothing
// outside the range written.
// Weights drawn from [-w_range, w_range], activations from [-x_range, x_range].
void check_matmul(DType dtype, size_t rows, size_t cols, size_t n, bool with_bias, std::mt19937& rng,
                  float w_range = 1, float x_range = 2) {
  init_kernels();  // the reference reads f16 through a table it fills
  CAPTURE(dtype_name(dtype));
  CAPTURE(rows);
  CAPTURE(cols);
  CAPTURE(n);
  CAPTURE(w_range);
  CAPTURE(x_range);
  const Stored w = store(dtype, rows, cols, random_values(rows * cols, rng, -w_range, w_range));
  const std::vector<float> x = random_values(n * cols, rng, -x_range, x_range);
  const std::vector<float> bias = random_values(rows, rng);
  const float* b = with_bias ? bias.data() : nullptr;
  const size_t begin = rows > 2 ? 1 : 0, end = rows > 2 ? rows - 1 : rows;

  std::vector<double> scale(n * rows, 1e-30);
  std::vector<float> row(cols);
  for (size_t r = 0; r < rows; ++r) {
    matrix_row(w.matrix, r, 1, row.data());
    for (size_t t = 0; t < n; ++t) {
      for (size_t k = 0; k < cols; ++k) scale[t * rows + r] += std::fabs(double(row[k]) * x[t * cols + k]);
      if (b) scale[t * rows + r] += std::fabs(b[r]);
    }
  }
  const float sentinel = 12345.0f;
  std::vector<float> want(n * rows, sentinel);
  reference::matmul(w.matrix, x.data(), n, b, want.data(), begin, end);
  for_each_path([&] {
    const Packed packed = pack_for_path(w.matrix);
    for (const Matrix* m : {&w.matrix, &packed.matrix}) {
      CAPTURE(m->packed != nullptr);
      std::vector<float> got(n * rows, sentinel);
      matmul(*m, x.data(), n, b, got.data(), begin, end);
      for (size_t t = 0; t < n; ++t) {
        for (size_t r = 0; r < rows; ++r) {
          if (r < begin || r >= end) REQUIRE(got[t * rows + r] == sentinel);
        }
      }
      CHECK(max_scaled_error(got, want, scale) < 2e-6);
    }
  });
}

}  // namespace

TEST_CASE("matmul matches the reference on every path for f32 f16 and bf16") {
  std::mt19937 rng(1);
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    for (size_t cols : {1, 7, 8, 15, 16, 17, 33, 100, 1024, 1031, 2100}) {
      for (size_t n : {1, 3, 17, 64}) check_matmul(dtype, 13, cols, n, n != 3, rng);
    }
  }
}

// Decoding may rearrange x and carry f16's exponent bias on it (kernels_avx512.cpp): subnormal
// f16 weights, activations of 2^16 and more, and rows longer than its buffer.
TEST_CASE("matvec of f16 and bf16 rows matches the reference for subnormal weights, large activations and long rows") {
  std::mt19937 rng(2);
  for (DType dtype : {DType::F16, DType::BF16}) {
    check_matmul(dtype, 5, 100, 1, true, rng, 1e-4f, 2);  // about 60% of the f16 weights subnormal
    for (float x_range : {65536.0f, 3e5f, 1e30f}) check_matmul(dtype, 5, 1031, 1, true, rng, 1, x_range);
    check_matmul(dtype, 3, 16384 + 1000, 1, true, rng);
  }
}

TEST_CASE("matmul matches the reference on every path for q8_0 and q4_0") {
  std::mt19937 rng(2);
  for (DType dtype : {DType::Q8_0, DType::Q4_0}) {
    for (size_t cols : {32, 64, 96, 256, 640, 2080}) {
      for (size_t n : {1, 3, 17, 64}) check_matmul(dtype, 13, cols, n, n != 3, rng);
    }
    for (size_t n : {1, 3}) check_matmul(dtype, 5, 33 * 1024, n, true, rng);  // more blocks than a tile holds
    check_matmul(dtype, 1, 32, 1, false, rng);
  }
}

// Several tokens go through register tiles of rows and tokens; which tile a product falls in
// depends on the number of tokens and on the rows a thread was given, so the result must not:
// the same logits whatever the chunk size or thread count.
TEST_CASE("a token's matmul result does not depend on the tile or row range it falls in") {
  std::mt19937 rng(3);
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    CAPTURE(dtype_name(dtype));
    // Three float column tiles and two strips of packed blocks; ragged row and token tiles; more
    // tokens than one pass of packed activations.
    const size_t rows = 29, cols = 2112, n = 37;
    const Stored w = store(dtype, rows, cols, random_values(rows * cols, rng));
    const std::vector<float> x = random_values(n * cols, rng, -2, 2);
    const std::vector<float> bias = random_values(rows, rng);
    for_each_path([&] {
      const Packed packed = pack_for_path(w.matrix);
      const Matrix& m = packed.matrix;
      CAPTURE(m.packed != nullptr);
      std::vector<float> whole(n * rows), split(n * rows), later((n - 5) * rows), few(3 * rows), one(rows);
      matmul(m, x.data(), n, bias.data(), whole.data(), 0, rows);
      matmul(m, x.data(), n, bias.data(), split.data(), 0, 7);  // as two threads would
      matmul(m, x.data(), n, bias.data(), split.data(), 7, rows);
      matmul(m, x.data() + 5 * cols, n - 5, bias.data(), later.data(), 0, rows);  // shifted tiles
      matmul(m, x.data(), 3, bias.data(), few.data(), 0, rows);
      matmul(m, x.data(), 1, bias.data(), one.data(), 0, rows);  // decoding
      CHECK(split == whole);
      CHECK(std::equal(few.begin(), few.end(), whole.begin()));
      if (m.packed) CHECK(std::equal(one.begin(), one.end(), whole.begin()));  // packed: decoding sums alike
      CHECK(std::equal(later.begin(), later.end(), whole.begin() + 5 * rows));
    });
  }
}

TEST_CASE("quantized matmuls stay close to the exact product of the unquantized weights") {
  // Bounds relative to sum_k |w_k x_k|: the rounding of the weights (and, for the block types,
  // of x to q8), not of the arithmetic.
  const std::pair<DType, double> bounds[] = {
      {DType::F32, 1e-6}, {DType::F16, 1e-3}, {DType::BF16, 4e-3}, {DType::Q8_0, 1e-2}, {DType::Q4_0, 8e-2}};
  std::mt19937 rng(3);
  const size_t rows = 64, cols = 512, n = 4;
  const std::vector<float> values = random_values(rows * cols, rng);
  const std::vector<float> x = random_values(n * cols, rng);
  for (const auto& entry : bounds) {
    const DType dtype = entry.first;  // not a structured binding: lambdas capture it
    const double bound = entry.second;
    CAPTURE(dtype_name(dtype));
    const Stored w = store(dtype, rows, cols, values);
    double worst_of_paths = 0;
    for_each_path([&] {
      std::vector<float> y(n * rows);
      matmul(w.matrix, x.data(), n, nullptr, y.data(), 0, rows);
      double worst = 0;
      for (size_t t = 0; t < n; ++t) {
        for (size_t r = 0; r < rows; ++r) {
          double exact = 0, scale = 0;
          for (size_t k = 0; k < cols; ++k) {
            exact += double(values[r * cols + k]) * x[t * cols + k];
            scale += std::fabs(double(values[r * cols + k]) * x[t * cols + k]);
          }
          worst = std::max(worst, std::fabs(y[t * rows + r] - exact) / scale);
        }
      }
      CHECK(worst < bound);
      worst_of_paths = std::max(worst_of_paths, worst);
    });
    MESSAGE(dtype_name(dtype) << ": max |error| " << worst_of_paths << " of sum |w x|, over all paths");
  }
}

TEST_CASE("matvec is matmul of one token over all rows") {
  std::mt19937 rng(4);
  const Stored w = store(DType::Q8_0, 9, 64, random_values(9 * 64, rng));
  const std::vector<float> x = random_values(64, rng);
  for_each_path([&] {
    std::vector<float> a(9), b(9);
    matvec(w.matrix, x.data(), nullptr, a.data());
    matmul(w.matrix, x.data(), 1, nullptr, b.data(), 0, 9);
    CHECK(a == b);
  });
}

TEST_CASE("linear attention steps match the reference on every path") {
  std::mt19937 rng(5);
  for (size_t r : {1, 7, 32, 33}) {
    for (size_t d_v : {1, 5, 16, 64, 70, 100}) {
      CAPTURE(r);
      CAPTURE(d_v);
      // Five steps from the same random state; phi is non-negative as after relu or elu + 1.
      const std::vector<float> state0 = random_values(r * d_v, rng), z0 = random_values(r, rng, 0, 1);
      std::vector<std::vector<float>> q, k, v;
      for (int step = 0; step < 5; ++step) {
        q.push_back(random_values(r, rng, 0, 1));
        k.push_back(random_values(r, rng, 0, 1));
        v.push_back(random_values(d_v, rng));
      }
      std::vector<float> want_state = state0, want_z = z0, want_out(d_v);
      std::vector<std::vector<float>> want_outs;
      for (int step = 0; step < 5; ++step) {
        reference::linear_attention_step(want_state.data(), want_z.data(), q[step].data(), k[step].data(),
                                         v[step].data(), r, d_v, 0.01f, want_out.data());
        want_outs.push_back(want_out);
      }
      for_each_path([&] {
        std::vector<float> state = state0, z = z0, out(d_v);
        for (int step = 0; step < 5; ++step) {
          linear_attention_step(state.data(), z.data(), q[step].data(), k[step].data(), v[step].data(), r, d_v,
                                0.01f, out.data());
          for (size_t j = 0; j < d_v; ++j) REQUIRE(out[j] == doctest::Approx(want_outs[step][j]).epsilon(1e-4));
        }
        for (size_t i = 0; i < r * d_v; ++i) REQUIRE(state[i] == doctest::Approx(want_state[i]).epsilon(1e-5));
        for (size_t i = 0; i < r; ++i) REQUIRE(z[i] == doctest::Approx(want_z[i]).epsilon(1e-6));
      });
    }
  }
}

TEST_CASE("chunked linear attention matches the reference on every path") {
  std::mt19937 rng(6);
  // n past one and two sub-chunks of 64, r past a block of 64 features, ragged d_v; rows strided
  // as in a session (heads side by side).
  for (size_t n : {1, 5, 70, 131}) {
    for (size_t r : {1, 7, 32, 70}) {
      for (size_t d_v : {1, 5, 64, 100}) {
        CAPTURE(n);
        CAPTURE(r);
        CAPTURE(d_v);
        const size_t phi_stride = r + 3, v_stride = d_v + 2, out_stride = d_v + 1;
        const std::vector<float> q = random_values(n * phi_stride, rng, 0, 1), k = random_values(n * phi_stride, rng, 0, 1);
        const std::vector<float> v = random_values(n * v_stride, rng);
        const std::vector<float> state0 = random_values(r * d_v, rng), z0 = random_values(r, rng, 0, 1);
        std::vector<float> want_state = state0, want_z = z0, want_out(n * out_stride);
        const auto chunk = [&](std::vector<float>& out) {
          return LinearAttentionChunk{q.data(), k.data(), phi_stride, v.data(), v_stride, out.data(), out_stride,
                                      n,        r,        d_v,        0.01f};
        };
        reference::linear_attention_chunk(chunk(want_out), want_state.data(), want_z.data());
        for_each_path([&] {
          std::vector<float> state = state0, z = z0, out(n * out_stride);
          linear_attention_chunk(chunk(out), state.data(), z.data());
          for (size_t t = 0; t < n; ++t) {
            for (size_t j = 0; j < d_v; ++j) {
              REQUIRE(out[t * out_stride + j] == doctest::Approx(want_out[t * out_stride + j]).epsilon(1e-4));
            }
          }
          for (size_t i = 0; i < r * d_v; ++i) REQUIRE(state[i] == doctest::Approx(want_state[i]).epsilon(1e-5));
          for (size_t i = 0; i < r; ++i) REQUIRE(z[i] == doctest::Approx(want_z[i]).epsilon(1e-6));
        });
      }
    }
  }
}

TEST_CASE("softmax attention matches the reference on every path") {
  std::mt19937 rng(6);
  for (size_t length : {1, 2, 17, 100}) {
    for (size_t head_dim : {1, 7, 64, 80, 128}) {
      CAPTURE(length);
      CAPTURE(head_dim);
      const size_t stride = 2 * head_dim + 3;  // interleaved kv heads
      const std::vector<float> q = random_values(head_dim, rng);
      const std::vector<float> keys = random_values(length * stride, rng), values = random_values(length * stride, rng);
      std::vector<float> want(head_dim), scores(length);
      reference::softmax_attention(q.data(), keys.data(), values.data(), length, stride, head_dim, scores.data(),
                                   want.data());
      for_each_path([&] {
        std::vector<float> got(head_dim, 0.0f), got_scores(length);
        softmax_attention(q.data(), keys.data(), values.data(), length, stride, head_dim, got_scores.data(), got.data());
        for (size_t j = 0; j < head_dim; ++j) REQUIRE(got[j] == doctest::Approx(want[j]).epsilon(1e-5).scale(1));
      });
    }
  }
}

// The SIMD paths share one exp (kernels_avx512.cpp's exp16) and so agree bit for bit.
TEST_CASE("silu_mul matches the reference on every path to 2 ulp, infinities and NaN included") {
  std::mt19937 rng(5);
  std::vector<float> gate = random_values(1000, rng, -30, 30);
  const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 88.0f, -88.0f, 89.0f, -89.0f, 104.0f, -104.0f, 200.0f,
                            -200.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.5f, -0.5f};
  gate.insert(gate.end(), std::begin(specials), std::end(specials));
  const std::vector<float> up = random_values(gate.size(), rng, -2, 2);
  std::vector<float> want = gate, simd;
  reference::silu_mul(want.data(), up.data(), want.size());
  for_each_path([&] {
    for (size_t n : {gate.size(), size_t(13)}) {  // a masked tail
      std::vector<float> got = gate;
      silu_mul(got.data(), up.data(), n);
      if (kernel_path() != "scalar" && n == gate.size()) {
        if (simd.empty()) simd = got;
        CHECK(std::memcmp(got.data(), simd.data(), n * sizeof(float)) == 0);
      }
      for (size_t i = 0; i < n; ++i) {
        CAPTURE(gate[i]);
        if (std::isnan(want[i])) {
          CHECK(std::isnan(got[i]));
        } else if (std::isinf(want[i]) || want[i] == 0) {
          CHECK(got[i] == want[i]);
        } else {
          CHECK(std::fabs(got[i] - want[i]) <= 2 * (std::nextafter(std::fabs(want[i]), INFINITY) - std::fabs(want[i])));
        }
      }
    }
  });
}

TEST_CASE("a SIMD path exists where this build targets one") {
  init_kernels();
  const std::vector<std::string> paths = available_kernel_paths();
  REQUIRE(paths.front() == "scalar");
  CHECK(kernel_path() == paths.back());  // init_kernels picks the best unless T2R_CPU says otherwise
  CHECK_FALSE(select_kernel_path("no-such-path"));
#if defined(__aarch64__)
  CHECK(paths.size() >= 2);  // neon is always there
#endif
#if defined(T2R_EXPECT_WASM_SIMD)
  CHECK(paths.back() == "wasm-simd128");  // the engine ran the module, so it has SIMD128
#endif
  MESSAGE("kernel paths: " << [&] {
    std::string all;
    for (const auto& p : paths) all += p + " ";
    return all;
  }());
}
