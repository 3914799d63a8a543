// t2r-search: find length configurations for length-adaptive prefill. Scores a configuration by
// the NLL of the continuation tokens after long prompts cut from a data file, searches the
// FLOPs/NLL Pareto frontier by evolution (evolution.h), prints it, writes it as JSON and SVG, and
// stores the configurations chosen for each budget in a model file. --eval measures given
// configurations instead: FLOPs, NLL and time to first token.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "evolution.h"
#include "flag_values.h"
#include "length_config.h"
#include "model_writer.h"
#include "session.h"
#include "svg_chart.h"

namespace {

using namespace t2r;

const char kUsage[] =
    "usage: t2r-search MODEL.t2r --data FILE [options]\n"
    "\n"
    "Data: FILE is text, tokenized with the model's tokenizer, or int32 token ids when its name ends\n"
    "in .i32. Windows of prompt + continuation tokens are cut from it, evenly spaced.\n"
    "  --prompts N            windows (default 4)\n"
    "  --prompt-len P         prompt tokens (default 2048)\n"
    "  --continuation C       tokens scored after each prompt (default 64)\n"
    "  --significance S       attention (default), key-norm or recency\n"
    "  --pinned-head N        first prompt tokens always kept (default 0)\n"
    "  -t, --threads N        CPU threads (default 1)\n"
    "Search (the default):\n"
    "  --budget B,B,...       FLOPs fractions to choose configurations for (default 0.75,0.5,0.3)\n"
    "  --population N         configurations per generation (default 24)\n"
    "  --generations N        (default 12)\n"
    "  --seed S               the same seed gives the same search (default 1)\n"
    "  --min-keep F           smallest fraction any layer keeps (default 0.05)\n"
    "  --out PREFIX           writes PREFIX.json and PREFIX.svg (default length-search)\n"
    "  --store OUT.t2r        writes the model with the chosen configurations stored under the\n"
    "                         names of their budgets (\"50%\"); OUT may be MODEL itself\n"
    "Evaluation instead of search:\n"
    "  --eval C               a configuration (list or stored name) to measure; repeatable\n"
    "  --repeats R            time to first token (wall clock and CPU time): best of R prefills of\n"
    "                         each prompt, the configurations taking turns (default 3)\n";

struct Options {
  std::string model_path, data_path, out = "length-search", store;
  long prompts = 4, prompt_len = 2048, continuation = 64, threads = 1, repeats = 3, pinned_head = 0;
  std::vector<double> budgets = {0.75, 0.5, 0.3};
  search::EvolutionOptions evolution;
  Significance significance = Significance::Attention;
  std::vector<std::string> eval;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "t2r-search: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  o.evolution.population = 24;
  o.evolution.generations = 12;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--data") {
      o.data_path = value();
    } else if (arg == "--prompts") {
      o.prompts = flags::integer(arg, value(), 1, 10000);
    } else if (arg == "--prompt-len") {
      o.prompt_len = flags::integer(arg, value(), 1, 1 << 24);
    } else if (arg == "--continuation") {
      o.continuation = flags::integer(arg, value(), 1, 1 << 20);
    } else if (arg == "--significance") {
      try {
        o.significance = parse_significance(value());
      } catch (const Error& e) {
        usage_error(e.what());
      }
    } else if (arg == "--pinned-head") {
      o.pinned_head = flags::integer(arg, value(), 0, 1 << 20);
    } else if (arg == "-t" || arg == "--threads") {
      o.threads = flags::integer(arg, value(), 1, 1024);
    } else if (arg == "--budget") {
      o.budgets.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) o.budgets.push_back(flags::number(arg, item, 1e-3, 1));
    } else if (arg == "--population") {
      o.evolution.population = int(flags::integer(arg, value(), 2, 10000));
    } else if (arg == "--generations") {
      o.evolution.generations = int(flags::integer(arg, value(), 1, 10000));
    } else if (arg == "--seed") {
      o.evolution.seed = uint64_t(flags::integer(arg, value(), 0, 1L << 52));
    } else if (arg == "--min-keep") {
      o.evolution.min_keep = flags::number(arg, value(), 1e-3, 1);
    } else if (arg == "--out") {
      o.out = value();
    } else if (arg == "--store") {
      o.store = value();
    } else if (arg == "--eval") {
      o.eval.push_back(value());
    } else if (arg == "--repeats") {
      o.repeats = flags::integer(arg, value(), 1, 1000);
    } else if (!arg.empty() && arg[0] == '-') {
      usage_error("unknown option '" + arg + "'");
    } else if (o.model_path.empty()) {
      o.model_path = arg;
    } else {
      usage_error("unexpected argument '" + arg + "' (the model path was already given)");
    }
  }
  if (o.model_path.empty()) usage_error("no model given");
  if (o.data_path.empty()) usage_error("no data given (--data FILE)");
  if (!o.eval.empty() && !o.store.empty()) usage_error("--store goes with a search, not with --eval");
  if (o.budgets.empty()) usage_error("--budget needs at least one FLOPs fraction");
  o.evolution.budgets = o.budgets;
  return o;
}

