// t2r-bench's translation sweep as a user runs it, at the reference size with tiny lengths: the
// columns it writes, and memory that is flat in both lengths for T2R while softmax's grows.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.h"

using namespace t2r::test;

namespace {

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) out.push_back(field);
  return out;
}

}  // namespace

TEST_CASE("t2r-bench's translation sweep writes its columns, and T2R's states do not grow with either length") {
  const std::string out = "/tmp/t2r-translation-bench-test-" + std::to_string(getpid());
  const CommandResult r = run_command(std::string(T2R_BENCH_EXE) +
                                      " --model mt-reference --dtype f32 --threads 1 --beams 1,2 --targets 4,8"
                                      " --sources 4,8 --source 4 --tokens 2 --repeat 1 --out " + out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "mt-reference t2r f32"));
  CHECK(contains(r.output, "mt-reference softmax f32"));
  CHECK(contains(r.output, "slowdown"));

  std::ifstream csv(out + "/results.csv");
  std::string line;
  REQUIRE(std::getline(csv, line));
  const std::vector<std::string> header = fields(line);
  CHECK(line ==
        "sweep,model,attention,threads,beam,source,target,tok_s,tail_tok_s,encode_tok_s,context_bytes,state_bytes,"
        "source_bytes,decoder_bytes");
  // (sweep, attention, beam, length) -> the row's columns by name.
  std::map<std::string, std::map<std::string, std::string>> rows;
  while (std::getline(csv, line)) {
    const std::vector<std::string> f = fields(line);
    REQUIRE(f.size() == header.size());
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < f.size(); ++i) row[header[i]] = f[i];
    CHECK(std::stod(row["tok_s"]) > 0);
    CHECK(std::stod(row["encode_tok_s"]) > 0);
    const std::string& length = row["sweep"] == "target" ? row["target"] : row["source"];
    rows[row["sweep"] + " " + row["attention"] + " " + row["beam"] + " " + length] = row;
  }
  CHECK(rows.size() == 2 * 2 * 2 * 2);  // sweeps x attention kinds x beams x lengths
  const auto bytes = [&](const std::string& key, const char* column) { return std::stoull(rows.at(key).at(column)); };
  for (const char* beam : {"1", "2"}) {
    CAPTURE(beam);
    const std::string b = std::string(" ") + beam + " ";
    CHECK(bytes("target t2r" + b + "8", "state_bytes") == bytes("target t2r" + b + "4", "state_bytes"));
    CHECK(bytes("target t2r" + b + "8", "decoder_bytes") == bytes("target t2r" + b + "4", "decoder_bytes"));
    CHECK(bytes("target softmax" + b + "8", "state_bytes") == 2 * bytes("target softmax" + b + "4", "state_bytes"));
    CHECK(bytes("source t2r" + b + "8", "source_bytes") == bytes("source t2r" + b + "4", "source_bytes"));
    CHECK(bytes("source softmax" + b + "8", "source_bytes") > bytes("source softmax" + b + "4", "source_bytes"));
  }
  for (const char* file : {"results.csv", "results.json", "decode_vs_target_t1.svg", "memory_vs_target.svg",
                           "decode_vs_source_t1.svg", "memory_vs_source.svg"}) {
    CHECK(file_exists(out + "/" + file));
    std::remove((out + "/" + file).c_str());
  }
  rmdir(out.c_str());
}
