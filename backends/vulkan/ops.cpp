#include "ops.h"

#include <algorithm>
#include <string>

#include "error.h"

namespace t2r::vulkan {
namespace {

uint32_t div_up(uint64_t n, uint32_t d) { return uint32_t((n + d - 1) / d); }

// Workgroup size of the kernels that reduce over a workgroup: a power of two (the shared-memory
// reduction needs one) within the device's limits (which are at least 128).
uint32_t reduction_workgroup(const Device& device, uint32_t wanted) {
  const uint32_t limit = std::min(device.limits().maxComputeWorkGroupSize[0], device.limits().maxComputeWorkGroupInvocations);
  uint32_t size = 1;
  while (size * 2 <= std::min(wanted, limit)) size *= 2;
  return size;
}

constexpr uint32_t kElementwiseWorkgroup = 64;
constexpr uint32_t kMatvecColumns = 8;  // matvec.comp's COLUMNS at most (its q8 chunks are sized for 8)
constexpr uint32_t kMatmulTile = 32;      // matmul.comp's TILE: weight rows and columns per workgroup
constexpr uint32_t kMatmulWorkgroup = 64;  // matmul.comp's SPAN * SPAN invocations
// linear_attention.comp's CHUNK: rows in shared memory at once in the chunked form (fewer where
// the device's shared memory holds fewer; 16 rows of head_dim 64 and 64 features take 20 KiB).
constexpr uint32_t kLinearAttentionChunk = 16;

std::string matrix_shader(const char* kernel, DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0: return std::string(kernel) + "_" + std::string(dtype_name(dtype));
  }
  throw Error("the Vulkan backend cannot read weights of dtype " + std::to_string(uint32_t(dtype)));
}

// Shared memory for `floats` floats plus the reduction scratch of a workgroup.
void check_shared_memory(const Device& device, uint64_t floats, uint32_t workgroup, const char* kernel) {
  const uint64_t bytes = (floats + workgroup) * sizeof(float);
  if (bytes > device.limits().maxComputeSharedMemorySize) {
    throw Error(std::string(kernel) + " needs " + std::to_string(bytes) + " bytes of shared memory; Vulkan device " +
                device.name() + " has " + std::to_string(device.limits().maxComputeSharedMemorySize));
  }
}

// The bindings and push constants of matvec.comp and matmul.comp (shaders/projection.glsl).
Dispatch projection(const Matvec& op) {
  Dispatch d;
  d.bindings[0] = op.w.data;
  d.bindings[1] = op.x;
  d.bindings[2] = op.y;
  d.bindings[3] = op.bias;
  d.bindings[4] = op.epilogue == Epilogue::SwiGlu ? op.up.data : Span{};
  d.bindings[5] = op.xq.blocks;
  d.bindings[6] = op.xq.scales;
  d.bindings[7] = op.batch;
  d.set(0, op.w.rows);
  d.set(1, op.w.cols);
  d.set(2, uint32_t(op.bias.buffer != VK_NULL_HANDLE));
  d.set(3, uint32_t(op.w.cols % 8 == 0));
  d.set(4, uint32_t(op.outputs));
  return d;
}

// A projection of block weights reads its input in q8.
void check_block_input(const Matvec& op, const char* kernel) {
  if (!dtype_is_block(op.w.dtype)) return;
  if (op.w.cols % kQuantBlock != 0) throw Error(std::string(kernel) + ": block rows must be whole blocks");
  if (op.xq.blocks.buffer == VK_NULL_HANDLE) throw Error(std::string(kernel) + ": block weights need the input in q8");
}

}  // namespace

Dispatch quantize(Device& device, const Quantize& op) {
  if (op.cols % kQuantBlock != 0) throw Error("quantize: rows must be whole blocks");
  Dispatch d;
  d.pipeline = &device.pipeline("quantize", kElementwiseWorkgroup);
  d.bindings[1] = op.x;
  d.bindings[5] = op.out.blocks;
  d.bindings[6] = op.out.scales;
  d.bindings[7] = op.batch;
  d.set(0, op.cols);
  d.set(1, uint32_t(op.outputs));
  d.groups = div_up(uint64_t(op.rows) * (op.cols / kQuantBlock), kElementwiseWorkgroup);
  return d;
}

