#pragma once

#include <string>

namespace kvserve::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `command` with /bin/sh and collects its exit code, stdout and stderr.
CommandResult RunCommand(const std::string& command);

// `text` quoted for /bin/sh.
std::string ShellQuote(const std::string& text);

}  // namespace kvserve::testing
