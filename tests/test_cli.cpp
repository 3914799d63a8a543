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
#include "t2r.h"

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

namespace {

// What t2r-run -i should print, computed with the C API: the prompt's greedy continuation (none
// without a prompt), then for each line (its text and newline, no BOS) the continuation of the same
// sequence.
std::string interactive_transcript(const std::string& prompt, const std::vector<std::string>& lines, int tokens) {
  t2r_model* model = t2r_model_load(kDefaultModel.c_str());
  REQUIRE(model != nullptr);
  t2r_session* session = t2r_session_create(model, nullptr);
  t2r_sampler* sampler = t2r_sampler_create(model, nullptr);  // greedy
  t2r_text_stream* stream = t2r_text_stream_create(model);
  std::string out = prompt;
  auto feed = [&](const std::string& text) {
    int32_t ids[256];
    const int64_t n = t2r_tokenize_with(model, text.data(), text.size(), ids, 256, T2R_TOKENIZE_NO_BOS_EOS);
    REQUIRE((n > 0 && n <= 256));
    const float* logits = t2r_prefill(session, ids, size_t(n));
    for (int i = 0; i < tokens; ++i) {
      const int32_t id = t2r_sample(sampler, logits);
      size_t length;
      const char* piece = t2r_text_stream_push(stream, id, &length);
      out.append(piece, length);
      logits = t2r_step(session, id);
    }
    size_t length;
    const char* rest = t2r_text_stream_finish(stream, &length);
    out.append(rest, length);
    out += "\n";
  };
  if (!prompt.empty()) feed(prompt);
  for (const std::string& line : lines) feed(line + "\n");
  t2r_text_stream_free(stream);
  t2r_sampler_free(sampler);
  t2r_session_free(session);
  t2r_model_free(model);
  return out;
}

// The generated text of a run (its output less the prompt and the final newline).
std::string generated_text(const CommandResult& r, const std::string& prompt) {
  REQUIRE(r.output.compare(0, prompt.size(), prompt) == 0);
  return r.output.substr(prompt.size(), r.output.size() - prompt.size() - 1);
}

}  // namespace

TEST_CASE("t2r-run --stop ends the text before the first stop string, also one split across tokens") {
  const std::string prompt = "In the beginning";
  const std::string full = generated_text(run_command(kRun + " -p '" + prompt + "' -n 40"), prompt);
  REQUIRE(full == " of the\n   :class:`ParamSpec` class, the following methods are:\n\n.. method:: ParamSpec(ParamSpec, Param");
  // "e follow" ends one token (" the") and starts another (" following").
  CommandResult r = run_command(kRun + " -p '" + prompt + "' -n 40 --stop 'e follow'");
  CHECK(r.status == 0);
  CHECK(r.output == prompt + full.substr(0, full.find("e follow")) + "\n");
  // The earliest of several wins; a stop string the text never reaches changes nothing.
  r = run_command(kRun + " -p '" + prompt + "' -n 40 --stop 'methods' --stop 'Spec`'");
  CHECK(r.output == prompt + full.substr(0, full.find("Spec`")) + "\n");
  CHECK(run_command(kRun + " -p '" + prompt + "' -n 40 --stop 'never said'").output == prompt + full + "\n");
  // In a batch, each continuation stops by itself.
  r = run_command(kRun + " -p '" + prompt + "' -n 40 --stop 'class' --parallel 2");
  CHECK(contains(r.output, "(seed 0) ---\n" + prompt + full.substr(0, full.find("class")) + "\n--- continuation 2"));
  r = run_command(kRun + " --stop ''");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--stop needs a non-empty text"));
}

TEST_CASE("t2r-run -f reads the prompt from a file, and refuses a missing one or a second prompt") {
  const std::string path = "/tmp/t2r-cli-prompt-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << "In the beginning God created";
  CommandResult from_file = run_command(kRun + " -f " + path + " -n 12");
  CHECK(from_file.status == 0);
  CHECK(from_file.output == run_command(kRun + " -p 'In the beginning God created' -n 12").output);
  CommandResult r = run_command(kRun + " -f " + path + " -p again");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "-p and -f both give the prompt: choose one"));
  std::remove(path.c_str());
  r = run_command(kRun + " --file " + path);
  CHECK(r.status == 1);
  CHECK(r.output == "t2r-run: cannot open " + path + ": No such file or directory\n");
}

