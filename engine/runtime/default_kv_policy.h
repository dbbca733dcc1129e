#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy_options.h"
#include "engine/runtime/backend.h"

namespace kvserve {

// The options of the serving default policy `name` (--default-kv-policy) with pages of
// `page_size` tokens, checked before serving against the model and `backend`: an unknown name or
// options the model cannot take is InvalidArgument, a policy the backend does not execute
// FailedPrecondition naming the policy and the backend.
absl::StatusOr<KvPolicyOptions> ResolveDefaultKvPolicy(std::string_view name, int page_size,
                                                       const Backend& backend);

}  // namespace kvserve
