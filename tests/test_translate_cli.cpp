// t2r-translate as a user runs it: the shipped model, n-best output, BLEU, teacher-forced logits
// from outside, hostile input and bad flags.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.h"
#include "reference.h"

using namespace t2r::test;

namespace {

const std::string kTranslate = T2R_TRANSLATE_EXE;

std::string temp_path(const std::string& name) { return "/tmp/t2r-translate-" + std::to_string(getpid()) + "-" + name; }

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("t2r-translate with no model translates with the shipped Spanish-to-English model") {
  const std::string input = write_text("in.es", "VINO pues el rey con Amán á beber con la reina Esther.\n\nEl rey habló.\n");
  CommandResult r = run_command(kTranslate + " --beam 1 < " + input + " 2>/dev/null");
  REQUIRE(r.status == 0);
  const std::vector<std::string> out = lines(r.output);
  REQUIRE(out.size() == 3);  // one line per input line, the empty one included, in order
  CHECK(out[0] == "Now the king of Amnon with the reign with him.");  // mt-t2r's greedy reference
  CHECK(out[2] == "The king spoke to the king.");
  r = run_command("(" + kTranslate + " --stats < " + input + " > /dev/null)");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "3 sentences"));
  CHECK(contains(r.output, "target tokens/s (beam 5"));
  std::remove(input.c_str());
}

TEST_CASE("the C translation example prints each sentence's n-best through the C API") {
  const CommandResult r = run_command(std::string(T2R_TRANSLATE_EXAMPLE_EXE) + " " + T2R_SOURCE_DIR +
                                      "/models/translate-es-en.t2r 2 \"El rey habló.\" \"Y dijo Dios.\"");
  REQUIRE(r.status == 0);
  const std::vector<std::string> out = lines(r.output);
  REQUIRE(out.size() == 4);
  CHECK(out[0].rfind("0\t", 0) == 0);
  CHECK(out[2].rfind("1\t", 0) == 0);
  const CommandResult wrong = run_command(std::string(T2R_TRANSLATE_EXAMPLE_EXE) + " " + T2R_SOURCE_DIR +
                                          "/models/default.t2r 1 hola");
  CHECK(wrong.status == 1);
  CHECK(contains(wrong.output, "translator: this model has no encoder"));
}

TEST_CASE("t2r-translate --nbest --scores prints i, score and text, best first") {
  const std::string input = write_text("nbest.es", "VINO pues el rey con Amán á beber con la reina Esther.\nEl rey habló.\n");
  CommandResult r = run_command(kTranslate + " --nbest 3 --scores < " + input + " 2>/dev/null");
  REQUIRE(r.status == 0);
  const std::vector<std::string> out = lines(r.output);
  REQUIRE(out.size() == 6);
  double previous = 0;
  for (size_t k = 0; k < out.size(); ++k) {
    const size_t tab = out[k].find('\t'), tab2 = out[k].find('\t', tab + 1);
    REQUIRE(tab2 != std::string::npos);
    CHECK(out[k].substr(0, tab) == std::to_string(k / 3));
    const double score = std::stod(out[k].substr(tab + 1, tab2 - tab - 1));
    if (k % 3 > 0) CHECK(score <= previous);
    previous = score;
  }
  // mt-t2r's beam-5 reference: "Now the king of Ammin with the reign with him." at -1.10576 (f32).
  CHECK(out[0].substr(out[0].rfind('\t') + 1) == "Now the king of Ammin with the reign with him.");
  CHECK(std::fabs(std::stod(out[0].substr(2)) - -1.10576) < 2e-3);  // the shipped model is f16
  std::remove(input.c_str());
}

