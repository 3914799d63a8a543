// t2r-search and t2r-run --length-config as a user runs them, on llama-t2r-lengthdrop.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "checkpoint_import.h"
#include "length_config.h"
#include "safetensors.h"

using namespace t2r;

namespace {

std::string run(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return output;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::string kRun = T2R_RUN_EXE;
const std::string kSearch = T2R_SEARCH_EXE;

}  // namespace

TEST_CASE("t2r-search finds and stores length configurations that t2r-run selects by name") {
  const std::string dir = "/tmp/t2r-length-tools-" + std::to_string(getpid());
  REQUIRE(system(("mkdir -p " + dir).c_str()) == 0);
  const std::string model = dir + "/model.t2r", data = dir + "/data.i32", stored = dir + "/stored.t2r";
  write_model(import_checkpoint(test::reference_dir("llama-t2r-lengthdrop")), DType::F16, model);
  const std::vector<int32_t> ids =
      tensor_to_i32(SafetensorsFile(test::reference_dir("llama-t2r-lengthdrop") + "/reference.safetensors").at("input_ids"));
  std::ofstream(data, std::ios::binary).write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 4));

  // Small and quick; the same seed gives the same search.
  const std::string search = kSearch + " " + model + " --data " + data +
                             " --prompts 2 --prompt-len 256 --continuation 8 --population 6 --generations 2 --seed 3";
  int status = 0;
  std::string output = run(search + " --out " + dir + "/a --store " + stored, &status);
  CHECK(status == 0);
  CAPTURE(output);
  CHECK(contains(output, "Pareto frontier of"));
  CHECK(contains(output, "chosen:"));
  const std::string json = read_file(dir + "/a.json");
  CHECK(contains(json, "\"frontier\": ["));
  CHECK(contains(json, "\"50%\": {\"flops_fraction\""));
  CHECK(contains(read_file(dir + "/a.svg"), "<svg"));
  run(search + " --out " + dir + "/b", &status);
  CHECK(read_file(dir + "/b.json") == json);

  // The stored names are length configurations of the model, within their budgets.
  const std::unique_ptr<Model> with_names = Model::load(stored);
  CHECK(named_length_configs(with_names->file().metadata()) == std::vector<std::string>{"75%", "50%", "30%"});
  const LengthConfig half = length_config_for(*with_names, "50%");
  CHECK(prefill_flops_fraction(with_names->hparams(), half, 256) <= 0.5);

  output = run(kRun + " " + stored + " -p 'In the beginning God created the heaven and the earth.' -n 4 -t 1 --stats "
                      "--length-config 50%",
               &status);
  CHECK(status == 0);
  CHECK(contains(output, "[length config 50%: "));
  CHECK(contains(output, "time to first token"));

  output = run(kRun + " " + stored + " -p x --length-config 25%", &status);
  CHECK(status == 1);
  CHECK(contains(output, "length configuration '25%' is neither a list of fractions nor a name stored in the model "
                         "(it stores 75%, 50%, 30%)"));
  output = run(kRun + " " + stored + " -p x --length-config 1,0.5,0.6,0.4,0.3,0.2", &status);
  CHECK(status == 1);
  CHECK(contains(output, "fractions must not increase with depth"));
  output = run(kRun + " " + stored + " --ids 1,2 --dump-logits " + dir + "/l.f32 --length-config 1,1,1,1,1,1", &status);
  CHECK(status == 2);
  CHECK(contains(output, "--length-config applies to the prompt of a generation"));
  output = run(kSearch + " " + model + " --data " + data + " --eval 1,1,1,1,1,1 --store " + stored, &status);
  CHECK(status == 2);
  CHECK(contains(output, "--store goes with a search, not with --eval"));
  output = run(kSearch + " " + model + " --data " + data + " --prompt-len 4096", &status);
  CHECK(status == 1);
  CHECK(contains(output, "has 2112 tokens; one prompt and its continuation need 4160"));
  REQUIRE(system(("rm -rf " + dir).c_str()) == 0);
}

#endif
