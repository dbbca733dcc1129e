#pragma once

#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/model/model_config.h"
#include "kvserve/v1/inference.pb.h"

namespace kvserve::cli {

// --kv-policy and the --kv-OPTION flags given, before they are typed against a policy: which
// options apply depends on the policy, and `client` sends only those given.
struct KvPolicyFlags {
  std::string policy;  // empty: full (`generate`), the server's default (`client`)
  std::vector<std::pair<std::string, KvOptionValue>> options;  // option name, value; as given
};

// Registers --kv-policy and one --kv-OPTION flag per KV option (--kv-tsp-rate for tsp_rate).
void AddKvPolicyFlags(CLI::App& app, KvPolicyFlags& flags);

// "tsp_rate" -> "--kv-tsp-rate".
std::string KvFlagName(std::string_view option);

// The typed options for `flags` (the policy's defaults, then each flag), checked against the
// model; errors name the flag ("--kv-tsp-rate must be in (0, 1], got 1.5", "--kv-tau is not an
// option of the snapkv policy").
absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const KvPolicyFlags& flags,
                                                  const ModelConfig& config);

// The request's KV policy for `flags`: the policy's oneof member with the flags given; without
// --kv-policy, the deprecated flat form (the server's default policy, with these options). Errors
// name the flag.
absl::StatusOr<v1::KvPolicy> ToProtoKvPolicy(const KvPolicyFlags& flags);

}  // namespace kvserve::cli
