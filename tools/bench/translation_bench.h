// t2r-bench's translation sweep: decoding speed and memory of encoder-decoder models versus target
// length and versus source length, at several beam sizes and thread counts (the T2R paper's speed
// and memory figures, T2R against its softmax twin).
#pragma once

#include <string>
#include <vector>

#include "model.h"

namespace t2r::bench {

struct TranslationModel {
  std::string label;      // e.g. "mt-base t2r f32"
  std::string attention;  // "t2r", "softmax", ...
  const Model* model;
};

struct TranslationSweep {
  std::string model;  // what the plots' titles name, e.g. "mt-base"
  std::vector<int> threads;
  std::vector<long> beams, targets, sources;
  long source = 32;  // source tokens of the target-length sweep
  long tokens = 32;  // target tokens decoded at each point of the source-length sweep
  long repeat = 1;   // runs per measurement, the fastest reported
  std::string out;   // results.csv, results.json and the SVG plots go here
};

// Runs both sweeps over every model, prints a table and the flatness ratios, and writes the results.
// Throws t2r::Error for a model without an encoder or a length beyond what it takes.
void run_translation_bench(const std::vector<TranslationModel>& models, const TranslationSweep& sweep);

}  // namespace t2r::bench