Dispatch matvec(Device& device, const Matvec& op) {
  check_block_input(op, "matvec");
  // A team per row: a subgroup (reducing with subgroupAdd), or 32 invocations reducing in shared
  // memory; a few teams per workgroup.
  const uint32_t lanes = device.subgroup_arithmetic() ? device.subgroup_size() : 32;
  const uint32_t workgroup = std::max(lanes, std::min(128u, 4 * lanes));
  const uint32_t rows_per_group = workgroup / lanes;
  const uint32_t columns = std::max(1u, std::min({op.tile, op.columns, kMatvecColumns}));
  Dispatch d = projection(op);
  d.pipeline = &device.pipeline(matrix_shader("matvec", op.w.dtype), workgroup,
                                {uint32_t(op.epilogue), rows_per_group, columns});
  d.groups = div_up(op.w.rows, rows_per_group) * div_up(op.columns, columns);
  return d;
}

Dispatch matmul(Device& device, const Matvec& op) {
  check_block_input(op, "matmul");
  // The float tiles: two weight tiles and one of activations, 32 x 32 each.
  check_shared_memory(device, 3 * kMatmulTile * kMatmulTile, kMatmulWorkgroup, "matmul");
  Dispatch d = projection(op);
  d.pipeline = &device.pipeline(matrix_shader("matmul", op.w.dtype), kMatmulWorkgroup, {uint32_t(op.epilogue)});
  d.groups = div_up(op.w.rows, kMatmulTile) * div_up(op.columns, kMatmulTile);
  return d;
}

Dispatch row_norm(Device& device, const RowNorm& op) {
  const bool quantized = op.q8.blocks.buffer != VK_NULL_HANDLE;
  if (quantized && op.cols % kQuantBlock != 0) throw Error("norm: rows in q8 must be whole blocks");
  Dispatch d;
  d.pipeline = &device.pipeline("norm", reduction_workgroup(device, 128),
                                {op.kind == NormKind::LayerNorm ? 1u : 2u, uint32_t(quantized)});
  d.bindings[1] = op.x;
  d.bindings[2] = op.y;
  d.bindings[3] = op.q8.blocks;
  d.bindings[4] = op.q8.scales;
  d.bindings[5] = op.weight;
  d.bindings[6] = op.bias;
  d.bindings[7] = op.batch;
  d.set(0, op.cols);
  d.set(1, op.eps);
  d.set(2, uint32_t(op.outputs));
  d.groups = op.rows;  // workgroups of rows the batch does not have return at once
  return d;
}

Dispatch embed(Device& device, const DeviceMatrix& table, float scale, Span batch, Span out, Span sinusoidal_freq,
               uint32_t position_offset) {
  Dispatch d;
  d.pipeline = &device.pipeline(matrix_shader("embed", table.dtype), kElementwiseWorkgroup);
  d.bindings[0] = table.data;
  d.bindings[1] = out;
  d.bindings[2] = sinusoidal_freq;
  d.bindings[7] = batch;
  d.set(0, table.cols);
  d.set(1, scale);
  d.set(2, uint32_t(sinusoidal_freq.buffer != VK_NULL_HANDLE));
  d.set(3, position_offset);
  d.groups = div_up(table.cols, kElementwiseWorkgroup);
  return d;
}

