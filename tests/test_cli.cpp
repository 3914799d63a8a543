// t2r-pack and t2r-run as a user runs them: exit codes, messages, outputs.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.h"
#include "reference.h"

namespace {

using namespace t2r::test;

const std::string kPack = T2R_PACK_EXE;
const std::string kRun = T2R_RUN_EXE;
const std::string kDefaultModel = std::string(T2R_SOURCE_DIR) + "/models/default.t2r";

}  // namespace

TEST_CASE("t2r-pack refuses bad arguments and inputs and leaves no file behind") {
  CommandResult r = run_command(kPack);
  CHECK(r.status == 2);
  CHECK(contains(r.output, "no checkpoint directory given"));
  r = run_command(kPack + " /nonexistent -o /tmp/x.t2r --dtype f8");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "unknown dtype 'f8'"));
  const std::string out = "/tmp/t2r-cli-test-" + std::to_string(getpid()) + ".t2r";
  r = run_command(kPack + " /nonexistent -o " + out);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "not a checkpoint directory"));
  CHECK(!file_exists(out));
  CHECK(!file_exists(out + ".partial"));
}

TEST_CASE("t2r-run refuses bad flags and bad files with a clear message") {
  CommandResult r = run_command(kRun + " --tokens many");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--tokens needs an integer"));
  r = run_command(kRun + " --top-p 2");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--top-p needs a number"));
  r = run_command(kRun + " --frobnicate");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "unknown option '--frobnicate'"));
  r = run_command(kRun + " /nonexistent.t2r");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "/nonexistent.t2r"));
  const std::string junk = "/tmp/t2r-cli-junk-" + std::to_string(getpid()) + ".t2r";
  std::ofstream(junk) << "this is not a model file at all, but long enough to have a header........";
  r = run_command(kRun + " " + junk);
  CHECK(r.status == 1);
  CHECK(contains(r.output, "not a t2r model file (bad magic)"));
  std::remove(junk.c_str());
}

TEST_CASE("t2r-run --memory-budget refuses a session that needs more and bad sizes") {
  // The shipped model's session (one thread) is 1.09 MB: its state, activations and logits.
  CommandResult r = run_command(kRun + " -p Hi -n 2 -t 1 --memory-budget 1M");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "t2r-run: the session needs "));
  CHECK(contains(r.output, " bytes, over the memory budget of 1048576 bytes"));
  r = run_command(kRun + " -p Hi -n 2 -t 1 --memory-budget 2M");
  CHECK(r.status == 0);
  r = run_command(kRun + " -p Hi -n 2 -t 1 --memory-budget 1073741824");
  CHECK(r.status == 0);
  for (const std::string bad : {"0", "12X", "-5", "1.5G", "M", "4294967297G"}) {
    CAPTURE(bad);
    r = run_command(kRun + " --memory-budget " + bad);
    CHECK(r.status == 2);
    CHECK(contains(r.output, "--memory-budget needs a size in bytes, optionally with a K, M or G suffix (e.g. 512M), "
                             "from 1 to 2^62; got '" + bad + "'"));
  }
}

TEST_CASE("t2r-longrun keeps 20000 generated tokens finite with flat memory") {
  CommandResult r = run_command(std::string(T2R_LONGRUN_EXE) + " " + kDefaultModel + " --tokens 20000 --threads 1 --seed 3");
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "all 20000 logit vectors finite"));
  // Rows: tokens, tok/s, peak RSS, RSS, anonymous RSS, max |S|, max z, then the float32 drifts.
  auto row = [&](const std::string& tokens) {
    std::vector<double> values;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string first;
      fields >> first;
      if (first != tokens) continue;
      for (double v; fields >> v;) values.push_back(v);
    }
    REQUIRE(values.size() == 9);
    return values;
  };
  const std::vector<double> early = row("1000"), late = row("20000");
  // Nothing is allocated per token: the anonymous memory (heap, session, stacks) is the same to
  // the kilobyte. The peak and the total may still gain a few file-backed pages touched for the
  // first time (code paths first taken), and the kernel's peak counter lags by tens of pages.
  CHECK(late[3] == early[3]);
  CHECK(late[1] - early[1] <= 0.25);
  CHECK(late[2] - early[2] <= 0.25);
  // The state grows with the sequence (T2R has no decay) and stays finite; the float32 state
  // stays within 1e-5 of a double-precision accumulation.
  CHECK(late[4] > early[4]);
  CHECK(late[5] > early[5]);
  for (size_t i = 6; i < 9; ++i) CHECK(late[i] < 1e-5);
}

