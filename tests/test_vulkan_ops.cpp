// Every Vulkan kernel against the CPU kernels (backends/cpu/kernels.h), on random data and odd
// shapes, with the validation layer (and its synchronization checks) watching when installed.
#include <doctest/doctest.h>

#ifdef T2R_VULKAN

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "error.h"
#include "kernels.h"
#include "kernels_reference.h"
#include "quantize.h"
#include "vulkan/batch_input.h"
#include "vulkan/ops.h"

using namespace t2r;
using namespace t2r::vulkan;

namespace {

// One validated device per test process, or none (the tests then pass with a warning, unless
// T2R_REQUIRE_VULKAN is set, as CI sets it).
Device* test_device() {
  static std::unique_ptr<Device> device = [] {
    DeviceOptions options;
    options.validation = true;
    try {
      return std::make_unique<Device>(options);
    } catch (const Error& e) {
      if (std::getenv("T2R_REQUIRE_VULKAN")) FAIL("no Vulkan device: " << e.what());
      MESSAGE("skipped: no Vulkan device (" << e.what() << ")");
      return std::unique_ptr<Device>();
    }
  }();
  return device.get();
}

// Host-visible buffers the kernels read and write directly, and a one-dispatch Program.
struct Gpu {
  explicit Gpu(Device& d) : device(d) {}
  Device& device;
  std::vector<Buffer> buffers;
  std::map<VkBuffer, void*> mapped;

  Span bytes(const void* data, size_t size) {
    // The padding that Weights adds: kernels may read a quad past a matrix's end.
    buffers.emplace_back(device, (size + 15) / 16 * 16 + 16, Memory::Upload);
    std::memset(buffers.back().mapped(), 0, buffers.back().size());
    if (data) std::memcpy(buffers.back().mapped(), data, size);
    const Span span = buffers.back().span();
    mapped[span.buffer] = buffers.back().mapped();
    return span;
  }
  Span floats(const std::vector<float>& v) { return bytes(v.data(), v.size() * sizeof(float)); }
  Span zeros(size_t n) { return bytes(nullptr, n * sizeof(float)); }
  Q8Columns q8(size_t columns, size_t cols) {
    return {bytes(nullptr, q8_block_bytes(columns, cols)), bytes(nullptr, q8_scale_bytes(columns, cols))};
  }
  // That q holds row i of x [rows, cols] as cpu::reference::quantize_activations does, for each
  // batch row (with `outputs`, each that asks for logits, as consecutive columns), bit for bit.
  void check_q8(Q8Columns q8, const float* x, size_t cols, const std::vector<BatchRow>& batch, bool outputs) const {
    const auto* q = static_cast<const int8_t*>(mapped.at(q8.blocks.buffer));
    const auto* d = static_cast<const float*>(mapped.at(q8.scales.buffer));
    size_t column = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (outputs && !batch[i].logits) continue;
      CAPTURE(i);
      std::vector<int8_t> want_q(cols);
      std::vector<float> want_d(cols / 32);
      cpu::reference::quantize_activations(x + i * cols, cols / 32, want_q.data(), want_d.data());
      CHECK(std::memcmp(q + column * cols, want_q.data(), cols) == 0);
      CHECK(std::memcmp(d + column * (cols / 32), want_d.data(), want_d.size() * sizeof(float)) == 0);
      ++column;
    }
  }
  // The batch input (vulkan/batch_input.h) of up to kBatch rows; sequence 0's state offset is 0,
  // and each test binds its state alone.
  static constexpr BatchInputLimits kBatch{64, 64, 64};
  Span batch(const std::vector<BatchRow>& rows) {
    const Span span = bytes(nullptr, batch_input_bytes(kBatch));
    write_batch(span, rows);
    return span;
  }
  void write_batch(Span s, const std::vector<BatchRow>& rows) {
    write_batch_input(mapped.at(s.buffer), kBatch, rows.data(), rows.size(), 0);
  }
  void write(Span s, const std::vector<float>& v) { std::memcpy(mapped.at(s.buffer), v.data(), v.size() * sizeof(float)); }
  std::vector<float> read(Span s, size_t n) const {
    const float* p = static_cast<const float*>(mapped.at(s.buffer));
    return std::vector<float>(p, p + n);
  }
  void run(const Dispatch& d) {
    Program program(device);
    program.dispatch(d);
    program.host_barrier();
    program.finish();
    program.run();
    const auto messages = device.validation_messages();
    for (const auto& m : messages) MESSAGE("validation: " << m);
    CHECK(messages.empty());
  }
};

std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A random matrix stored in `dtype` (the bytes the kernels read) and its exact f32 values.
struct TestMatrix {
  DType dtype;
  size_t rows, cols;
  std::vector<unsigned char> stored;
  std::vector<float> values;
};

