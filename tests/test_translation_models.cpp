// The three reference translation models (../shared/models/mt-*), packed and run by t2r, against
// their fp32 reference outputs.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <algorithm>
#include <cmath>
#include <fstream>
#include <tuple>

#include "bleu.h"
#include "context.h"
#include "safetensors.h"
#include "test_support.h"
#include "translator.h"

using namespace t2r;
using namespace t2r::test;

namespace {

const char* const kTranslationModels[] = {"mt-softmax", "mt-t2r", "mt-elu"};

// One teacher-forced sentence of reference.safetensors.
struct ForcedSentence {
  std::vector<int32_t> src, prev, tgt;
  std::vector<float> logits;  // [T, V]
};

std::vector<ForcedSentence> forced_sentences(const std::string& name) {
  SafetensorsFile file(reference_dir(name) + "/reference.safetensors");
  const int n = std::stoi(file.metadata().at("n"));
  std::vector<ForcedSentence> out;
  for (int j = 0; j < n; ++j) {
    const std::string p = std::to_string(j) + ".";
    out.push_back({tensor_to_i32(file.at(p + "src_ids")), tensor_to_i32(file.at(p + "prev_ids")),
                   tensor_to_i32(file.at(p + "tgt_ids")), tensor_to_f32(file.at(p + "logits"))});
  }
  return out;
}

// The largest |logit - reference| of a sentence decoded as one chunk (chunk = true) or token by token.
float forced_max_diff(const Model& model, const ForcedSentence& s, bool chunk) {
  const size_t T = s.prev.size(), V = size_t(model.hparams().vocab_size);
  ContextOptions options;
  options.max_batch = int(T);
  options.max_outputs = int(T);
  Context context(model, options);
  context.encode(0, s.src.data(), s.src.size());
  context.attach(0, 0);
  float most = 0;
  const auto compare = [&](size_t t, const float* logits) {
    for (size_t v = 0; v < V; ++v) most = std::max(most, std::fabs(logits[v] - s.logits[t * V + v]));
  };
  if (chunk) {
    std::vector<BatchRow> rows;
    for (size_t t = 0; t < T; ++t) rows.push_back({s.prev[t], 0, int64_t(t), true});
    const float* logits = context.decode(rows.data(), rows.size());
    for (size_t t = 0; t < T; ++t) compare(t, logits + t * V);
  } else {
    for (size_t t = 0; t < T; ++t) {
      const BatchRow row{s.prev[t], 0, int64_t(t), true};
      compare(t, context.decode(&row, 1));
    }
  }
  return most;
}

std::vector<std::vector<int32_t>> sources_of(const json::Value& entries) {
  std::vector<std::vector<int32_t>> sources;
  for (const json::Value& e : entries.as_array()) sources.push_back(ids_of(e.at("src_ids")));
  return sources;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  REQUIRE(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

// Sentence i of ids concatenated with offsets [N + 1].
std::vector<int32_t> sentence(const std::vector<int32_t>& ids, const std::vector<int32_t>& offsets, size_t i) {
  return std::vector<int32_t>(ids.begin() + offsets[i], ids.begin() + offsets[i + 1]);
}

}  // namespace

TEST_CASE("translation models at f32: teacher-forced logits of every reference sentence within 1e-3") {
  for (const char* name : kTranslationModels) {
    const Model& model = packed_reference_model(name, DType::F32);
    CHECK(model.hparams().has_encoder());
    float most = 0;
    for (const ForcedSentence& s : forced_sentences(name)) {
      most = std::max({most, forced_max_diff(model, s, true), forced_max_diff(model, s, false)});
    }
    MESSAGE(std::string(name) << ": max |logit diff| " << most);
    CHECK(most < 1e-3f);
  }
}

TEST_CASE("translation models at f32: greedy and beam 5 give the reference hypotheses and scores") {
  for (const char* name : kTranslationModels) {
    CAPTURE(std::string(name));
    const Model& model = packed_reference_model(name, DType::F32);
    const json::Value& ref = reference_outputs(name).json;
    TranslatorOptions greedy_options;
    greedy_options.beam = 1;
    Translator greedy(model, greedy_options);
    const auto greedy_out = greedy.translate_all(sources_of(ref.at("greedy")));
    for (size_t i = 0; i < greedy_out.size(); ++i) {
      const json::Value& expected = ref.at("greedy").as_array()[i];
      CHECK(translation_source_ids(model, expected.at("src").as_string()) == ids_of(expected.at("src_ids")));
      CHECK(greedy_out[i][0].ids == ids_of(expected.at("ids")));
      CHECK(translation_text(model, greedy_out[i][0].ids) == expected.at("text").as_string());
      float sum = 0;
      for (float p : greedy_out[i][0].positional_scores) sum += p;
      CHECK(std::fabs(sum - expected.at("sum_logprob").as_number()) < 1e-4);
    }

    TranslatorOptions beam_options;
    beam_options.beam = 5;
    beam_options.nbest = 5;
    Translator beam(model, beam_options);
    const auto beam_out = beam.translate_all(sources_of(ref.at("beam5")));
    double worst = 0;
    for (size_t i = 0; i < beam_out.size(); ++i) {
      const json::Value::Array& nbest = ref.at("beam5").as_array()[i].at("nbest").as_array();
      REQUIRE(beam_out[i].size() == nbest.size());
      for (size_t k = 0; k < nbest.size(); ++k) {
        const Hypothesis& h = beam_out[i][k];
        CHECK(h.ids == ids_of(nbest[k].at("ids")));
        CHECK(translation_text(model, h.ids) == nbest[k].at("text").as_string());
        worst = std::max(worst, std::fabs(h.score - nbest[k].at("score").as_number()));
        const json::Value::Array& positional = nbest[k].at("positional_scores").as_array();
        REQUIRE(h.positional_scores.size() == positional.size());
        for (size_t t = 0; t < positional.size(); ++t) {
          worst = std::max(worst, std::fabs(h.positional_scores[t] - positional[t].as_number()));
        }
      }
    }
    MESSAGE(std::string(name) << ": beam-5 n-best scores within " << worst);
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("a translator's decoding steps allocate nothing: a longer target costs no more allocations") {
  const Model& model = packed_reference_model("mt-t2r", DType::F32);
  const std::vector<std::vector<int32_t>> sources = sources_of(reference_outputs("mt-t2r").json.at("beam5"));
  size_t allocations[2];
  for (int i = 0; i < 2; ++i) {
    TranslatorOptions options;
    options.beam = 5;
    options.nbest = 5;
    options.max_len_b = options.min_len = i == 0 ? 4 : 60;  // every hypothesis is exactly this long
    Translator translator(model, options);
    std::vector<std::vector<Hypothesis>> out;
    translator.translate(sources, out);  // the results' vectors are allocated once
    const size_t before = test::heap_allocations();
    translator.translate(sources, out);
    allocations[i] = test::heap_allocations() - before;
    CHECK(out[0][0].ids.size() == size_t(options.max_len_b) + 1);
  }
  CHECK(allocations[0] == allocations[1]);
}

TEST_CASE("translation models at f32: the whole test set, tokenized, translated and scored as the references") {
  const std::string data = reference_dir("mt-data");
  const std::vector<std::string> spanish = lines_of(data + "/test.es"), english = lines_of(data + "/test.en");
  REQUIRE(spanish.size() == english.size());
  for (const char* name : kTranslationModels) {
    CAPTURE(std::string(name));
    const Model& model = packed_reference_model(name, DType::F32);
    const json::Value& ref = reference_outputs(name).json;
    SafetensorsFile file(reference_dir(name) + "/reference.safetensors");
    const std::vector<int32_t> src_ids = tensor_to_i32(file.at("test_src_ids")),
                               src_offsets = tensor_to_i32(file.at("test_src_offsets"));
    std::vector<std::vector<int32_t>> sources;
    size_t tokenized = 0;
    for (size_t i = 0; i < spanish.size(); ++i) {
      sources.push_back(translation_source_ids(model, spanish[i]));
      tokenized += sources.back() == sentence(src_ids, src_offsets, i);
    }
    CHECK(tokenized == spanish.size());

    for (const auto& [beam, key, bleu_key] : {std::tuple{1, "test_greedy", "greedy"}, std::tuple{5, "test_beam5", "beam5"}}) {
      TranslatorOptions options;
      options.beam = beam;
      options.max_sentences = 32;
      Translator translator(model, options);
      const auto out = translator.translate_all(sources);
      const json::Value::Array& expected = ref.at(key).as_array();
      REQUIRE(expected.size() == out.size());
      size_t identical = 0;
      BleuStats stats;
      for (size_t i = 0; i < out.size(); ++i) {
        identical += out[i][0].ids == ids_of(expected[i].at("ids"));
        stats.add(translation_text(model, out[i][0].ids), english[i]);
      }
      const double bleu = bleu_score(stats).score, reference = ref.at("test_bleu").at(bleu_key).as_number();
      MESSAGE(std::string(name) << " beam " << beam << ": " << identical << "/" << out.size()
                                << " hypotheses identical, BLEU " << bleu << " (reference " << reference << ")");
      CHECK(double(identical) >= 0.99 * double(out.size()));
      CHECK(std::fabs(bleu - reference) < 0.2);
    }
  }
}

#endif
