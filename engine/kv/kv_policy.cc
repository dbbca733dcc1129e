#include "engine/kv/kv_policy.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"

namespace kvserve {
namespace {

constexpr std::array<std::string_view, 6> kNames = {"full",  "snapkv", "fastkv",
                                                    "quest", "freekv", "fastkv_freekv"};

// Keeps every token of every layer: dense attention, the baseline.
class FullPolicy : public KvPolicy {
 public:
  std::string_view name() const override { return "full"; }
};

}  // namespace

KvStats KvPolicy::Stats(const SequenceKvCache& kv) const {
  KvStats stats{.policy = std::string(name())};
  for (int l = 0; l < kv.n_layers(); ++l) stats.kept_tokens.push_back(kv.length(l));
  return stats;
}

std::span<const std::string_view> KvPolicyNames() { return kNames; }

absl::Status ValidateKvPolicyOptions(const KvPolicyOptions& options, const ModelConfig& config) {
  if (std::find(kNames.begin(), kNames.end(), options.name) == kNames.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown kv policy '", options.name,
                     "' (expected one of full, snapkv, fastkv, quest, freekv, fastkv_freekv)"));
  }
  if (options.name != "full") {
    return absl::UnimplementedError(
        absl::StrCat("kv policy '", options.name, "' is not available yet"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KvPolicy>> CreateKvPolicy(const KvPolicyOptions& options,
                                                         const ModelConfig& config) {
  if (auto s = ValidateKvPolicyOptions(options, config); !s.ok()) return s;
  return std::unique_ptr<KvPolicy>(new FullPolicy());
}

}  // namespace kvserve