std::vector<int32_t> read_tokens(const Model& model, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string bytes = contents.str();
  const bool ids = path.size() >= 4 && path.compare(path.size() - 4, 4, ".i32") == 0;
  if (!ids) return model.tokenizer().encode(bytes);
  if (bytes.size() % 4 != 0) throw Error(path + ": size is not a multiple of 4 bytes (expected int32 ids)");
  std::vector<int32_t> tokens(bytes.size() / 4);
  std::memcpy(tokens.data(), bytes.data(), bytes.size());
  return tokens;
}

// Prompt + continuation windows, evenly spaced over the data (overlapping when it is short).
std::vector<std::vector<int32_t>> cut_windows(const std::vector<int32_t>& tokens, const Options& o) {
  const size_t window = size_t(o.prompt_len + o.continuation), count = size_t(o.prompts);
  if (tokens.size() < window) {
    throw Error(o.data_path + " has " + std::to_string(tokens.size()) + " tokens; one prompt and its continuation need " +
                std::to_string(window));
  }
  std::vector<std::vector<int32_t>> windows;
  for (size_t i = 0; i < count; ++i) {
    const size_t start = count > 1 ? (tokens.size() - window) * i / (count - 1) : 0;
    windows.emplace_back(tokens.begin() + long(start), tokens.begin() + long(start + window));
  }
  return windows;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// -log p(target) under softmax(logits).
double token_nll(const float* logits, int64_t vocab, int32_t target) {
  double max = logits[0];
  for (int64_t v = 1; v < vocab; ++v) max = std::max(max, double(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - max);
  return std::log(sum) + max - double(logits[target]);
}

struct Scorer {
  const Model& model;
  Session& session;
  const std::vector<std::vector<int32_t>>& windows;
  size_t prompt;

  // The full configuration runs plain prefill() unless `layer_major` asks for prefill_adaptive().
  const float* prefill(const LengthConfig& config, const std::vector<int32_t>& ids, bool layer_major = false) {
    session.reset();
    return config.is_full() && !layer_major ? session.prefill(ids.data(), prompt)
                                            : session.prefill_adaptive(ids.data(), prompt, config);
  }

  // Mean NLL of the continuation tokens. The full configuration runs plain prefill().
  double nll(const LengthConfig& config) {
    const int64_t V = model.hparams().vocab_size;
    double total = 0;
    size_t count = 0;
    for (const auto& ids : windows) {
      const float* logits = prefill(config, ids);
      for (size_t t = prompt; t < ids.size(); ++t) {
        total += token_nll(logits, V, ids[t]);
        ++count;
        if (t + 1 < ids.size()) logits = session.step(ids[t]);
      }
    }
    return total / double(count);
  }

  // Time to first token of each configuration: the best over the windows and repeats, the
  // configurations taking turns so that a noisy machine slows them alike. Wall clock, and the
  // process's CPU time, which a shared machine disturbs less (with one thread, it is what an
  // idle machine's wall clock would show).
  struct Timing {
    double wall = 1e300, cpu = 1e300;
  };
  std::vector<Timing> ttft(const std::vector<LengthConfig>& configs, const std::vector<bool>& layer_major,
                           int repeats) {
    std::vector<Timing> best(configs.size());
    for (int r = 0; r < repeats; ++r) {
      for (size_t i = 0; i < configs.size(); ++i) {
        for (const auto& ids : windows) {
          const auto start = std::chrono::steady_clock::now();
          const std::clock_t cpu_start = std::clock();
          prefill(configs[i], ids, layer_major[i]);
          best[i].cpu = std::min(best[i].cpu, double(std::clock() - cpu_start) / CLOCKS_PER_SEC);
          best[i].wall = std::min(best[i].wall, seconds_since(start));
        }
      }
    }
    return best;
  }
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string budget_name(double budget) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g%%", budget * 100);
  return buffer;
}

std::string config_text(const std::vector<double>& keep) {
  LengthConfig c;
  c.keep = keep;
  return c.to_string();
}

void print_row(double flops, double nll, double full_nll, const std::string& config) {
  std::printf("%7.1f%%  %8.4f  %+7.2f%%  %s\n", 100 * flops, nll, 100 * (nll / full_nll - 1), config.c_str());
}

void evaluate(const Options& o, Scorer& scorer) {
  const Hyperparams& hp = scorer.model.hparams();
  // Full prefill, then the same work layer by layer (what adaptive prefill does before dropping
  // anything: its share of the speedup is the order alone), then the configurations asked for.
  std::vector<std::string> names = {"full", "full, layer by layer"};
  std::vector<LengthConfig> configs(2, LengthConfig::full(size_t(hp.n_layers)));
  std::vector<bool> layer_major = {false, true};
  for (const std::string& text : o.eval) {
    names.push_back(text);
    configs.push_back(length_config_for(scorer.model, text));
    configs.back().significance = o.significance;
    configs.back().pinned_head = size_t(o.pinned_head);
    layer_major.push_back(true);
  }
  std::vector<double> nll;
  for (const LengthConfig& config : configs) nll.push_back(nll.size() == 1 ? nll[0] : scorer.nll(config));
  const std::vector<Scorer::Timing> ttft = scorer.ttft(configs, layer_major, int(o.repeats));
  std::printf("%-28s %7s  %8s  %8s  %14s  %14s\n", "configuration", "FLOPs", "NLL", "vs full", "TTFT wall ms",
              "TTFT CPU ms");
  for (size_t i = 0; i < configs.size(); ++i) {
    std::printf("%-28s %6.1f%%  %8.4f  %+7.2f%%  %6.1f (%.2fx)  %6.1f (%.2fx)\n", names[i].c_str(),
                100 * prefill_flops_fraction(hp, configs[i], scorer.prompt), nll[i], 100 * (nll[i] / nll[0] - 1),
                ttft[i].wall * 1e3, ttft[0].wall / ttft[i].wall, ttft[i].cpu * 1e3, ttft[0].cpu / ttft[i].cpu);
  }
}

void write_outputs(const Options& o, const std::vector<search::Candidate>& all, double full_nll) {
  const std::vector<search::Candidate> frontier = search::pareto_frontier(all);
  const auto candidate_json = [&](const search::Candidate& c) {
    return "{\"flops_fraction\": " + std::to_string(c.flops_fraction) + ", \"nll\": " + std::to_string(c.nll) +
           ", \"config\": " + json_string(config_text(c.keep)) + "}";
  };
  std::ofstream json(o.out + ".json");
  json << "{\n  \"model\": " << json_string(o.model_path) << ",\n  \"data\": " << json_string(o.data_path)
       << ",\n  \"prompts\": " << o.prompts << ", \"prompt_len\": " << o.prompt_len
       << ", \"continuation\": " << o.continuation << ",\n  \"significance\": "
       << json_string(significance_name(o.significance)) << ", \"seed\": " << o.evolution.seed
       << ", \"population\": " << o.evolution.population << ", \"generations\": " << o.evolution.generations
       << ",\n  \"full_nll\": " << std::to_string(full_nll) << ", \"evaluated\": " << all.size()
       << ",\n  \"chosen\": {";
  bool first = true;
  for (double budget : o.budgets) {
    if (const search::Candidate* best = search::best_within(all, budget)) {
      json << (first ? "\n" : ",\n") << "    " << json_string(budget_name(budget)) << ": " << candidate_json(*best);
      first = false;
    }
  }
  json << "\n  },\n  \"frontier\": [\n";
  for (size_t i = 0; i < frontier.size(); ++i) {
    json << "    " << candidate_json(frontier[i]) << (i + 1 < frontier.size() ? ",\n" : "\n");
  }
  json << "  ]\n}\n";

  bench::Series evaluated{"evaluated", "#bbb", {}, false}, front{"frontier", "#1f77b4", {}, true};
  for (const auto& c : all) evaluated.points.emplace_back(100 * c.flops_fraction, c.nll);
  for (const auto& c : frontier) front.points.emplace_back(100 * c.flops_fraction, c.nll);
  std::ofstream svg(o.out + ".svg");
  svg << bench::line_chart_svg("Length configurations: NLL of the continuation vs prefill FLOPs",
                               "prefill FLOPs (% of full)", "NLL (nats/token)", {evaluated, front}, false, false);
  json.close();
  svg.close();
  if (!json || !svg) throw Error("cannot write " + o.out + ".json and " + o.out + ".svg");
  std::printf("wrote %s.json and %s.svg\n", o.out.c_str(), o.out.c_str());
}

// Rewrites the model with the chosen configurations under "length_config.<budget>" (atomically).
void store(const Options& o, const Model& model, const std::vector<search::Candidate>& all) {
  ModelWriter writer;
  writer.metadata() = model.file().metadata();
  for (double budget : o.budgets) {
    if (const search::Candidate* best = search::best_within(all, budget)) {
      writer.metadata().set(length_config_key(budget_name(budget)), config_text(best->keep));
    }
  }
  for (const TensorInfo& tensor : model.file().tensors()) writer.add_stored_tensor(tensor);
  writer.write(o.store);
  std::printf("stored the chosen configurations in %s\n", o.store.c_str());
}

void run_search(const Options& o, Scorer& scorer) {
  const Hyperparams& hp = scorer.model.hparams();
  const double full_nll = scorer.nll(LengthConfig::full(size_t(hp.n_layers)));
  std::printf("full prefill: NLL %.4f over %ld x %ld continuation tokens\n", full_nll, o.prompts, o.continuation);
  search::EvolutionOptions options = o.evolution;
  options.layers = size_t(hp.n_layers);
  const auto as_config = [&](const std::vector<double>& keep) {
    LengthConfig c;
    c.keep = keep;
    c.significance = o.significance;
    c.pinned_head = size_t(o.pinned_head);
    return c;
  };
  search::Measure measure;
  measure.flops_fraction = [&](const std::vector<double>& keep) {
    return prefill_flops_fraction(hp, as_config(keep), scorer.prompt);
  };
  measure.nll = [&](const std::vector<double>& keep) {
    const LengthConfig c = as_config(keep);
    return c.is_full() ? full_nll : scorer.nll(c);
  };
  const auto start = std::chrono::steady_clock::now();
  const std::vector<search::Candidate> all = search::evolve(options, measure, [&](int generation, const auto& frontier) {
    std::printf("generation %d: %zu on the frontier (%.0f s)\n", generation + 1, frontier.size(), seconds_since(start));
    std::fflush(stdout);
  });

  std::printf("\nPareto frontier of %zu configurations (FLOPs of prefill, NLL, change from full):\n", all.size());
  for (const auto& c : search::pareto_frontier(all)) print_row(c.flops_fraction, c.nll, full_nll, config_text(c.keep));
  std::printf("\nchosen:\n");
  for (double budget : o.budgets) {
    const search::Candidate* best = search::best_within(all, budget);
    std::printf("%-6s ", budget_name(budget).c_str());
    if (best) {
      print_row(best->flops_fraction, best->nll, full_nll, config_text(best->keep));
    } else {
      std::printf("nothing evaluated within this budget\n");
    }
  }
  write_outputs(o, all, full_nll);
  if (!o.store.empty()) store(o, scorer.model, all);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const flags::BadFlagValue& e) {
    usage_error(e.what());
  }
  try {
    const std::unique_ptr<Model> model = Model::load(o.model_path);
    const std::vector<std::vector<int32_t>> windows = cut_windows(read_tokens(*model, o.data_path), o);
    SessionOptions session_options;
    session_options.threads = int(o.threads);
    session_options.max_adaptive_prompt = o.prompt_len;
    Session session(*model, session_options);
    Scorer scorer{*model, session, windows, size_t(o.prompt_len)};
    if (o.eval.empty()) {
      run_search(o, scorer);
    } else {
      evaluate(o, scorer);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "t2r-search: %s\n", e.what());
    return 1;
  }
  return 0;
}
