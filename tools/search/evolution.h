// The evolutionary search of Length-Adaptive Transformer (Kim & Cho 2021) over length
// configurations: a population of monotone configurations, mutation within monotone bounds,
// crossover, and the Pareto frontier of prefill FLOPs against score. Knows nothing of models:
// the caller measures each configuration. Deterministic given the seed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace t2r::search {

struct Candidate {
  std::vector<double> keep;  // per layer, the first 1, non-increasing
  double flops_fraction = 0;
  double nll = 0;  // lower is better
};

struct EvolutionOptions {
  size_t layers = 0;
  int population = 24;
  int generations = 12;
  uint64_t seed = 1;
  double min_keep = 0.05;  // no layer keeps less than this fraction
  double step = 0.01;      // fractions are multiples of this, so that repeats are recognized
  std::vector<double> budgets;  // FLOPs fractions the search should cover well
};

struct Measure {
  std::function<double(const std::vector<double>&)> flops_fraction;
  std::function<double(const std::vector<double>&)> nll;  // the expensive one
};

// Every configuration evaluated (each once), in the order evaluated. `progress` is called after
// each generation with its number and the frontier so far.
std::vector<Candidate> evolve(const EvolutionOptions& options, const Measure& measure,
                              const std::function<void(int, const std::vector<Candidate>&)>& progress);

// The candidates no other candidate beats on both FLOPs and NLL, by increasing FLOPs.
std::vector<Candidate> pareto_frontier(const std::vector<Candidate>& candidates);
// The lowest-NLL candidate within `budget` (a FLOPs fraction); null when none fits.
const Candidate* best_within(const std::vector<Candidate>& candidates, double budget);

}  // namespace t2r::search
