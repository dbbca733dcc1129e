#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace kvserve::bench {

// The policy benchmarks' shared parts (policy_prefill.h, policy_decode.h).

// `policies` as flag `flag` gave them: each a KV policy name (or one of `extra`), none twice.
// InvalidArgument naming the flag and the known names otherwise.
absl::Status CheckPolicyList(std::string_view flag, std::span<const std::string> policies,
                             std::span<const std::string_view> extra = {});

// `n` random plain-text ids (not 0-2, the llama tokenizers' special tokens) below `vocab`.
std::vector<int32_t> RandomPrompt(std::mt19937& rng, int n, int vocab);

}  // namespace kvserve::bench