TestMatrix random_matrix(DType dtype, size_t rows, size_t cols, uint32_t seed) {
  TestMatrix m{dtype, rows, cols, std::vector<unsigned char>(rows * row_bytes(dtype, cols)), {}};
  const std::vector<float> source = random_floats(rows * cols, -1, 1, seed);
  m.values.resize(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    const float* in = source.data() + r * cols;
    float* exact = m.values.data() + r * cols;
    unsigned char* out = m.stored.data() + r * row_bytes(dtype, cols);
    if (dtype == DType::Q8_0) {
      quantize_q8_0(in, cols, reinterpret_cast<BlockQ8_0*>(out));
      dequantize_q8_0(reinterpret_cast<const BlockQ8_0*>(out), cols, exact);
    } else if (dtype == DType::Q4_0) {
      quantize_q4_0(in, cols, reinterpret_cast<BlockQ4_0*>(out));
      dequantize_q4_0(reinterpret_cast<const BlockQ4_0*>(out), cols, exact);
    } else {
      for (size_t i = 0; i < cols; ++i) {
        uint16_t h = 0;
        if (dtype == DType::F32) {
          std::memcpy(out + 4 * i, &in[i], 4);
          exact[i] = in[i];
          continue;
        }
        h = dtype == DType::F16 ? f32_to_f16(in[i]) : f32_to_bf16(in[i]);
        std::memcpy(out + 2 * i, &h, 2);
        exact[i] = dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
  }
  return m;
}

// max |got - want| / scale.
double max_error(const std::vector<float>& got, const std::vector<float>& want, double scale = 1) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])) / scale);
  return worst;
}

// W x on the CPU (in f32; for q8_0 and q4_0, as cpu::matvec multiplies them: by x quantized to
// q8 blocks), and the scale of each row's sum (sum of |w x|), which bounds the rounding error of
// any summation order.
void reference_matvec(const TestMatrix& m, const std::vector<float>& x, std::vector<float>* y,
                      std::vector<float>* scale) {
  y->assign(m.rows, 0);
  scale->assign(m.rows, 0);
  const cpu::Matrix w = dtype_is_block(m.dtype) ? cpu::Matrix{m.dtype, m.stored.data(), m.rows, m.cols}
                                                : cpu::Matrix{DType::F32, m.values.data(), m.rows, m.cols};
  cpu::matvec(w, x.data(), nullptr, y->data());
  for (size_t r = 0; r < m.rows; ++r) {
    for (size_t c = 0; c < m.cols; ++c) (*scale)[r] += std::fabs(m.values[r * m.cols + c] * x[c]);
  }
}

const DType kAllDtypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

// What matvec with `epilogue` gives for input x (y0: y before, for Add), by the CPU's reference,
// and each output's rounding scale.
void expected_matvec(const TestMatrix& w, const TestMatrix& up, const std::vector<float>& x,
                     const std::vector<float>& bias, const float* y0, Epilogue epilogue, std::vector<float>* want,
                     std::vector<float>* scale) {
  std::vector<float> want_up, scale_up;
  reference_matvec(w, x, want, scale);
  reference_matvec(up, x, &want_up, &scale_up);
  for (size_t r = 0; r < want->size(); ++r) {
    float& out = (*want)[r];
    if (epilogue == Epilogue::SwiGlu) {
      cpu::silu_mul(&out, &want_up[r], 1);
      (*scale)[r] = (*scale)[r] * (std::fabs(want_up[r]) + scale_up[r]) + 1;
      continue;
    }
    out += bias[r];
    if (epilogue == Epilogue::Relu) cpu::relu(&out, 1);
    if (epilogue == Epilogue::Add) out += y0[r];
    (*scale)[r] += 1;
  }
}


// For q8_0 and q4_0 weights, op's input in q8 by the quantize pass, which op then reads.
void quantize_input(Device& device, Gpu& gpu, Matvec& op) {
  if (!dtype_is_block(op.w.dtype)) return;
  Quantize q;
  q.x = op.x;
  q.batch = op.batch;
  q.out = gpu.q8(op.columns, op.w.cols);
  q.cols = op.w.cols;
  q.rows = op.columns;
  q.outputs = op.outputs;
  gpu.run(quantize(device, q));
  op.xq = q.out;
}

// A projection over a batch of n columns of a program recorded for max_columns (with `outputs`,
// every other column asks for logits, the odd ones, and only those are multiplied), its inputs
// random from `seed`; for q8_0 and q4_0 weights its input quantized.
struct BatchedProjection {
  TestMatrix w, up;
  std::vector<float> x, bias, y0;
  std::vector<size_t> columns;  // the x column of each y column
  Matvec op;

  BatchedProjection(Device& device, Gpu& gpu, DType dtype, size_t rows, size_t cols, size_t n, size_t max_columns,
                    Epilogue epilogue, bool outputs, uint32_t& seed)
      : w(random_matrix(dtype, rows, cols, ++seed)),
        up(random_matrix(dtype, rows, cols, ++seed)),
        x(random_floats(n * cols, -2, 2, ++seed)),
        bias(random_floats(rows, -1, 1, ++seed)),
        y0(random_floats(max_columns * rows, -1, 1, ++seed)) {
    std::vector<BatchRow> batch;
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(BatchRow{0, 0, int64_t(i), !outputs || i % 2 == 1});
      if (batch.back().logits) columns.push_back(i);
    }
    op.w = {dtype, gpu.bytes(w.stored.data(), w.stored.size()), uint32_t(rows), uint32_t(cols)};
    op.up = {dtype, gpu.bytes(up.stored.data(), up.stored.size()), uint32_t(rows), uint32_t(cols)};
    if (epilogue != Epilogue::SwiGlu) op.bias = gpu.floats(bias);
    op.epilogue = epilogue;
    op.outputs = outputs;
    op.columns = uint32_t(max_columns);
    op.x = gpu.floats(x);
    op.y = gpu.floats(y0);
    op.batch = gpu.batch(batch);
    quantize_input(device, gpu, op);
  }

  size_t rows() const { return op.w.rows; }
  size_t cols() const { return op.w.cols; }

  // What the CPU's reference gives for y column j, and each output's rounding scale.
  void expected(size_t j, std::vector<float>* want, std::vector<float>* scale) const {
    const float* column = x.data() + columns[j] * cols();
    expected_matvec(w, up, std::vector<float>(column, column + cols()), bias, y0.data() + j * rows(), op.epilogue,
                    want, scale);
  }

  // Y column j by the matvec of that column alone, recorded for one column.
  std::vector<float> alone(Device& device, Gpu& gpu, size_t j) const {
    Matvec one = op;
    one.outputs = false;
    one.columns = 1;
    const float* column = x.data() + columns[j] * cols();
    one.x = gpu.floats(std::vector<float>(column, column + cols()));
    one.y = gpu.floats(std::vector<float>(y0.begin() + j * rows(), y0.begin() + (j + 1) * rows()));
    one.batch = gpu.batch({BatchRow{}});
    quantize_input(device, gpu, one);
    gpu.run(matvec(device, one));
    return gpu.read(one.y, rows());
  }
};

}  // namespace

