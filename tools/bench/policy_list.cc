#include "tools/bench/policy_list.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/kv/kv_policy_options.h"

namespace kvserve::bench {

absl::Status CheckPolicyList(std::string_view flag, std::span<const std::string> policies,
                             std::span<const std::string_view> extra) {
  std::vector<std::string_view> known(KvPolicyNames().begin(), KvPolicyNames().end());
  known.insert(known.end(), extra.begin(), extra.end());
  std::set<std::string_view> seen;
  for (const std::string& p : policies) {
    if (std::find(known.begin(), known.end(), p) == known.end()) {
      std::string names;
      for (std::string_view name : known) (names += names.empty() ? "" : ", ") += name;
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(flag), ": unknown policy '", p, "'; known: ", names));
    }
    if (!seen.insert(p).second) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(flag), ": '", p, "' named twice"));
    }
  }
  return absl::OkStatus();
}

std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n, int vocab) {
  std::uniform_int_distribution<int32_t> dist(std::min(3, vocab - 1), vocab - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = dist(rng);
  return ids;
}

}  // namespace kvserve::bench