Dispatch linear_attention(Device& device, const LinearAttention& op) {
  const DType map_dtype = op.features_kind == Features::Map ? op.map.dtype : DType::F32;
  const bool block_map = dtype_is_block(map_dtype);
  if (block_map && op.head_dim % kQuantBlock != 0) throw Error("linear attention: block rows must be whole blocks");
  const uint32_t workgroup = reduction_workgroup(device, 256);
  // Per row in shared memory: q, k and v of the head, their features, the row's scores and
  // denominator, and for a block map q and k in q8; and the partial sums.
  const auto shared_floats = [&](uint64_t rows) {
    const uint64_t quantized = block_map ? 2 * uint64_t(op.head_dim / 4 + op.head_dim / kQuantBlock) : 0;
    return rows * (3 * uint64_t(op.head_dim) + 2 * uint64_t(op.features) + rows + 1 + quantized) + 2 * workgroup;
  };
  uint32_t chunk = kLinearAttentionChunk;
  while (chunk > 1 && (shared_floats(chunk) + workgroup) * sizeof(float) > device.limits().maxComputeSharedMemorySize) {
    chunk /= 2;
  }
  check_shared_memory(device, shared_floats(chunk), workgroup, "linear attention");
  const uint32_t chunk_min_rows = chunk > 1 ? kLinearAttentionChunkMinRows : UINT32_MAX;
  Dispatch d;
  d.pipeline = &device.pipeline(matrix_shader("linear_attention", map_dtype), workgroup,
                                {uint32_t(op.features_kind), op.head_dim, op.features, chunk, chunk_min_rows});
  d.bindings[0] = op.map.data;
  d.bindings[1] = op.q;
  d.bindings[2] = op.k;
  d.bindings[3] = op.v;
  d.bindings[4] = op.state;
  d.bindings[5] = op.out;
  d.bindings[6] = op.map_bias;
  d.bindings[7] = op.batch;
  d.bindings[8] = op.rotary_freq;
  d.set(0, op.heads);
  d.set(1, op.heads / op.kv_heads);
  d.set(2, op.floor);
  d.set(3, op.q_scale);
  d.set(4, uint32_t(op.rotary_freq.buffer != VK_NULL_HANDLE));
  d.set(5, op.state_offset);
  d.set(6, op.q_stride);
  d.set(7, op.k_stride);
  d.set(8, op.v_stride);
  d.groups = op.heads * op.max_runs;  // workgroups of runs the batch does not have return at once
  return d;
}

Dispatch softmax_attention(Device& device, const SoftmaxAttention& op) {
  const uint32_t workgroup = reduction_workgroup(device, 256);
  check_shared_memory(device, uint64_t(op.head_dim) + workgroup, workgroup, "softmax attention");
  Dispatch d;
  d.pipeline = &device.pipeline("softmax_attention", workgroup, {op.head_dim});
  d.bindings[0] = op.q;
  d.bindings[1] = op.k;
  d.bindings[2] = op.v;
  d.bindings[3] = op.keys;
  d.bindings[4] = op.values;
  d.bindings[5] = op.scores;
  d.bindings[6] = op.out;
  d.bindings[7] = op.batch;
  d.bindings[8] = op.rotary_freq;
  d.set(0, op.heads);
  d.set(1, op.heads / op.kv_heads);
  d.set(2, op.max_context);
  d.set(3, op.q_scale);
  d.set(4, uint32_t(op.rotary_freq.buffer != VK_NULL_HANDLE));
  d.set(5, op.keys_offset);
  d.set(6, op.values_offset);
  d.groups = op.heads * op.max_runs;
  return d;
}

uint32_t softmax_attention_splits(uint32_t max_context) { return div_up(max_context, kSplitPositions); }

std::array<Dispatch, 3> softmax_attention_split(Device& device, const SoftmaxAttention& op, Span partials,
                                                uint32_t max_rows) {
  const uint32_t workgroup = reduction_workgroup(device, 256), splits = softmax_attention_splits(op.max_context);
  check_shared_memory(device, uint64_t(op.head_dim) + kSplitPositions, workgroup, "softmax attention");
  std::array<Dispatch, 3> passes;
  for (uint32_t pass = 0; pass < 3; ++pass) {
    Dispatch& d = passes[pass];
    d.pipeline = &device.pipeline("softmax_attention_split", workgroup, {op.head_dim, pass, kSplitPositions});
    d.bindings[0] = op.q;
    d.bindings[1] = op.k;
    d.bindings[2] = op.v;
    d.bindings[3] = op.keys;
    d.bindings[4] = op.values;
    d.bindings[5] = partials;
    d.bindings[6] = op.out;
    d.bindings[7] = op.batch;
    d.bindings[8] = op.rotary_freq;
    d.set(0, op.heads);
    d.set(1, op.heads / op.kv_heads);
    d.set(2, splits);
    d.set(3, op.q_scale);
    d.set(4, uint32_t(op.rotary_freq.buffer != VK_NULL_HANDLE));
    d.set(5, op.keys_offset);
    d.set(6, op.values_offset);
  }
  passes[0].groups = max_rows;  // workgroups of rows the batch does not have return at once
  passes[1].groups = splits * op.heads * max_rows;
  passes[2].groups = op.heads * max_rows;
  return passes;
}

}  // namespace t2r::vulkan