TEST_CASE("vulkan matvec matches the CPU for every dtype and epilogue on odd shapes") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  struct Shape {
    size_t rows, cols;
  };
  // 14336 columns: 448 blocks, the q8 input in chunks of 128 blocks.
  const Shape shapes[] = {{1, 32}, {3, 8}, {7, 13}, {33, 64}, {100, 96}, {257, 256}, {64, 1000}, {300, 320}, {5, 14336}};
  uint32_t seed = 1;
  for (DType dtype : kAllDtypes) {
    for (const Shape& s : shapes) {
      if (dtype_is_block(dtype) && s.cols % 32 != 0) continue;
      for (Epilogue epilogue : {Epilogue::Store, Epilogue::Relu, Epilogue::Add, Epilogue::SwiGlu}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(s.rows);
        CAPTURE(s.cols);
        CAPTURE(int(epilogue));
        const TestMatrix w = random_matrix(dtype, s.rows, s.cols, ++seed);
        const TestMatrix up = random_matrix(dtype, s.rows, s.cols, ++seed);
        const std::vector<float> x = random_floats(s.cols, -2, 2, ++seed);
        const std::vector<float> bias = random_floats(s.rows, -1, 1, ++seed);
        const std::vector<float> y0 = random_floats(s.rows, -1, 1, ++seed);

        Gpu gpu(*device);
        Matvec op;
        op.w = {dtype, gpu.bytes(w.stored.data(), w.stored.size()), uint32_t(s.rows), uint32_t(s.cols)};
        op.up = {dtype, gpu.bytes(up.stored.data(), up.stored.size()), uint32_t(s.rows), uint32_t(s.cols)};
        op.x = gpu.floats(x);
        op.y = gpu.floats(y0);
        op.batch = gpu.batch({BatchRow{}});
        if (epilogue != Epilogue::SwiGlu) op.bias = gpu.floats(bias);
        op.epilogue = epilogue;
        quantize_input(*device, gpu, op);
        gpu.run(matvec(*device, op));

        std::vector<float> want, scale;
        expected_matvec(w, up, x, bias, y0.data(), epilogue, &want, &scale);
        const std::vector<float> got = gpu.read(op.y, s.rows);
        double worst = 0;
        for (size_t r = 0; r < s.rows; ++r) worst = std::max(worst, std::fabs(double(got[r]) - want[r]) / scale[r]);
        CHECK(worst < 2e-6);
      }
    }
  }
}

TEST_CASE("vulkan row norm computes cpu::layer_norm and cpu::rms_norm of each row, or of the outputs' rows, and in q8") {
  Device* device = test_device();
  if (!device) return;
  Gpu gpu(*device);
  const size_t kRows = 5;  // rows 1 and 3 ask for logits
  for (size_t n : {1, 7, 256, 1000, 2048, 2051}) {
    for (NormKind kind : {NormKind::LayerNorm, NormKind::RmsNorm}) {
      for (bool outputs : {false, true}) {
        CAPTURE(n);
        CAPTURE(int(kind));
        CAPTURE(outputs);
        const std::vector<float> x = random_floats(kRows * n, -3, 5, uint32_t(n));
        const std::vector<float> weight = random_floats(n, 0.5f, 1.5f, uint32_t(n + 1));
        const std::vector<float> bias = random_floats(n, -1, 1, uint32_t(n + 2));
        const std::vector<float> y0 = random_floats(kRows * n, -1, 1, uint32_t(n + 3));
        std::vector<BatchRow> batch;
        for (size_t i = 0; i < kRows; ++i) batch.push_back(BatchRow{0, 0, int64_t(i), i % 2 == 1});
        RowNorm op;
        op.kind = kind;
        op.x = gpu.floats(x);
        op.y = gpu.floats(y0);
        op.weight = gpu.floats(weight);
        op.bias = gpu.floats(bias);
        op.batch = gpu.batch(batch);
        op.cols = uint32_t(n);
        op.rows = uint32_t(kRows);
        op.eps = 1e-5f;
        op.outputs = outputs;
        gpu.run(row_norm(*device, op));
        const std::vector<float> got = gpu.read(op.y, kRows * n);
        for (size_t i = 0; i < kRows; ++i) {
          CAPTURE(i);
          const std::vector<float> row(got.begin() + i * n, got.begin() + (i + 1) * n);
          if (outputs && !batch[i].logits) {  // rows that do not ask for logits stay as they were
            CHECK(row == std::vector<float>(y0.begin() + i * n, y0.begin() + (i + 1) * n));
            continue;
          }
          std::vector<float> normed(n);
          if (kind == NormKind::LayerNorm) {
            cpu::layer_norm(x.data() + i * n, weight.data(), bias.data(), 1e-5f, n, normed.data());
          } else {
            cpu::rms_norm(x.data() + i * n, weight.data(), 1e-5f, n, normed.data());
          }
          CHECK(max_error(row, normed) < 2e-6 * 16);
        }
        if (n % 32 != 0) continue;
        // In q8 too: the same normed rows, and quantize_activations' bits of them.
        gpu.write(op.y, y0);
        op.q8 = gpu.q8(kRows, n);
        gpu.run(row_norm(*device, op));
        CHECK(gpu.read(op.y, kRows * n) == got);
        gpu.check_q8(op.q8, got.data(), n, batch, outputs);
      }
    }
  }
}

