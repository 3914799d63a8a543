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
  Population(const EvolutionOptions& options, const Measure& measure, Random& random)
      : o_(options), measure_(measure), random_(random) {}

  // On the grid, within [min_keep, 1], the first 1 and non-increasing.
  std::vector<double> snap(std::vector<double> keep) const {
    keep[0] = 1;
    for (size_t l = 1; l < keep.size(); ++l) {
      const double v = std::min(std::max(keep[l], o_.min_keep), keep[l - 1]);
      // Divided rather than multiplied, so that 41 steps of 0.01 read back as 0.41.
      keep[l] = std::min(keep[l - 1], std::max(o_.min_keep, std::round(v / o_.step) / std::round(1 / o_.step)));
    }
    return keep;
  }

  std::vector<double> random_config() {
    std::vector<double> keep(o_.layers, 1.0);
    for (size_t l = 1; l < keep.size(); ++l) keep[l] = keep[l - 1] * (0.5 + 0.5 * random_.uniform());
    return snap(keep);
  }

  // `shape` scaled by the largest factor (layer 0 stays 1, none above 1) that keeps the
  // configuration within `budget`: moves a configuration onto a budget's boundary.
  std::vector<double> fit(const std::vector<double>& shape, double budget) const {
    const auto scaled = [&](double factor) {
      std::vector<double> keep = shape;
      for (size_t l = 1; l < keep.size(); ++l) keep[l] = std::min(1.0, keep[l] * factor);
      return snap(keep);
    };
    double low = 0, high = 1 / o_.min_keep;
    for (int i = 0; i < 30; ++i) {
      const double mid = (low + high) / 2;
      (measure_.flops_fraction(scaled(mid)) <= budget ? low : high) = mid;
    }
    return scaled(low);
  }

  // Per budget: the same fraction in every layer after the first, and a geometric decay.
  std::vector<std::vector<double>> seeds(double budget) const {
    std::vector<double> flat(o_.layers, 1.0), geometric(o_.layers, 1.0);
    for (size_t l = 1; l < o_.layers; ++l) geometric[l] = std::pow(0.7, double(l));
    return {fit(flat, budget), fit(geometric, budget)};
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
  const Measure& measure_;
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
  Population population(options, measure, random);
  std::vector<Candidate> archive;
  std::map<std::vector<long>, size_t> seen;

  // The first generation: the full configuration, two shapes fitted to each budget, the rest random.
  std::vector<std::vector<double>> batch = {std::vector<double>(options.layers, 1.0)};
  for (double budget : options.budgets) {
    for (auto& seed : population.seeds(budget)) batch.push_back(seed);
  }
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
        // Mutation, crossover, or (a third of the time) a child fitted to the edge of a budget.
        const double choice = random.uniform();
        std::vector<double> child;
        if (choice >= 0.67 && !options.budgets.empty()) {
          child = population.fit(population.mutate(a), options.budgets[random.below(options.budgets.size())]);
        } else {
          child = choice < 0.35 ? population.mutate(a) : population.crossover(a, b);
        }
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
