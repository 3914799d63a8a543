#include "rotary.h"

#include <algorithm>
#include <cmath>

namespace t2r {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Llama 3.1: long wavelengths (beyond the pretraining context / low_freq_factor) are divided by
// the factor, short ones (below context / high_freq_factor) kept, and the band between blended.
double llama3(const RotarySpec& s, double inv_freq) {
  const double context = double(s.original_max_positions), wavelength = 2 * kPi / inv_freq;
  if (wavelength < context / s.high_freq_factor) return inv_freq;
  if (wavelength > context / s.low_freq_factor) return inv_freq / s.factor;
  const double smooth = (context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1 - smooth) * inv_freq / s.factor + smooth * inv_freq;
}

// YaRN: the dimension at which a frequency turns `rotations` times over the pretraining context.
double yarn_correction_dim(const RotarySpec& s, double rotations, int64_t head_dim) {
  return double(head_dim) * std::log(double(s.original_max_positions) / (rotations * 2 * kPi)) /
         (2 * std::log(s.theta));
}

}  // namespace

std::vector<float> rotary_inverse_frequencies(const RotarySpec& s, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  // YaRN ramps from extrapolation (the original frequency) below dimension `low` to interpolation
  // (divided by the factor) above `high`.
  double low = 0, high = 0;
  if (s.scaling == RotaryScaling::Yarn) {
    low = yarn_correction_dim(s, s.beta_fast, head_dim);
    high = yarn_correction_dim(s, s.beta_slow, head_dim);
    if (s.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(head_dim - 1));
    if (low == high) high += 0.001;  // as transformers avoids the singularity
  }
  std::vector<float> freq;
  for (int64_t i = 0; i < half; ++i) {
    const double base = 1.0 / std::pow(s.theta, double(2 * i) / double(head_dim));
    double f = base;
    switch (s.scaling) {
      case RotaryScaling::None: break;
      case RotaryScaling::Linear: f = base / s.factor; break;
      case RotaryScaling::Llama3: f = llama3(s, base); break;
      case RotaryScaling::Yarn: {
        const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        f = base / s.factor * ramp + base * (1 - ramp);
        break;
      }
    }
    freq.push_back(float(f));
  }
  return freq;
}

}  // namespace t2r
