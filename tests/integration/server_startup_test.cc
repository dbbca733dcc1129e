// The `kvserve` binary refuses at startup a default KV policy it cannot serve: it exits non-zero
// with one line naming the flag and the problem, instead of failing every request later.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_split.h"
#include "tests/support/server_process.h"

namespace kvserve::testing {
namespace {

TEST(ServerStartupTest, ADefaultPolicyTheModelCannotTakeStopsTheServerWithOneLine) {
  std::vector<std::string> args = ServerProcess::Stories260KArgs();
  // Stories260K holds 512 tokens: freekv cannot select pages of 1024.
  for (const char* a : {"--default-kv-policy", "freekv", "--page-size", "1024"}) args.push_back(a);
  auto started = ServerProcess::Start(args);
  ASSERT_FALSE(started.ok()) << "the server started";
  const std::string message(started.status().message());
  EXPECT_NE(message.find("kvserve exited (1)"), std::string::npos) << message;
  int error_lines = 0;
  for (absl::string_view line : absl::StrSplit(message, '\n')) {
    if (line.find("error") == absl::string_view::npos) continue;
    ++error_lines;
    EXPECT_NE(line.find("--default-kv-policy: "), absl::string_view::npos) << line;
    EXPECT_NE(line.find("page_size"), absl::string_view::npos) << line;
  }
  EXPECT_EQ(error_lines, 1) << message;
}

}  // namespace
}  // namespace kvserve::testing
