// `kvserve-accuracy-eval --only-cases`: re-running the cases a policy lost runs those and no
// other, and a case the run would not generate is refused with the reason.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/command_runner.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

std::string Eval() {
  return std::string(KVSERVE_BIN_DIR) + "/kvserve-accuracy-eval --model " +
         ShellQuote(SmolLm2GgufPath()) + " --threads 1 ";
}

TEST(AccuracyEvalCliTest, OnlyCasesRunsJustTheNamedCases) {
  const std::string log = MakeTempDir() + "/cases.jsonl";
  const CommandResult r =
      RunCommand(Eval() +
                 "--tasks ruler --ruler-tasks niah_single --ruler-lengths 256 --cases 4 "
                 "--only-cases 3,1 --configs full --log " +
                 ShellQuote(log));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(log);
  std::vector<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.value("type", "") == "ruler") keys.push_back(record.at("key_id"));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"ruler/niah_single/256/1", "ruler/niah_single/256/3"}));
}

TEST(AccuracyEvalCliTest, ACaseNotBelowCasesIsRefused) {
  const CommandResult r = RunCommand(Eval() + "--cases 3 --only-cases 1,3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--only-cases: case 3 is not below --cases 3"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvserve::testing
