#include "translation_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "context.h"
#include "error.h"
#include "svg_chart.h"

namespace t2r::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// One measured point of a sweep.
struct Point {
  std::string sweep;  // "target" or "source"
  const TranslationModel* model;
  int threads;
  long beam, source, target;
  double tok_s = 0;         // target tokens of the sentence per second over the whole decode
  double tail_tok_s = 0;    // the same over its second half: the speed at that length
  double encode_tok_s = 0;  // source tokens per second through the encoder
  size_t context_bytes = 0;  // Context::bytes(): everything planned, encoder activations included
  size_t state_bytes = 0;    // one sequence's (beam's) self-attention state or KV cache
  size_t source_bytes = 0;   // one encoded source: S and z per layer (T2R) or its keys and values
  // What a sentence holds while it decodes: its beams' states and its encoded source.
  size_t decoder_bytes() const { return size_t(beam) * state_bytes + source_bytes; }
};

ContextOptions plan(long beam, long target, long source, int threads) {
  ContextOptions o;
  o.max_sequences = int(beam);
  o.max_batch = int(beam);
  o.max_outputs = int(beam);
  o.max_context = target;
  o.threads = threads;
  o.max_sources = 1;
  o.max_source_length = source;
  return o;
}

// The memory of a plan; a source slot's size is what a second one adds.
void measure_memory(const Model& model, ContextOptions options, Point& p) {
  const Context one(model, options);
  p.context_bytes = one.bytes();
  p.state_bytes = one.state_layout().floats * sizeof(float);
  options.max_sources = 2;
  p.source_bytes = Context(model, options).bytes() - p.context_bytes;
}

std::vector<int32_t> random_source(long length, int64_t vocab) {
  std::mt19937 rng(7);
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (auto& id : ids) id = int32_t(4 + rng() % uint32_t(vocab - 4));  // past fairseq's 4 special symbols
  ids.back() = 2;                                                        // </s>
  return ids;
}

// One sentence: encodes `source` into slot 0, then decodes `steps` target tokens, each step one batched
// row per beam continuing with its row's argmax (greedy per beam; beam search's top-k over the beams
// and the state copies of its forks are left out: forced lengths need every beam alive). Returns the
// encode time and the time after each step (elapsed[0] = 0).
struct Run {
  double encode_s = 0;
  std::vector<double> elapsed;
};

Run decode_sentence(Context& ctx, const std::vector<int32_t>& source, long beam, long steps) {
  const size_t V = size_t(ctx.model().hparams().vocab_size);
  Run run;
  const auto encode_start = Clock::now();
  ctx.encode(0, source.data(), source.size());
  run.encode_s = seconds(encode_start, Clock::now());
  std::vector<BatchRow> rows(static_cast<size_t>(beam));
  std::vector<int32_t> tokens(static_cast<size_t>(beam));
  const auto step = [&](long position) {
    for (long b = 0; b < beam; ++b) rows[size_t(b)] = {tokens[size_t(b)], int32_t(b), position, true};
    ctx.decode(rows.data(), rows.size());
    for (long b = 0; b < beam; ++b) {
      const float* logits = ctx.logits(size_t(b));
      tokens[size_t(b)] = int32_t(std::max_element(logits, logits + V) - logits);
    }
  };
  const auto restart = [&] {
    for (long b = 0; b < beam; ++b) {
      ctx.clear(int(b));
      ctx.attach(int(b), 0);
      tokens[size_t(b)] = 2;  // the decoder starts from </s>
    }
  };
  restart();
  step(0);  // warm-up: first touch of the weights and buffers
  restart();
  run.elapsed.push_back(0);
  const auto start = Clock::now();
  for (long i = 0; i < steps; ++i) {
    step(i);
    run.elapsed.push_back(seconds(start, Clock::now()));
  }
  return run;
}

// The speeds of a decode of `target` steps from the fastest of the runs.
void set_speeds(const std::vector<Run>& runs, long source, long target, Point& p) {
  for (const Run& r : runs) {
    const double all = r.elapsed[size_t(target)], tail = all - r.elapsed[size_t(target / 2)];
    p.tok_s = std::max(p.tok_s, double(target) / all);
    p.tail_tok_s = std::max(p.tail_tok_s, double(target - target / 2) / tail);
    p.encode_tok_s = std::max(p.encode_tok_s, double(source) / r.encode_s);
  }
}

std::vector<Run> runs(Context& ctx, long source_length, long beam, long steps, long repeat) {
  const std::vector<int32_t> source = random_source(source_length, ctx.model().hparams().encoder.vocab_size);
  std::vector<Run> out;
  for (long i = 0; i < repeat; ++i) out.push_back(decode_sentence(ctx, source, beam, steps));
  return out;
}

void print(const Point& p) {
  std::printf("%-6s %-24s %7d %4ld %6ld %6ld %9.1f %9.1f %10.1f %11.2f %12.1f %10.1f %11.2f\n", p.sweep.c_str(),
              p.model->label.c_str(), p.threads, p.beam, p.source, p.target, p.tok_s, p.tail_tok_s, p.encode_tok_s,
              double(p.context_bytes) / 1e6, double(p.state_bytes) / 1e3, double(p.source_bytes) / 1e3,
              double(p.decoder_bytes()) / 1e6);
}