TEST_CASE("vulkan quantize gives cpu::reference::quantize_activations' bits, of each row or of the outputs' rows") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  Gpu gpu(*device);
  const size_t kRows = 5, cols = 96;  // rows 1 and 3 ask for logits; 3 blocks a row
  std::vector<float> x = random_floats(kRows * cols, -3, 3, 7);
  // Blocks that are all zeros, tiny (a scale just above the smallest normal float, below which
  // the GPU's is 0), at halves of the scale (ties to even), and large.
  for (size_t j = 0; j < 32; ++j) {
    x[32 + j] = 0;
    x[64 + j] = j % 2 ? 1e-35f : -3e-35f;
    x[cols + j] = j == 0 ? 127 : float(int(j) - 16) * 0.5f;  // d = 1: halves round to even
    x[cols + 32 + j] = float(j) * 1e30f;
  }
  std::vector<BatchRow> batch;
  for (size_t i = 0; i < kRows; ++i) batch.push_back(BatchRow{0, 0, int64_t(i), i % 2 == 1});
  for (bool outputs : {false, true}) {
    CAPTURE(outputs);
    Quantize op;
    op.x = gpu.floats(x);
    op.batch = gpu.batch(batch);
    op.out = gpu.q8(kRows, cols);
    op.cols = uint32_t(cols);
    op.rows = uint32_t(kRows);
    op.outputs = outputs;
    gpu.run(quantize(*device, op));
    gpu.check_q8(op.out, x.data(), cols, batch, outputs);
  }
}

TEST_CASE("vulkan matvec over a batch gives each row's results alone, bit for bit, and the CPU's") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  struct Shape {
    size_t rows, cols;
  };
  // 1056 columns: 33 blocks, the q8 columns in chunks of 32 blocks.
  const Shape shapes[] = {{7, 13}, {33, 64}, {40, 1056}};
  const size_t kMaxColumns = 20;  // three workgroups of 8 columns
  uint32_t seed = 100;
  for (DType dtype : kAllDtypes) {
    for (const Shape& s : shapes) {
      if (dtype_is_block(dtype) && s.cols % 32 != 0) continue;
      for (Epilogue epilogue : {Epilogue::Add, Epilogue::SwiGlu}) {
        for (size_t n : {size_t(1), size_t(11), kMaxColumns}) {
          for (bool outputs : {false, true}) {
            if (outputs && n != kMaxColumns) continue;
            CAPTURE(dtype_name(dtype));
            CAPTURE(s.rows);
            CAPTURE(s.cols);
            CAPTURE(int(epilogue));
            CAPTURE(n);
            CAPTURE(outputs);
            Gpu gpu(*device);
            const BatchedProjection p(*device, gpu, dtype, s.rows, s.cols, n, kMaxColumns, epilogue, outputs, seed);
            gpu.run(matvec(*device, p.op));
            const std::vector<float> got = gpu.read(p.op.y, kMaxColumns * s.rows);

            double worst = 0;
            for (size_t j = 0; j < kMaxColumns; ++j) {
              CAPTURE(j);
              const float* y = got.data() + j * s.rows;
              if (j >= p.columns.size()) {  // columns the batch does not have stay as they were
                CHECK(std::memcmp(y, p.y0.data() + j * s.rows, s.rows * sizeof(float)) == 0);
                continue;
              }
              CHECK(std::memcmp(y, p.alone(*device, gpu, j).data(), s.rows * sizeof(float)) == 0);
              std::vector<float> want, scale;
              p.expected(j, &want, &scale);
              for (size_t r = 0; r < s.rows; ++r) worst = std::max(worst, std::fabs(double(y[r]) - want[r]) / scale[r]);
            }
            CHECK(worst < 2e-6);
          }
        }
      }
    }
  }
}

