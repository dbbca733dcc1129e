#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/model/model_config.h"
#include "kvserve/v1/inference.pb.h"

namespace kvserve::server {

// The server's KV defaults: the default policy's options, and the page size every tiered policy
// must use (the host tier's pages are the selection unit).
struct KvDefaults {
  const KvPolicyOptions& default_policy;
  int page_size = kDefaultKvPageSize;
};

// `kind`'s options as this server fills absent fields: the default policy's own options when it
// is that policy, else the policy's defaults with the server's page size.
KvPolicyOptions ServerKvOptions(KvPolicyKind kind, const KvDefaults& defaults);

// The engine's KV options for `policy`: the `options` oneof member that is set, or the flat form
// (`name` and the deprecated fields); absent fields take ServerKvOptions, an empty KvPolicy the
// default policy. A field that is not an option of the policy, an unknown name or pooling, or the
// two forms mixed is InvalidArgument carrying the proto field's path (field_violation.h). The
// values are not range-checked here: ValidateEngineRequest does that.
absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const v1::KvPolicy& policy,
                                                  const KvDefaults& defaults);

// The proto path of the engine's KV option path ("kv_policy.window") for a request whose KV
// policy is `policy`: "kv_policy.fastkv.window" when it set the oneof, unchanged for the flat form.
std::string ApiKvFieldPath(absl::string_view engine_path, const v1::KvPolicy& policy);

// `options` as the API spells them: `name` and the oneof member, every option set (tsp_layer -1
// resolved against `config`).
v1::KvPolicy ToProto(const KvPolicyOptions& options, const ModelConfig& config);

}  // namespace kvserve::server