// The points of one curve: one sweep of one model at one beam and thread count, in length order.
std::vector<const Point*> curve(const std::vector<Point>& points, const std::string& sweep, const TranslationModel* m,
                                int threads, long beam) {
  std::vector<const Point*> out;
  for (const Point& p : points) {
    if (p.sweep == sweep && p.model == m && p.threads == threads && p.beam == beam) out.push_back(&p);
  }
  return out;
}

long length_of(const Point& p) { return p.sweep == "target" ? p.target : p.source; }

struct Ratio {
  std::string sweep, label;
  int threads;
  long beam, from, to;
  // Speeds: the first point's over the last's; bytes: the last point's over the first's.
  double slowdown, tail_slowdown, decoder_growth, context_growth;
};

void write_outputs(const std::vector<Point>& points, const std::vector<Ratio>& ratios,
                   const std::vector<TranslationModel>& models, const TranslationSweep& sweep) {
  if (std::system(("mkdir -p '" + sweep.out + "'").c_str()) != 0) throw Error("cannot create " + sweep.out);
  std::string csv =
      "sweep,model,attention,threads,beam,source,target,tok_s,tail_tok_s,encode_tok_s,context_bytes,state_bytes,"
      "source_bytes,decoder_bytes\n";
  std::string json = "{\n  \"results\": [\n";
  char line[768];
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    std::snprintf(line, sizeof line, "%s,%s,%s,%d,%ld,%ld,%ld,%.2f,%.2f,%.2f,%zu,%zu,%zu,%zu\n", p.sweep.c_str(),
                  p.model->label.c_str(), p.model->attention.c_str(), p.threads, p.beam, p.source, p.target, p.tok_s,
                  p.tail_tok_s, p.encode_tok_s, p.context_bytes, p.state_bytes, p.source_bytes, p.decoder_bytes());
    csv += line;
    std::snprintf(line, sizeof line,
                  "    {\"sweep\": \"%s\", \"model\": \"%s\", \"attention\": \"%s\", \"threads\": %d, \"beam\": %ld, "
                  "\"source\": %ld, \"target\": %ld, \"tok_s\": %.2f, \"tail_tok_s\": %.2f, \"encode_tok_s\": %.2f, "
                  "\"context_bytes\": %zu, \"state_bytes\": %zu, \"source_bytes\": %zu, \"decoder_bytes\": %zu}%s\n",
                  p.sweep.c_str(), p.model->label.c_str(), p.model->attention.c_str(), p.threads, p.beam, p.source,
                  p.target, p.tok_s, p.tail_tok_s, p.encode_tok_s, p.context_bytes, p.state_bytes, p.source_bytes,
                  p.decoder_bytes(), i + 1 < points.size() ? "," : "");
    json += line;
  }
  json += "  ],\n  \"ratios\": [\n";
  for (size_t i = 0; i < ratios.size(); ++i) {
    const Ratio& r = ratios[i];
    std::snprintf(line, sizeof line,
                  "    {\"sweep\": \"%s\", \"model\": \"%s\", \"threads\": %d, \"beam\": %ld, \"from\": %ld, "
                  "\"to\": %ld, \"slowdown\": %.3f, \"tail_slowdown\": %.3f, \"decoder_bytes_growth\": %.3f, "
                  "\"context_bytes_growth\": %.3f}%s\n",
                  r.sweep.c_str(), r.label.c_str(), r.threads, r.beam, r.from, r.to, r.slowdown, r.tail_slowdown,
                  r.decoder_growth, r.context_growth, i + 1 < ratios.size() ? "," : "");
    json += line;
  }
  json += "  ]\n}\n";
  std::ofstream(sweep.out + "/results.csv") << csv;
  std::ofstream(sweep.out + "/results.json") << json;

  // The plots: speed for each thread count, memory (the same at any) at the first.
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  const auto series = [&](const std::string& which, int threads, bool memory) {
    std::vector<Series> out;
    for (const TranslationModel& m : models) {
      for (long beam : sweep.beams) {
        Series s{m.attention + ", beam " + std::to_string(beam), colors[out.size() % 6], {}};
        for (const Point* p : curve(points, which, &m, threads, beam)) {
          s.points.emplace_back(double(length_of(*p)), memory ? double(p->decoder_bytes()) / 1e6 : p->tail_tok_s);
        }
        out.push_back(s);
      }
    }
    return out;
  };
  for (const std::string which : {"target", "source"}) {
    const std::string fixed = which == "target" ? "source " + std::to_string(sweep.source) + " tokens"
                                                : std::to_string(sweep.tokens) + " target tokens";
    const std::string axis = which + " length (tokens)";
    for (int threads : sweep.threads) {
      std::ofstream(sweep.out + "/decode_vs_" + which + "_t" + std::to_string(threads) + ".svg")
          << line_chart_svg(sweep.model + ": decode speed vs " + which + " length (" + fixed + ", " +
                                std::to_string(threads) + " thread" + (threads > 1 ? "s" : "") + ")",
                            axis, "target tokens/s", series(which, threads, false), true, true);
    }
    std::ofstream(sweep.out + "/memory_vs_" + which + ".svg")
        << line_chart_svg(sweep.model + ": beam states + encoded source vs " + which + " length", axis, "MB",
                          series(which, sweep.threads.front(), true), true, true);
  }
  std::printf("\nwrote %s/results.csv, results.json, decode_vs_{target,source}_tN.svg (N threads), "
              "memory_vs_{target,source}.svg\n",
              sweep.out.c_str());
}

}  // namespace