TEST_CASE("vulkan tiled matmul matches the CPU and each column's matvec for every dtype on odd shapes") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  struct Shape {
    size_t rows, cols;
  };
  // Rows and columns not multiples of the 32 x 32 tile (or of its 32-element steps); 1056 columns:
  // 33 blocks.
  const Shape shapes[] = {{7, 13}, {33, 64}, {100, 96}, {40, 1056}};
  const size_t kMaxColumns = 64, kColumns = 45;  // two tiles of columns, the second partial
  uint32_t seed = 300;
  for (DType dtype : kAllDtypes) {
    for (const Shape& s : shapes) {
      if (dtype_is_block(dtype) && s.cols % 32 != 0) continue;
      for (Epilogue epilogue : {Epilogue::Store, Epilogue::Relu, Epilogue::Add, Epilogue::SwiGlu}) {
        for (bool outputs : {false, true}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(s.rows);
          CAPTURE(s.cols);
          CAPTURE(int(epilogue));
          CAPTURE(outputs);
          Gpu gpu(*device);
          const BatchedProjection p(*device, gpu, dtype, s.rows, s.cols, kColumns, kMaxColumns, epilogue, outputs, seed);
          gpu.run(matmul(*device, p.op));
          const std::vector<float> got = gpu.read(p.op.y, kMaxColumns * s.rows);

          double worst_cpu = 0, worst_alone = 0;
          for (size_t j = 0; j < kMaxColumns; ++j) {
            CAPTURE(j);
            const float* y = got.data() + j * s.rows;
            if (j >= p.columns.size()) {  // columns the batch does not have stay as they were
              CHECK(std::memcmp(y, p.y0.data() + j * s.rows, s.rows * sizeof(float)) == 0);
              continue;
            }
            std::vector<float> want, scale;
            p.expected(j, &want, &scale);
            for (size_t r = 0; r < s.rows; ++r) worst_cpu = std::max(worst_cpu, std::fabs(double(y[r]) - want[r]) / scale[r]);
            // The same column by the matvec, alone: the first two and the last of each tile.
            if (j % 32 > 1 && j % 32 != 31 && j + 1 != p.columns.size()) continue;
            const std::vector<float> by_matvec = p.alone(*device, gpu, j);
            for (size_t r = 0; r < s.rows; ++r) worst_alone = std::max(worst_alone, std::fabs(double(y[r]) - by_matvec[r]) / scale[r]);
          }
          // Both kernels quantize the same values: only the order of the f32 sums differs.
          CHECK(worst_cpu < 2e-6);
          CHECK(worst_alone < 2e-6);
        }
      }
    }
  }
}

TEST_CASE("vulkan embedding lookup matches cpu::matrix_row and the sinusoidal positions") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  Gpu gpu(*device);
  const size_t vocab = 37, dim = 96;
  std::vector<float> freq(dim / 2);
  for (size_t i = 0; i < freq.size(); ++i) freq[i] = std::exp(float(i) * -float(std::log(10000.0) / double(dim / 2 - 1)));
  for (DType dtype : kAllDtypes) {
    for (uint32_t position : {0u, 1u, 57u, 4093u, 100000u}) {
      for (bool sinusoidal : {false, true}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(position);
        CAPTURE(sinusoidal);
        const TestMatrix table = random_matrix(dtype, vocab, dim, position + 3);
        const uint32_t token = (position * 7 + 3) % vocab;
        const DeviceMatrix m{dtype, gpu.bytes(table.stored.data(), table.stored.size()), uint32_t(vocab), uint32_t(dim)};
        const Span out = gpu.zeros(dim);
        const Span batch = gpu.batch({BatchRow{int32_t(token), 0, position, false}});
        gpu.run(embed(*device, m, 1.5f, batch, out, sinusoidal ? gpu.floats(freq) : Span{}, 2));

        std::vector<float> want(dim);
        const cpu::Matrix host{dtype, table.stored.data(), vocab, dim};
        cpu::matrix_row(host, token, 1.5f, want.data());
        if (sinusoidal) cpu::add_sinusoidal_position(want.data(), dim, freq.data(), int64_t(position) + 2);
        // Exact without positions; with them, sin and cos to about an ulp.
        CHECK(max_error(gpu.read(out, dim), want) <= (sinusoidal ? 5e-7 : 0.0));
      }
    }
  }
}

namespace {

std::vector<float> rotary_frequencies(size_t head_dim) {
  std::vector<float> f(head_dim / 2);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(1.0 / std::pow(10000.0, double(2 * i) / double(head_dim)));
  return f;
}

}  // namespace

