#include "cli_support.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <doctest/doctest.h>

namespace t2r::test {

CommandResult run_command(const std::string& command) {
  CommandResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CommandResult run_command(const std::string& command, const std::string& input) {
  const std::string path = "/tmp/t2r-cli-input-" + std::to_string(getpid());
  std::ofstream(path, std::ios::binary) << input;
  CommandResult r = run_command(command + " < " + path);
  std::remove(path.c_str());
  return r;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace t2r::test