TEST_CASE("the shipped default model generates text with no model argument") {
  REQUIRE(file_exists(kDefaultModel));
  CommandResult r = run_command(kRun + " -p 'The Python interpreter' -n 16 --stats");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "The Python interpreter"));
  CHECK(contains(r.output, "tok/s"));
  CHECK(contains(r.output, "peak RSS"));
  // Same seed, same text; the seed matters.
  CommandResult a = run_command(kRun + " -p 'In the beginning' -n 24 --temp 0.9 --top-p 0.95 --seed 7");
  CommandResult b = run_command(kRun + " -p 'In the beginning' -n 24 --temp 0.9 --top-p 0.95 --seed 7");
  CommandResult c = run_command(kRun + " -p 'In the beginning' -n 24 --temp 0.9 --top-p 0.95 --seed 8");
  CHECK(a.status == 0);
  CHECK(a.output == b.output);
  CHECK(a.output != c.output);
}

TEST_CASE("the C example generates and streams text and saves state through the C API") {
  CommandResult r = run_command(std::string(T2R_EXAMPLE_EXE) + " " + kDefaultModel + " 'In the beginning' 8");
  CHECK(r.status == 0);
  CHECK(contains(r.output, " bytes, fixed for any length]"));
  CHECK(contains(r.output, "In the beginning"));
  CHECK(contains(r.output, "[state after 11 tokens: 232488 bytes]"));
}

TEST_CASE("t2r-run --parallel N prints N continuations, continuation i as one run with seed S + i") {
  const std::string sampling = " -p 'In the beginning' -n 20 --temp 0.9 --top-p 0.95";
  CommandResult one = run_command(kRun + sampling + " --seed 3");
  CHECK(one.status == 0);
  CHECK(run_command(kRun + sampling + " --seed 3 --parallel 1").output == one.output);  // exactly today's output
  CommandResult four = run_command(kRun + sampling + " --seed 3 --parallel 4 -t 1");
  CHECK(four.status == 0);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    const std::string header = "--- continuation " + std::to_string(i + 1) + " of 4 (seed " + std::to_string(3 + i) + ") ---\n";
    const size_t at = four.output.find(header);
    REQUIRE(at != std::string::npos);
    const size_t start = at + header.size();
    const std::string text = four.output.substr(start, four.output.find("\n--- continuation", start) - start);
    const std::string alone = run_command(kRun + sampling + " --seed " + std::to_string(3 + i)).output;
    CHECK(text + (i == 3 ? "" : "\n") == alone);
  }
  CommandResult stats = run_command(kRun + " -p 'In the beginning' -n 4 --parallel 2 --stats");
  CHECK(contains(stats.output, "read once for 2 sequences"));
  CommandResult bad = run_command(kRun + " --parallel 0");
  CHECK(bad.status == 2);
  CHECK(contains(bad.output, "--parallel"));
  CommandResult mixed = run_command(kRun + " --parallel 2 --ids 1,2 --dump-logits /tmp/never.f32");
  CHECK(mixed.status == 2);
  CHECK(contains(mixed.output, "--parallel generates text"));
}

TEST_CASE("the C parallel example forks one prompt into continuations decoded in one batch") {
  CommandResult r = run_command(std::string(T2R_PARALLEL_EXAMPLE_EXE) + " " + kDefaultModel + " 'In the beginning' 3 8");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "[context of 3 sequences: "));
  for (const char* line : {"[0] In the beginning", "[1] In the beginning", "[2] In the beginning"}) {
    CHECK(contains(r.output, line));
  }
}

TEST_CASE("t2r-bench runs a synthetic model end to end and writes its results") {
  const std::string out = "/tmp/t2r-bench-test-" + std::to_string(getpid());
  CommandResult r = run_command(std::string(T2R_BENCH_EXE) +
                 " --model shipped --dtype f32 --threads 1 --tokens 2 --prompt 8 --contexts 16,32 --out " + out);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "shipped t2r f32"));
  CHECK(contains(r.output, "shipped softmax f32"));
  CHECK(contains(r.output, "GB/s"));
  std::ifstream csv(out + "/results.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 1 + 2 + 4);  // header, two speed rows, two models at two contexts
  for (const char* file : {"results.csv", "results.json", "decode_vs_context.svg", "memory_vs_context.svg"}) {
    CHECK(file_exists(out + "/" + file));
    std::remove((out + "/" + file).c_str());
  }
  rmdir(out.c_str());
  r = run_command(std::string(T2R_BENCH_EXE) + " --dtype f7");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "unknown dtype 'f7'"));
}

