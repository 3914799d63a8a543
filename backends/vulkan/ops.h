// The kernels, one builder per shader: each returns a Dispatch for a Program. Their math is
// that of the CPU kernels named in each comment (backends/cpu/kernels.h); the tests compare
// every one with them. Each runs over the rows of a batch (`batch`: vulkan/batch_input.h's
// layout), whose count the kernels read when they run: activations are [rows, width].
#pragma once

#include <array>
#include <cstdint>

#include "dtype.h"
#include "model.h"
#include "program.h"

namespace t2r::vulkan {

// A weight matrix on the device in its stored dtype and layout (format/SPEC.md).
struct DeviceMatrix {
  DType dtype = DType::F32;
  Span data;
  uint32_t rows = 0, cols = 0;
};

enum class Epilogue : uint32_t {
  Store = 0,   // y = W x + bias
  Relu = 1,    // y = relu(W x + bias)
  Add = 2,     // y += W x + bias: the residual connection
  SwiGlu = 3,  // y = silu(W x) * (up x)  (cpu::silu_mul)
};

// Activations in q8 blocks (quantize()), which the projections of q8_0 and q4_0 weights read:
// per column its blocks' 32 signed bytes (8 words a block) and, apart, their scales.
struct Q8Columns {
  Span blocks, scales;
};
// Bytes of Q8Columns::blocks and ::scales for `columns` columns of `cols` values.
inline uint64_t q8_block_bytes(uint64_t columns, uint64_t cols) { return columns * cols; }
inline uint64_t q8_scale_bytes(uint64_t columns, uint64_t cols) { return columns * (cols / kQuantBlock) * 4; }

// cpu::layer_norm or cpu::rms_norm of each batch row, x and y [rows, cols], or with `outputs` set
// of each row that asks for logits (into its row of y; the other rows are left as they were). A
// workgroup per row; `rows` is the most the batch may have. The projections after a norm read its
// output: one pass serves q, k and v, and no projection workgroup recomputes a row's statistics.
// With q8 set (cols a multiple of 32) it also writes y in q8, as quantize() would.
struct RowNorm {
  NormKind kind = NormKind::RmsNorm;
  Span x, y, weight, bias, batch;  // bias for layernorm
  Q8Columns q8;
  uint32_t cols = 0, rows = 1;
  float eps = 0;
  bool outputs = false;
};
Dispatch row_norm(Device& device, const RowNorm& op);

// cpu::reference::quantize_activations of each batch row of x [rows, cols] (with `outputs` set,
// of the rows that ask for logits, the o-th as column o) into `out`: the CPU's bits. An
// invocation per block; `rows` is the most the batch may have. A pass before a projection of
// block weights whose input no norm precedes (attention's output, the feed-forward hidden layer;
// row_norm() quantizes its own), so that no projection workgroup quantizes its columns again.
struct Quantize {
  Span x, batch;
  Q8Columns out;
  uint32_t cols = 0, rows = 1;
  bool outputs = false;
};
Dispatch quantize(Device& device, const Quantize& op);

// cpu::matvec, with an epilogue, of each batch row's input: x [rows, w.cols] and y [rows, w.rows],
// or with `outputs` set y [outputs, w.rows] of the rows that ask for logits; q8_0 and q4_0 weights
// read the input as `xq` (quantize() of x, with the same `outputs`) instead. Each weight is read
// once for up to 8 rows; a row's results are bit for bit those of a batch of that row alone.
struct Matvec {
  DeviceMatrix w;
  Span x, y, bias, batch;  // bias may be empty
  Q8Columns xq;           // q8_0 and q4_0 weights only
  bool outputs = false;
  uint32_t columns = 1;  // the most columns: max_batch, or max_outputs with `outputs`
  uint32_t tile = 8;     // columns a workgroup computes at once (at most 8), reading each weight once
  Epilogue epilogue = Epilogue::Store;
  DeviceMatrix up;  // SwiGlu only
};
Dispatch matvec(Device& device, const Matvec& op);

// The same projection (op.tile aside) as a tiled matrix-matrix product, for batches of many rows:
// a workgroup stages 32 weight rows and 32 rows' activations per step of 32 elements in shared
// memory, so each weight is read once per 32 rows. Its sums run in another order than matvec's:
// a row's results agree with the row alone to rounding, not bit for bit.
Dispatch matmul(Device& device, const Matvec& op);

// cpu::matrix_row of each batch row's token, times scale, into out [rows, table.cols]; with
// sinusoidal_freq (d / 2 floats) also cpu::add_sinusoidal_position at the row's position +
// position_offset.
Dispatch embed(Device& device, const DeviceMatrix& table, float scale, Span batch, Span out, Span sinusoidal_freq,
               uint32_t position_offset);

enum class Features : uint32_t {
  Given = 0,  // q and k hold phi(q) and phi(k) [heads, features] (the folded T2R map)
  Map = 1,    // phi(u) = relu(map_h u + map_bias_h), map [heads features, head_dim]
  Elu = 2,    // cpu::elu_plus_one (features = head_dim)
};

// Linear attention of every batch row for every query head, from the q, k, v projections:
// cpu::rotary (when rotary_freq is given) and q *= q_scale, the feature map, then
// cpu::linear_attention_step on this layer's state: S [heads, features, head_dim] followed by z
// [heads, features], at the row's run's state offset (its sequence) plus state_offset (the layer)
// floats into `state`. A workgroup per head and run (of at most max_runs) steps through the run's
// rows in order, or through a run of kLinearAttentionChunkMinRows rows or more in chunks, in the
// form of cpu::linear_attention_chunk. q, k and v hold q_stride, k_stride and v_stride floats per
// row; out heads head_dim.
// Runs this long or longer (prompt chunks) use the chunked form; shorter ones (decoding rows, small
// runs) are stepped, bit for bit as a row at a time. On lavapipe the chunked op is as fast as
// stepping from 3 to 4 rows, 6 to 31% faster at 8, 13 to 41% at 16 and about 40% at 32 and 64
// (shipped t2r's attention shape, 4 heads of 64 with 32 features or elu); 17 keeps every run of a
// batch of up to Context::kMatmulMinRows rows stepped, so such batches stay bit for bit as their
// sequences alone, and gives up only the smaller gain of runs of 8 to 16 rows.
constexpr uint32_t kLinearAttentionChunkMinRows = 17;
struct LinearAttention {
  Features features_kind = Features::Given;
  DeviceMatrix map;
  Span map_bias;
  Span q, k, v, state, out, batch, rotary_freq;
  uint32_t heads = 0, kv_heads = 0, features = 0, head_dim = 0, max_runs = 1;
  uint32_t q_stride = 0, k_stride = 0, v_stride = 0;
  uint32_t state_offset = 0;
  float q_scale = 1, floor = 0;
};
Dispatch linear_attention(Device& device, const LinearAttention& op);

// Softmax attention of every batch row for every query head, from the q, k, v projections
// ([rows, heads head_dim], [rows, kv_heads head_dim] twice): cpu::rotary (when rotary_freq is
// given), q *= q_scale, k and v stored at the row's position of this layer's cache ([max_context,
// kv_heads head_dim] each, at the row's run's state offset plus keys_offset floats into `keys` and
// plus values_offset into `values`), then cpu::softmax_attention over positions 0..position. A
// workgroup per head and run (of at most max_runs); scores holds max_runs x heads x max_context
// floats.
struct SoftmaxAttention {
  Span q, k, v, keys, values, scores, out, batch, rotary_freq;
  uint32_t heads = 0, kv_heads = 0, head_dim = 0, max_context = 0, max_runs = 1;
  uint32_t keys_offset = 0, values_offset = 0;
  float q_scale = 1;
};
Dispatch softmax_attention(Device& device, const SoftmaxAttention& op);

// The same attention split over the positions (flash-decoding), for long contexts: three dispatches
// to record with a barrier after each of the first two: the store of every row's k and v in the
// cache; a workgroup per kSplitPositions positions, head and row, each the maximum, sum and
// weighted value vector of its positions' scores; their combination per head and row. partials
// holds max_rows x heads x softmax_attention_splits(max_context) records of head_dim + 2 floats
// (op.scores is not used). Agrees with softmax_attention to rounding.
constexpr uint32_t kSplitPositions = 256;
uint32_t softmax_attention_splits(uint32_t max_context);
std::array<Dispatch, 3> softmax_attention_split(Device& device, const SoftmaxAttention& op, Span partials,
                                                uint32_t max_rows);

}  // namespace t2r::vulkan