TEST_CASE("t2r-run -i continues one sequence with each line read, until the end of input") {
  const std::vector<std::string> lines = {"God created the heaven", "and the earth."};
  CommandResult r = run_command(kRun + " -p 'In the beginning' -n 10 -i", lines[0] + "\n" + lines[1] + "\n");
  CHECK(r.status == 0);
  CHECK(r.output == interactive_transcript("In the beginning", lines, 10));
  // Without a prompt the first line starts the sequence; no input ends at once.
  r = run_command(kRun + " -n 10 -i", "In the beginning\nGod created the heaven\n");
  CHECK(r.output == interactive_transcript("", {"In the beginning", "God created the heaven"}, 10));
  r = run_command(kRun + " -n 10 -i", "");
  CHECK(r.status == 0);
  CHECK(r.output.empty());
  r = run_command(kRun + " -i --parallel 2");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "-i continues one sequence; it does not combine with --parallel"));
}

TEST_CASE("t2r-run sampling flags, --max-context, --bos and --info on the shipped model") {
  const std::string run_prompt = kRun + " -p 'In the beginning' -n 24";
  const std::string greedy = run_command(run_prompt).output;
  // --top-k 1 leaves only the most likely token: greedy at any temperature.
  CHECK(run_command(run_prompt + " --temp 0.9 --top-k 1 --seed 5").output == greedy);
  CHECK(run_command(run_prompt + " --temp 0.9 --top-k 40 --seed 5").output != greedy);
  // A repetition penalty changes the greedy text (this one repeats "ParamSpec"); 1 is none.
  CHECK(run_command(run_prompt + " --repeat-penalty 1").output == greedy);
  CHECK(run_command(run_prompt + " --repeat-penalty 1.5").output != greedy);
  // A T2R model's state has a fixed size: --max-context, for softmax caches, changes nothing.
  CHECK(run_command(run_prompt + " --max-context 8").output == greedy);
  CommandResult r = run_command(kRun + " --max-context 0");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--max-context needs an integer"));
  r = run_command(kRun + " --bos -p x");
  CHECK(r.status == 1);
  CHECK(r.output == "t2r-run: --bos: the model has no BOS token\n");
  r = run_command(kRun + " --info");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "architecture llama\nattention    t2r (feature size 32)\n"));
  CHECK(contains(r.output, "sizes        vocab 8192, dim 256, layers 6, heads 4 / kv 2, head dim 64, ffn 768\n"));
  CHECK(contains(r.output, "tokenizer    byte_bpe, eos 0, bos -1\n"));
}

TEST_CASE("t2r-run --backend and --device choose where the model runs, or say why not") {
  const std::string run_prompt = kRun + " -p 'In the beginning' -n 24";
  const std::string cpu = run_command(run_prompt).output;
  CHECK(run_command(run_prompt + " --backend cpu").output == cpu);
  CommandResult r = run_command(run_prompt + " --backend metal");
  CHECK(r.status == 1);
  CHECK(r.output == "t2r-run: unknown backend 'metal' (cpu or vulkan)\n");
#ifdef T2R_VULKAN
  // The same greedy text on the Vulkan device (Mesa's lavapipe in CI), to float rounding.
  CHECK(run_command(run_prompt + " --backend vulkan --device 0").output == cpu);
  r = run_command(run_prompt + " --backend vulkan --device nosuch");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "t2r-run: no Vulkan device name contains 'nosuch'; the devices are:\n  0: "));
#endif
}

TEST_CASE("t2r-run fails with a message when its output cannot be written") {
  // The braces keep stderr (2>&1, added by run) apart from the redirected stdout.
  CommandResult r = run_command("{ " + kRun + " -p 'In the beginning' -n 8 > /dev/full; }");
  CHECK(r.status == 1);
  CHECK(r.output == "t2r-run: cannot write the output: No space left on device\n");
  r = run_command("{ " + kRun + " --tokenize hello > /dev/full; }");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "cannot write the output"));
}