TEST_CASE("vulkan linear attention matches the CPU's step and chunk forms for every feature map") {
  Device* device = test_device();
  if (!device) return;
  cpu::init_kernels();
  Gpu gpu(*device);
  struct Case {
    Features kind;
    uint32_t heads, kv_heads, r, dh;
    bool rotary;
    float spread;  // small q and k put phi_q . z below the floor
  };
  const Case cases[] = {{Features::Map, 4, 2, 32, 64, true, 1},   {Features::Map, 3, 3, 5, 12, false, 1},
                        {Features::Map, 2, 1, 7, 10, true, 1e-3f}, {Features::Elu, 4, 2, 64, 64, true, 1},
                        {Features::Elu, 3, 1, 7, 7, false, 8},     {Features::Given, 4, 4, 9, 130, false, 1},
                        {Features::Given, 2, 2, 33, 16, false, 1e-3f}};
  // Runs of one sequence {first position, rows}: stepped (shorter than the chunk threshold), and
  // chunked from a nonzero state over odd lengths that cross chunk ends.
  struct Run {
    uint32_t position, rows;
  };
  const Run runs[] = {{0, 1}, {1, 1}, {2, 37}, {39, 2}, {41, kLinearAttentionChunkMinRows}, {3000, 21}};
  const size_t max_rows = 37;
  for (const Case& c : cases) {
    for (DType map_dtype : kAllDtypes) {
      if (c.kind != Features::Map && map_dtype != DType::F32) continue;
      if (dtype_is_block(map_dtype) && c.dh % 32 != 0) continue;
      CAPTURE(int(c.kind));
      CAPTURE(c.r);
      CAPTURE(c.dh);
      CAPTURE(dtype_name(map_dtype));
      const size_t H = c.heads, Hkv = c.kv_heads, r = c.r, dh = c.dh, group = H / Hkv;
      const float scale = 1.0f / std::sqrt(float(dh)), floor = 0.01f;
      const TestMatrix map = random_matrix(map_dtype, H * r, dh, 5);
      const std::vector<float> map_bias = random_floats(H * r, -0.5f, 0.5f, 6), freq = rotary_frequencies(dh);
      // The state as the CPU context leaves it (a run of one stepped, a longer one chunked) and
      // as stepping every row leaves it.
      std::vector<float> state(H * r * dh + H * r, 0), stepped = state;
      // Given: q and k are phi(q) and phi(k) [H, r]; otherwise projections [H, dh] and [Hkv, dh].
      const bool given = c.kind == Features::Given;
      const size_t q_width = given ? H * r : H * dh, k_width = given ? H * r : Hkv * dh;
      LinearAttention op;
      op.features_kind = c.kind;
      op.map = {map_dtype, gpu.bytes(map.stored.data(), map.stored.size()), uint32_t(H * r), uint32_t(dh)};
      op.map_bias = gpu.floats(map_bias);
      op.q = gpu.zeros(max_rows * q_width);
      op.k = gpu.zeros(max_rows * k_width);
      op.v = gpu.zeros(max_rows * Hkv * dh);
      op.state = gpu.zeros(state.size());
      op.out = gpu.zeros(max_rows * H * dh);
      op.batch = gpu.batch({BatchRow{}});
      if (c.rotary) op.rotary_freq = gpu.floats(freq);
      op.heads = c.heads;
      op.kv_heads = c.kv_heads;
      op.q_stride = uint32_t(q_width);
      op.k_stride = uint32_t(k_width);
      op.v_stride = uint32_t(Hkv * dh);
      op.features = c.r;
      op.head_dim = c.dh;
      op.q_scale = scale;
      op.floor = floor;
      const Dispatch dispatch = linear_attention(*device, op);
      for (const Run& run : runs) {
        CAPTURE(run.position);
        CAPTURE(run.rows);
        const size_t n = run.rows;
        const std::vector<float> q = random_floats(n * q_width, given ? 0 : -c.spread, c.spread, run.position + 1);
        const std::vector<float> k = random_floats(n * k_width, given ? 0 : -c.spread, c.spread, run.position + 2);
        const std::vector<float> v = random_floats(n * Hkv * dh, -1, 1, run.position + 3);
        gpu.write(op.q, q);
        gpu.write(op.k, k);
        gpu.write(op.v, v);
        std::vector<BatchRow> rows;
        for (uint32_t t = 0; t < n; ++t) rows.push_back(BatchRow{0, 0, run.position + t, false});
        gpu.write_batch(op.batch, rows);
        gpu.run(dispatch);

        // The CPU context's attention (runtime/attention.cpp), row by row and head by head.
        std::vector<float> phi_q(n * H * r), phi_k(n * H * r), out(n * H * dh), out_stepped(n * H * dh);
        for (size_t t = 0; t < n; ++t) {
          float* pq = phi_q.data() + t * H * r;
          float* pk = phi_k.data() + t * H * r;
          if (given) {
            std::copy(q.begin() + t * q_width, q.begin() + (t + 1) * q_width, pq);
            std::copy(k.begin() + t * k_width, k.begin() + (t + 1) * k_width, pk);
            continue;
          }
          std::vector<float> qr(q.begin() + t * q_width, q.begin() + (t + 1) * q_width);
          std::vector<float> kr(k.begin() + t * k_width, k.begin() + (t + 1) * k_width);
          if (c.rotary) {
            cpu::rotary(qr.data(), H, dh, freq.data(), run.position + t);
            cpu::rotary(kr.data(), Hkv, dh, freq.data(), run.position + t);
          }
          for (float& e : qr) e *= scale;
          for (size_t h = 0; h < H; ++h) {
            const float* k_head = kr.data() + (h / group) * dh;
            if (c.kind == Features::Map) {
              // q8_0 and q4_0 as stored: cpu::matvec quantizes their input to q8 blocks.
              const cpu::Matrix m = dtype_is_block(map_dtype)
                                        ? cpu::row_slice(cpu::Matrix{map_dtype, map.stored.data(), H * r, dh}, h * r, r)
                                        : cpu::Matrix{DType::F32, map.values.data() + h * r * dh, r, dh};
              cpu::matvec(m, qr.data() + h * dh, map_bias.data() + h * r, pq + h * r);
              cpu::matvec(m, k_head, map_bias.data() + h * r, pk + h * r);
            } else {
              std::copy(qr.begin() + h * dh, qr.begin() + (h + 1) * dh, pq + h * r);
              std::copy(k_head, k_head + dh, pk + h * r);
            }
          }
          if (c.kind == Features::Map) {
            cpu::relu(pq, H * r);
            cpu::relu(pk, H * r);
          } else {
            cpu::elu_plus_one(pq, H * r);
            cpu::elu_plus_one(pk, H * r);
          }
        }
        for (size_t h = 0; h < H; ++h) {
          const size_t z = H * r * dh + h * r, kv = (h / group) * dh;
          for (size_t t = 0; t < n; ++t) {
            const size_t f = t * H * r + h * r;
            cpu::linear_attention_step(stepped.data() + h * r * dh, stepped.data() + z, phi_q.data() + f,
                                       phi_k.data() + f, v.data() + t * Hkv * dh + kv, r, dh, floor,
                                       out_stepped.data() + t * H * dh + h * dh);
          }
          const cpu::LinearAttentionChunk chunk{phi_q.data() + h * r, phi_k.data() + h * r, H * r, v.data() + kv,
                                                Hkv * dh, out.data() + h * dh, H * dh, n, r, dh, floor};
          cpu::linear_attention_chunk(chunk, state.data() + h * r * dh, state.data() + z);
        }
        double out_scale = 1e-30;
        for (float e : out) out_scale = std::max(out_scale, double(std::fabs(e)));
        const std::vector<float> got = gpu.read(op.out, out.size()), got_state = gpu.read(op.state, state.size());
        CHECK(max_error(got, out, out_scale) < 1e-5);
        CHECK(max_error(got, out_stepped, out_scale) < 1e-5);
        CHECK(max_error(got_state, state) < 1e-4);
        CHECK(max_error(got_state, stepped) < 1e-4);
      }
    }
  }
}