void run_translation_bench(const std::vector<TranslationModel>& models, const TranslationSweep& sweep) {
  for (const TranslationModel& m : models) {
    if (!m.model->hparams().has_encoder()) throw Error(m.label + ": not a translation model (no encoder)");
  }
  const long longest_target = *std::max_element(sweep.targets.begin(), sweep.targets.end());
  std::printf("%-6s %-24s %7s %4s %6s %6s %9s %9s %10s %11s %12s %10s %11s\n", "sweep", "model", "threads", "beam",
              "source", "target", "tok/s", "tail t/s", "encode t/s", "context MB", "state KB/beam", "source KB",
              "decoder MB");
  std::vector<Point> points;
  // Interleaved: each thread count and beam runs every model before the next, so a noisy
  // neighbour on a shared machine hits both attention kinds alike.
  for (int threads : sweep.threads) {
    for (long beam : sweep.beams) {
      for (const TranslationModel& m : models) {
        // Target sweep: one decode to the longest target, its timestamps read at each length.
        Context ctx(*m.model, plan(beam, longest_target, sweep.source, threads));
        const std::vector<Run> measured = runs(ctx, sweep.source, beam, longest_target, sweep.repeat);
        for (long target : sweep.targets) {
          Point p{"target", &m, threads, beam, sweep.source, target};
          set_speeds(measured, sweep.source, target, p);
          measure_memory(*m.model, plan(beam, target, sweep.source, threads), p);
          print(p);
          points.push_back(p);
        }
      }
      for (const TranslationModel& m : models) {
        for (long source : sweep.sources) {
          Point p{"source", &m, threads, beam, source, sweep.tokens};
          Context ctx(*m.model, plan(beam, sweep.tokens, source, threads));
          set_speeds(runs(ctx, source, beam, sweep.tokens, sweep.repeat), source, sweep.tokens, p);
          measure_memory(*m.model, plan(beam, sweep.tokens, source, threads), p);
          print(p);
          points.push_back(p);
        }
      }
    }
  }

  // Flatness: each curve's first point against its last; then each model against the first at the
  // longest length.
  std::vector<Ratio> ratios;
  std::printf("\n%-6s %-24s %7s %4s %12s %9s %10s %13s %13s\n", "sweep", "model", "threads", "beam", "lengths",
              "slowdown", "tail slow", "decoder grow", "context grow");
  for (const std::string which : {"target", "source"}) {
    for (int threads : sweep.threads) {
      for (long beam : sweep.beams) {
        for (const TranslationModel& m : models) {
          const std::vector<const Point*> c = curve(points, which, &m, threads, beam);
          const Point &a = *c.front(), &z = *c.back();
          const Ratio r{which, m.label, threads, beam, length_of(a), length_of(z), a.tok_s / z.tok_s,
                        a.tail_tok_s / z.tail_tok_s, double(z.decoder_bytes()) / double(a.decoder_bytes()),
                        double(z.context_bytes) / double(a.context_bytes)};
          std::printf("%-6s %-24s %7d %4ld %5ld->%-6ld %8.2fx %9.2fx %12.2fx %12.2fx\n", which.c_str(),
                      m.label.c_str(), threads, beam, r.from, r.to, r.slowdown, r.tail_slowdown, r.decoder_growth,
                      r.context_growth);
          ratios.push_back(r);
        }
      }
    }
  }
  if (models.size() > 1) {
    std::printf("\nat the longest length, %s against each other model: speed = its tail tok/s over theirs, "
                "memory = their decoder bytes over its\n",
                models.front().label.c_str());
    for (const std::string which : {"target", "source"}) {
      for (int threads : sweep.threads) {
        for (long beam : sweep.beams) {
          const Point& first = *curve(points, which, &models.front(), threads, beam).back();
          for (size_t i = 1; i < models.size(); ++i) {
            const Point& other = *curve(points, which, &models[i], threads, beam).back();
            std::printf("%-6s %-24s %7d %4ld %6ld: speed %.2fx, memory %.2fx\n", which.c_str(),
                        models[i].label.c_str(), threads, beam, length_of(first), first.tail_tok_s / other.tail_tok_s,
                        double(other.decoder_bytes()) / double(first.decoder_bytes()));
          }
        }
      }
    }
  }
  write_outputs(points, ratios, models, sweep);
}

}  // namespace t2r::bench
