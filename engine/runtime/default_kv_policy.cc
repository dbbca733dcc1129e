#include "engine/runtime/default_kv_policy.h"

#include "engine/base/status_macros.h"

namespace kvserve {

absl::StatusOr<KvPolicyOptions> ResolveDefaultKvPolicy(std::string_view name, int page_size,
                                                       const Backend& backend) {
  absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(name);
  if (!kind.ok()) return absl::InvalidArgumentError(kind.status().message());
  KvPolicyOptions options = DefaultKvPolicyOptions(*kind);
  // Tiered policies select pages of the server's size; requests inherit it.
  if (TieredOptions* tiered = TieredOptionsOf(options)) tiered->page_size = page_size;
  if (absl::Status s = ValidateKvPolicyOptions(options, backend.config()); !s.ok()) {
    return absl::InvalidArgumentError(s.message());
  }
  KVSERVE_RETURN_IF_ERROR(backend.Supports(options));
  return options;
}

}  // namespace kvserve