TEST_CASE("t2r-translate refuses bad flags, language models and invalid UTF-8 by name") {
  CommandResult r = run_command(kTranslate + " --beam 0 < /dev/null");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--beam needs an integer in [1, 64], got '0'"));
  r = run_command(kTranslate + " --beam 2 --nbest 3 < /dev/null");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--nbest cannot exceed --beam"));
  r = run_command(kTranslate + " --src-ids 5,2 < /dev/null");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--src-ids, --prev-ids and --dump-logits go together"));
  r = run_command(kTranslate + " --frobnicate < /dev/null");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "unknown option '--frobnicate'"));
  r = run_command(kTranslate + " " + T2R_SOURCE_DIR + "/models/default.t2r < /dev/null");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "a language model, not a translation model"));
  const std::string bad = write_text("bad.es", "El rey habló.\nab\xff\xfe\n");
  r = run_command(kTranslate + " < " + bad);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "stdin line 2: invalid UTF-8 at byte 2"));
  r = run_command(kTranslate + " --bleu /nonexistent.en < " + bad);
  CHECK(r.status == 1);
  std::remove(bad.c_str());
  const std::string two = write_text("two.es", "El rey habló.\nY dijo Dios.\n"), one = write_text("one.en", "The king spoke.\n");
  r = run_command(kTranslate + " --bleu " + one + " < " + two);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "1 reference lines for 2 source lines"));
  std::remove(two.c_str());
  std::remove(one.c_str());
}

TEST_CASE("t2r-translate takes a 10,000-token source line") {
  std::string line;
  for (int i = 0; i < 10000; ++i) line += "Dios ";
  const std::string input = write_text("long.es", line + "\nEl rey habló.\n");
  CommandResult r = run_command(kTranslate + " --beam 1 --max-len-b 8 < " + input + " 2>/dev/null");
  REQUIRE(r.status == 0);
  const std::vector<std::string> out = lines(r.output);
  REQUIRE(out.size() == 2);
  CHECK(!out[0].empty());
  std::remove(input.c_str());
}

#ifdef T2R_REFERENCE_MODELS
TEST_CASE("t2r-translate --bleu gives the reference's test BLEU, and --dump-logits its teacher-forced logits") {
  const std::string data = reference_dir("mt-data");
  const std::string model = temp_path("mt-t2r.t2r");
  REQUIRE(run_command(std::string(T2R_PACK_EXE) + " " + reference_dir("mt-t2r") + " -o " + model + " --dtype f32").status == 0);
  CommandResult r = run_command("(" + kTranslate + " " + model + " --beam 1 --bleu " + data + "/test.en < " + data +
                                "/test.es > " + temp_path("test.out") + ")");  // stderr only
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "BLEU = 11.81 49.8/19.5/7.9/3.4 (BP = 0.932 ratio = 0.935 hyp_len = 9021 ref_len = 9652)"));

  // Sentence 0 of the reference file, checked from outside.
  const ReferenceOutputs& ref = reference_outputs("mt-t2r");
  const t2r::json::Value& greedy = ref.json.at("greedy").as_array()[0];
  const std::vector<int32_t> src = ids_of(greedy.at("src_ids")), tgt = ids_of(greedy.at("ids"));
  std::string src_list, prev_list = "2";
  for (int32_t id : src) src_list += (src_list.empty() ? "" : ",") + std::to_string(id);
  for (size_t t = 0; t + 1 < tgt.size(); ++t) prev_list += "," + std::to_string(tgt[t]);
  const std::string out = temp_path("logits.f32");
  r = run_command(kTranslate + " " + model + " --src-ids " + src_list + " --prev-ids " + prev_list + " --dump-logits " + out);
  REQUIRE(r.status == 0);
  std::ifstream file(out, std::ios::binary);
  std::vector<float> logits(tgt.size() * 4008);
  file.read(reinterpret_cast<char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
  REQUIRE(file.gcount() == std::streamsize(logits.size() * sizeof(float)));
  // Greedy ids are the argmax of each teacher-forced row.
  for (size_t t = 0; t < tgt.size(); ++t) CHECK(argmax(logits.data() + t * 4008, 4008) == tgt[t]);
  std::remove(out.c_str());
  std::remove(model.c_str());
  std::remove(temp_path("test.out").c_str());
}
#endif
