// CPU kernels. Each call goes to the implementation chosen once at run time (kernel paths, below):
// the portable scalar reference (kernels_reference.h) or a SIMD path tested against it.
// None of them allocates; all sizes are element counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dtype.h"

namespace t2r::cpu {

// A copy of a q8_0 or q4_0 matrix in a layout some kernel path multiplies faster than the stored
// rows (made once, at load, by pack()).
// Interleaved16: rows in groups of 16 (the last padded with zero rows), a group's blocks in order;
// per block the weights of its 16 rows 4 at a time (for u = 0..7 (q8_0) or 0..3 (q4_0): the 4
// bytes u of row 0, of row 1, ..., of row 15: one 64-byte vector), q8_0 bytes stored as w + 128,
// q4_0 bytes as stored (low nibbles w[4u..4u+3], high nibbles w[16 + 4u..]); then the 16 rows' f16
// scales. The same bytes as the stored rows (34 or 18 per block and row), so decoding streams as
// much; one vector of 16 rows per instruction is what lets AVX-512 VNNI multiply at its peak.
enum class Packing : uint8_t { None, Interleaved16 };

// A row-major [rows, cols] weight matrix used in place, in its stored dtype (for block types,
// cols is a multiple of 32 and each row is cols / 32 blocks), and optionally a packed copy that a
// kernel path reading that packing uses instead (the others read `data`).
struct Matrix {
  DType dtype = DType::F32;
  const void* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  const void* packed = nullptr;
  Packing packing = Packing::None;
};

// Must run once before any kernel: fills the reference's f16 table and picks the best kernel path
// this CPU runs, or the one the environment variable T2R_CPU names (throws t2r::Error when that
// path is unknown or unavailable). Thread-safe; later calls do nothing.
void init_kernels();

// Kernel paths, best last: "scalar" (the reference, always) and those of "avx2", "avx512", "neon",
// "neon-dotprod" and "wasm-simd128" that this build and CPU can run. For tests and benchmarks.
std::vector<std::string> available_kernel_paths();
// Switches every later call to `path`; returns false (and changes nothing) when it is unavailable.
bool select_kernel_path(std::string_view path);
std::string_view kernel_path();

// Bytes of w packed for the current kernel path; 0 when the path multiplies w as stored.
size_t packed_bytes(const Matrix& w);
// w with a packed copy written to `storage` (packed_bytes(w) bytes, 64-byte aligned), or w
// itself when packed_bytes(w) is 0.
Matrix pack(const Matrix& w, void* storage);

// Y = X W^T (+ bias when not null) for output rows [row_begin, row_end): X is [n, w.cols] and
// Y is [n, w.rows], both row-major. Each weight row is read once for all n tokens, which is what
// makes prompt processing faster than decoding; a row range is the unit of work of one thread.
// For q8_0 and q4_0 weights X is first quantized to q8 blocks (d = max|x| / 127 kept in f32,
// q = x / d rounded half to even) and the dot products are exact integer sums per block.
void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end);
// y[rows] = W x (+ bias): one token, all rows.
inline void matvec(const Matrix& w, const float* x, const float* bias, float* y) {
  matmul(w, x, 1, bias, y, 0, w.rows);
}
// out[cols] = row `row` of W converted to f32, times scale.
void matrix_row(const Matrix& w, size_t row, float scale, float* out);

void layer_norm(const float* x, const float* weight, const float* bias, float eps, size_t n, float* out);
void rms_norm(const float* x, const float* weight, float eps, size_t n, float* out);

void add(float* x, const float* y, size_t n);  // x += y
void relu(float* x, size_t n);
// GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
void gelu_tanh(float* x, size_t n);
void elu_plus_one(float* x, size_t n);
void silu_mul(float* gate, const float* up, size_t n);  // gate = silu(gate) * up

// Rotate-half rotary embedding of `heads` consecutive head vectors of size head_dim at `position`.
// inv_freq holds head_dim / 2 frequencies.
void rotary(float* x, size_t heads, size_t head_dim, const float* inv_freq, int64_t position);
// x[half + i] += cos(position * freq_i), x[i] += sin(position * freq_i): fairseq's sinusoidal table.
void add_sinusoidal_position(float* x, size_t dim, const float* freq, int64_t position);

// One token of causal linear attention for one head, with the state in place:
//   S += phi_k v^T (S is [r, d_v]),  z += phi_k,  out = phi_q^T S / max(phi_q . z, floor).
void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k,
                           const float* v, size_t r, size_t d_v, float floor, float* out);

// Causal linear attention over a chunk of n tokens for one head, in the chunked (parallel) form,
// carrying the recurrent state across chunks:
//   A[t][s] = phi_q_t . phi_k_s for s <= t
//   out_t   = (phi_q_t^T S + sum_s A[t][s] v_s) / max(phi_q_t . z + sum_s A[t][s], floor)
//   then S += sum_s phi_k_s v_s^T and z += sum_s phi_k_s.
// Within a chunk the work is matrix-shaped; with n = 1 it is exactly one recurrent step.
struct LinearAttentionChunk {
  const float* phi_q;  // row t at phi_q + t * phi_stride, r floats
  const float* phi_k;
  size_t phi_stride;
  const float* v;  // row t at v + t * v_stride, d_v floats
  size_t v_stride;
  float* out;  // row t at out + t * out_stride, d_v floats
  size_t out_stride;
  size_t n, r, d_v;
  float floor;
};
// state [r, d_v] and normalizer [r] are updated in place.
void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer);

// Causal softmax attention of one query head over `length` cached keys/values with row stride
// `stride` floats (the cache interleaves kv heads). scores needs `length` floats.
void softmax_attention(const float* q, const float* keys, const float* values, size_t length,
                       size_t stride, size_t head_dim, float* scores, float* out);

void softmax(float* x, size_t n);

}  // namespace t2r::cpu

namespace t2r::cpu {
// Rows [first, first + count) of w, as a matrix of its own (as stored: without a packed copy).
inline Matrix row_slice(const Matrix& w, size_t first, size_t count) {
  auto bytes = static_cast<const unsigned char*>(w.data) + first * row_bytes(w.dtype, w.cols);
  return Matrix{w.dtype, bytes, count, w.cols};
}
}  // namespace t2r::cpu
