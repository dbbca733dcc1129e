#include "tests/support/cli_run.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace kvserve::testing {

CliRun RunCli(const std::string& args) {
  const std::string cmd = std::string(KVSERVE_BIN_DIR) + "/kvserve-cli " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  CliRun run{-1, ""};
  if (pipe == nullptr) return run;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) run.out.append(buf.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace kvserve::testing
