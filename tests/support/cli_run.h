#pragma once

#include <string>

namespace kvserve::testing {

// kvserve-cli run as a user runs it.
struct CliRun {
  int exit_code;
  std::string out;  // stdout and stderr together
};
// Runs build/bin/kvserve-cli with `args` (shell syntax).
CliRun RunCli(const std::string& args);

}  // namespace kvserve::testing