namespace {

// Softmax attention over positions 0..context-1 of one sequence against cpu::softmax_attention,
// and the KV cache it fills: one row at a time, or (split) through the passes split over
// positions, in batches of 3 rows.
void check_softmax_attention(Device& device, bool split) {
  Gpu gpu(device);
  struct Case {
    uint32_t heads, kv_heads, dh;
    bool rotary;
  };
  for (const Case& c : {Case{4, 2, 20, true}, Case{3, 3, 7, false}, Case{6, 1, 64, true}}) {
    CAPTURE(c.heads);
    CAPTURE(c.dh);
    // Split: 3 splits of kSplitPositions, batches of 3 rows of one sequence (stored, then
    // attending); else one row at a time.
    const size_t H = c.heads, Hkv = c.kv_heads, dh = c.dh, group = H / Hkv, stride = Hkv * dh;
    const size_t rows = split ? 3 : 1, context = split ? 2 * kSplitPositions + 90 : 150;
    const float scale = 1.0f / std::sqrt(float(dh));
    const std::vector<float> freq = rotary_frequencies(dh);
    std::vector<float> keys(context * stride, 0), values(context * stride, 0), scores(context);
    SoftmaxAttention op;
    op.q = gpu.zeros(rows * H * dh);
    op.k = gpu.zeros(rows * stride);
    op.v = gpu.zeros(rows * stride);
    op.keys = gpu.zeros(keys.size());
    op.values = gpu.zeros(values.size());
    op.out = gpu.zeros(rows * H * dh);
    op.batch = gpu.batch({BatchRow{}});
    if (c.rotary) op.rotary_freq = gpu.floats(freq);
    op.heads = c.heads;
    op.kv_heads = c.kv_heads;
    op.head_dim = c.dh;
    op.max_context = uint32_t(context);
    op.q_scale = scale;
    std::vector<Dispatch> passes;
    if (split) {
      REQUIRE(softmax_attention_splits(op.max_context) == 3);
      const std::array<Dispatch, 3> split_passes =
          softmax_attention_split(device, op, gpu.zeros(rows * H * 3 * (dh + 2)), uint32_t(rows));
      passes.assign(split_passes.begin(), split_passes.end());
    } else {
      op.scores = gpu.zeros(H * context);
      passes.push_back(softmax_attention(device, op));
    }
    for (uint32_t first = 0; first + rows <= context; first += rows) {
      CAPTURE(first);
      std::vector<float> q = random_floats(rows * H * dh, -2, 2, first + 1), k = random_floats(rows * stride, -2, 2, first + 2);
      const std::vector<float> v = random_floats(rows * stride, -1, 1, first + 3);
      gpu.write(op.q, q);
      gpu.write(op.k, k);
      gpu.write(op.v, v);
      std::vector<BatchRow> batch;
      for (uint32_t i = 0; i < rows; ++i) batch.push_back(BatchRow{0, 0, first + i, false});
      gpu.write_batch(op.batch, batch);
      for (const Dispatch& pass : passes) gpu.run(pass);

      std::vector<float> out(rows * H * dh);
      for (size_t i = 0; i < rows; ++i) {
        const size_t position = first + i;
        if (c.rotary) cpu::rotary(k.data() + i * stride, Hkv, dh, freq.data(), position);
        std::copy(k.begin() + i * stride, k.begin() + (i + 1) * stride, keys.begin() + position * stride);
        std::copy(v.begin() + i * stride, v.begin() + (i + 1) * stride, values.begin() + position * stride);
      }
      for (size_t i = 0; i < rows; ++i) {
        const size_t position = first + i;
        float* qi = q.data() + i * H * dh;
        if (c.rotary) cpu::rotary(qi, H, dh, freq.data(), position);
        for (size_t e = 0; e < H * dh; ++e) qi[e] *= scale;
        for (size_t h = 0; h < H; ++h) {
          const size_t kv = (h / group) * dh;
          cpu::softmax_attention(qi + h * dh, keys.data() + kv, values.data() + kv, position + 1, stride, dh,
                                 scores.data(), out.data() + (i * H + h) * dh);
        }
      }
      // Check every few batches (each check reads the whole cache back), and around split ends.
      const bool near_split = split && (first + rows) % kSplitPositions < rows;
      if (first % 37 != 0 && !near_split && first + 2 * rows <= context) continue;
      CHECK(max_error(gpu.read(op.out, out.size()), out) < 1e-5);
      CHECK(max_error(gpu.read(op.keys, keys.size()), keys) < 1e-5);
      CHECK(gpu.read(op.values, values.size()) == values);
    }
  }
}

}  // namespace