#ifdef T2R_REFERENCE_MODELS

using namespace t2r::test;

TEST_CASE("the default model is llama-t2r and reproduces its greedy reference through t2r-run") {
  const auto& greedy = reference_outputs("llama-t2r").json.at("greedy");
  for (const auto& item : greedy.as_object()) {
    const std::string& prompt = item.first;  // CAPTURE cannot take a structured binding
    const t2r::json::Value& expected = item.second;
    CAPTURE(prompt);
    CommandResult r = run_command(kRun + " -p '" + prompt + "' -n 40");
    CHECK(r.status == 0);
    CHECK(r.output == prompt + expected.at("text").as_string() + "\n");
    std::string ids;
    for (const auto& id : expected.at("prompt_ids").as_array()) ids += (ids.empty() ? "" : ",") + std::to_string(id.as_int());
    r = run_command(kRun + " --tokenize '" + prompt + "'");
    CHECK(r.output == ids + "\n");
  }
}

TEST_CASE("t2r-pack writes a model that t2r-run checks against the references from outside") {
  const std::string model = "/tmp/t2r-cli-fairseq-t2r-" + std::to_string(getpid()) + ".t2r";
  CommandResult r = run_command(kPack + " " + reference_dir("fairseq-t2r") + " -o " + model + " --dtype f32");
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "fairseq transformer_lm, t2r attention"));
  CHECK(contains(r.output, "wrote"));

  const ReferenceOutputs& ref = reference_outputs("fairseq-t2r");
  std::string ids;
  for (size_t i = 0; i < 8; ++i) ids += (i ? "," : "") + std::to_string(ref.input_ids[i]);
  const std::string logits_path = model + ".logits";
  r = run_command(kRun + " " + model + " --ids " + ids + " --dump-logits " + logits_path);
  REQUIRE(r.status == 0);
  std::ifstream in(logits_path, std::ios::binary);
  std::vector<float> logits(8 * (ref.logits.size() / ref.input_ids.size()));
  in.read(reinterpret_cast<char*>(logits.data()), std::streamsize(logits.size() * 4));
  CHECK(in.gcount() == std::streamsize(logits.size() * 4));
  double max_diff = 0;
  for (size_t i = 0; i < logits.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(logits[i] - ref.logits[i])));
  CHECK(max_diff <= 1e-3);

  const std::string ids_path = model + ".ids";
  std::ofstream(ids_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(ref.valid_ids.data()), std::streamsize(1024 * 4));
  r = run_command(kRun + " " + model + " --ppl-ids " + ids_path);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "perplexity"));
  CHECK(contains(r.output, "over 1022 predicted tokens (2 windows of up to 512)"));
  for (const std::string& path : {model, logits_path, ids_path}) std::remove(path.c_str());
}

#endif

TEST_CASE("an ids-only model (packed without tokenizer files) reads ids and refuses text prompts") {
  const std::string dir = "/tmp/t2r-cli-ids-only-" + std::to_string(getpid());
  const std::string model = dir + ".t2r", logits = dir + ".f32";
  REQUIRE(run_command("rm -rf " + dir + " && cp -r " + std::string(T2R_SOURCE_DIR) + "/tests/fixtures/qwen2-qkv-bias " + dir +
              " && rm " + dir + "/tokenizer.json").status == 0);
  CommandResult r = run_command(kPack + " " + dir + " -o " + model);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "warning  " + dir + "/tokenizer.json is missing: the model is ids-only"));
  r = run_command(kRun + " " + model + " --ids 84,104,101 --dump-logits " + logits);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "wrote 3 x 257 logits"));
  const std::string refusal = model + ": this model has no tokenizer (it was packed without tokenizer files); it "
                              "reads and writes token ids only (t2r-run --ids, --dump-logits, --ppl-ids)";
  for (const char* args : {" -p hello -n 2", " -n 2", " --tokenize hello"}) {
    CAPTURE(args);
    r = run_command(kRun + " " + model + args);
    CHECK(r.status == 1);
    CHECK(contains(r.output, refusal));
  }
  run_command("rm -rf " + dir + " " + model + " " + logits);
}
