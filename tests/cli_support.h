// Running the command-line tools as a user does, for the CLI tests: exit status and output.
#pragma once

#include <string>

namespace t2r::test {

struct CommandResult {
  int status;          // the exit status; -1 when the command did not exit normally
  std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command);
CommandResult run_command(const std::string& command, const std::string& input);  // stdin from `input`
bool file_exists(const std::string& path);
bool contains(const std::string& haystack, const std::string& needle);

}  // namespace t2r::test
