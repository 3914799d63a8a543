#include "evolution.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace t2r::search {
namespace {

// splitmix64: the same numbers on every platform, unlike std:: distributions.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  size_t below(size_t n) { return size_t(uniform() * double(n)); }

 private:
  uint64_t state_;
};

class Population {
 public:
  Population(const EvolutionOptions& options, Random& random) : o_(options), random_(random) {}

  // On the grid, within [min_keep, 1], the first 1 and non-increasing.
  std::vector<double> snap(std::vector<double> keep) const {
    keep[0] = 1;
    for (size_t l = 1; l < keep.size(); ++l) {
      const double v = std::min(std::max(keep[l], o_.min_keep), keep[l - 1]);
      keep[l] = std::min(keep[l - 1], std::max(o_.min_keep, std::round(v / o_.step) * o_.step));
    }
    return keep;
  }

  std::vector<double> random_config() {
    std::vector<double> keep(o_.layers, 1.0);
    for (size_t l = 1; l < keep.size(); ++l) keep[l] = keep[l - 1] * (0.5 + 0.5 * random_.uniform());
    return snap(keep);
  }

  // The same fraction in every layer but the first, about `budget` of the FLOPs.
  std::vector<double> flat(double budget) const {
    const double L = double(o_.layers);
    std::vector<double> keep(o_.layers, o_.layers > 1 ? (budget * L - 1) / (L - 1) : 1.0);
    return snap(keep);
  }

  // Each layer after the first moves, with probability 2 / (L - 1), to a uniform point between
  // its neighbours, so the configuration stays monotone.
  std::vector<double> mutate(std::vector<double> keep) {
    const double p = std::min(1.0, 2.0 / double(std::max<size_t>(1, keep.size() - 1)));
    for (size_t l = 1; l < keep.size(); ++l) {
      if (random_.uniform() >= p) continue;
      const double low = l + 1 < keep.size() ? keep[l + 1] : o_.min_keep, high = keep[l - 1];
      keep[l] = low + random_.uniform() * (high - low);
    }
    return snap(keep);
  }

  // Each layer's fraction from either parent, sorted back into a non-increasing order.
  std::vector<double> crossover(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> keep(a.size());
    for (size_t l = 0; l < a.size(); ++l) keep[l] = random_.uniform() < 0.5 ? a[l] : b[l];
    std::sort(keep.begin() + 1, keep.end(), std::greater<double>());
    return snap(keep);
  }

  std::vector<long> key(const std::vector<double>& keep) const {
    std::vector<long> k;
    for (double v : keep) k.push_back(std::lround(v / o_.step));
    return k;
  }

 private:
  const EvolutionOptions& o_;
  Random& random_;
};

}  // namespace

std::vector<Candidate> pareto_frontier(const std::vector<Candidate>& candidates) {
  std::vector<Candidate> sorted = candidates;
  std::sort(sorted.begin(), sorted.end(), [](const Candidate& a, const Candidate& b) {
    return a.flops_fraction < b.flops_fraction || (a.flops_fraction == b.flops_fraction && a.nll < b.nll);
  });
  std::vector<Candidate> frontier;
  for (const Candidate& c : sorted) {
    if (frontier.empty() || c.nll < frontier.back().nll) frontier.push_back(c);
  }
  return frontier;
}

const Candidate* best_within(const std::vector<Candidate>& candidates, double budget) {
  const Candidate* best = nullptr;
  for (const Candidate& c : candidates) {
    if (c.flops_fraction <= budget && (!best || c.nll < best->nll)) best = &c;
  }
  return best;
}

std::vector<Candidate> evolve(const EvolutionOptions& options, const Measure& measure,
                              const std::function<void(int, const std::vector<Candidate>&)>& progress) {
  Random random(options.seed);
  Population population(options, random);
  std::vector<Candidate> archive;
  std::map<std::vector<long>, size_t> seen;

  // The first generation: the full configuration, a flat one per budget, the rest random.
  std::vector<std::vector<double>> batch = {std::vector<double>(options.layers, 1.0)};
  for (double budget : options.budgets) batch.push_back(population.flat(budget));
  for (int generation = 0; generation < options.generations; ++generation) {
    if (generation > 0) {
      // Parents: the frontier, and the best configuration within each budget.
      std::vector<Candidate> parents = pareto_frontier(archive);
      for (double budget : options.budgets) {
        if (const Candidate* best = best_within(archive, budget)) parents.push_back(*best);
      }
      for (int attempt = 0; int(batch.size()) < options.population && attempt < 100 * options.population; ++attempt) {
        const auto& a = parents[random.below(parents.size())].keep;
        const auto& b = parents[random.below(parents.size())].keep;
        std::vector<double> child = random.uniform() < 0.5 ? population.mutate(a) : population.crossover(a, b);
        const bool repeated = seen.count(population.key(child)) > 0 ||
                              std::any_of(batch.begin(), batch.end(), [&](const std::vector<double>& other) {
                                return population.key(other) == population.key(child);
                              });
        if (!repeated) batch.push_back(child);
      }
    }
    while (int(batch.size()) < options.population) batch.push_back(population.random_config());
    for (const std::vector<double>& keep : batch) {
      if (!seen.emplace(population.key(keep), archive.size()).second) continue;
      archive.push_back(Candidate{keep, measure.flops_fraction(keep), measure.nll(keep)});
    }
    batch.clear();
    progress(generation, pareto_frontier(archive));
  }
  return archive;
}

}  // namespace t2r::search