TEST_CASE("vulkan softmax attention fills the KV cache and matches cpu::softmax_attention") {
  if (Device* device = test_device()) check_softmax_attention(*device, false);
}

TEST_CASE("vulkan softmax attention split over positions matches cpu::softmax_attention at long context") {
  if (Device* device = test_device()) check_softmax_attention(*device, true);
}

TEST_CASE("vulkan attention over runs of a sequence's rows gives the rows one at a time, bit for bit") {
  Device* device = test_device();
  if (!device) return;
  const uint32_t H = 4, Hkv = 2, dh = 32, context = 24;
  const std::vector<float> freq = rotary_frequencies(dh);
  // Positions 0..context-1 of two sequences (states side by side), in batches whose runs are of
  // 1 to 5 rows, the first sequence's rows before the second's.
  auto run = [&](bool softmax, bool one_at_a_time) {
    Gpu gpu(*device);
    const size_t state_floats = softmax ? 2 * context * Hkv * dh : H * dh * dh + H * dh, rows = 2 * 5;
    const std::vector<float> q = random_floats(2 * context * H * dh, -2, 2, 1);
    const std::vector<float> k = random_floats(2 * context * Hkv * dh, -2, 2, 2);
    const std::vector<float> v = random_floats(2 * context * Hkv * dh, -1, 1, 3);
    const Span qs = gpu.zeros(rows * H * dh), ks = gpu.zeros(rows * Hkv * dh), vs = gpu.zeros(rows * Hkv * dh);
    const Span state = gpu.zeros(2 * state_floats), out = gpu.zeros(rows * H * dh), batch = gpu.batch({});
    Dispatch dispatch;
    if (softmax) {
      SoftmaxAttention op;
      op.q = qs, op.k = ks, op.v = vs, op.keys = state, op.values = state, op.out = out, op.batch = batch;
      op.scores = gpu.zeros(2 * H * context);
      op.rotary_freq = gpu.floats(freq);
      op.heads = H, op.kv_heads = Hkv, op.head_dim = dh, op.max_context = context, op.max_runs = 2;
      op.values_offset = context * Hkv * dh;
      op.q_scale = 0.5f;
      dispatch = softmax_attention(*device, op);
    } else {
      LinearAttention op;
      op.features_kind = Features::Elu;
      op.q = qs, op.k = ks, op.v = vs, op.state = state, op.out = out, op.batch = batch;
      op.rotary_freq = gpu.floats(freq);
      op.heads = H, op.kv_heads = Hkv, op.features = dh, op.head_dim = dh, op.max_runs = 2;
      op.q_stride = H * dh, op.k_stride = Hkv * dh, op.v_stride = Hkv * dh;
      op.q_scale = 0.5f, op.floor = 0.01f;
      dispatch = linear_attention(*device, op);
    }
    std::vector<float> outs(2 * context * H * dh);
    for (uint32_t position = 0, n = 1; position < context; position += n, n = n % 5 + 1) {
      n = std::min(n, context - position);
      const uint32_t step = one_at_a_time ? 1 : n;
      for (uint32_t p0 = position; p0 < position + n; p0 += step) {
        std::vector<BatchRow> batch_rows;
        std::vector<float> qb, kb, vb;
        for (int s = 0; s < 2; ++s) {
          for (uint32_t t = p0; t < p0 + step; ++t) {
            batch_rows.push_back(BatchRow{0, s, t, false});
            const size_t at = size_t(s) * context + t;
            qb.insert(qb.end(), q.begin() + at * H * dh, q.begin() + (at + 1) * H * dh);
            kb.insert(kb.end(), k.begin() + at * Hkv * dh, k.begin() + (at + 1) * Hkv * dh);
            vb.insert(vb.end(), v.begin() + at * Hkv * dh, v.begin() + (at + 1) * Hkv * dh);
          }
        }
        gpu.write(qs, qb);
        gpu.write(ks, kb);
        gpu.write(vs, vb);
        write_batch_input(gpu.mapped.at(batch.buffer), Gpu::kBatch, batch_rows.data(), batch_rows.size(), state_floats);
        gpu.run(dispatch);
        const std::vector<float> o = gpu.read(out, batch_rows.size() * H * dh);
        for (size_t i = 0; i < batch_rows.size(); ++i) {
          const size_t at = size_t(batch_rows[i].sequence) * context + size_t(batch_rows[i].position);
          std::copy(o.begin() + i * H * dh, o.begin() + (i + 1) * H * dh, outs.begin() + at * H * dh);
        }
      }
    }
    std::vector<float> all = gpu.read(state, 2 * state_floats);
    all.insert(all.end(), outs.begin(), outs.end());
    return all;
  };
  for (bool softmax : {false, true}) {
    CAPTURE(softmax);
    CHECK(run(softmax, false) == run(softmax, true));
  }
}

#endif
