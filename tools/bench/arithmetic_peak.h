// What one core of this CPU can multiply per second, measured rather than looked up: the clock (a
// chain of dependent integer adds, one per cycle) and the throughput of the instructions the
// matmul kernels are built on, as independent chains that hide their latency.
#pragma once

namespace t2r::bench {

struct ArithmeticPeak {
  bool measured = false;  // false where this build or CPU has no AVX-512 (VNNI)
  double ghz = 0;
  double fma_per_cycle = 0;      // vfmadd 512-bit: 16 f32 multiply-adds each
  double dpbusd_per_cycle = 0;   // vpdpbusd 512-bit: 64 int8 multiply-adds each
  double f32_gmacs() const { return ghz * fma_per_cycle * 16; }
  double int8_gmacs() const { return ghz * dpbusd_per_cycle * 64; }
};

// Best of a few passes of about 50 ms each, on the calling thread.
ArithmeticPeak measure_arithmetic_peak();

}  // namespace t2r::bench
