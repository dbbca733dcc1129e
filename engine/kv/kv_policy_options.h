#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/token_selection.h"
#include "engine/model/model_config.h"

namespace kvserve {

// The KV policies (DESIGN.md § KV policies), in the order of KvPolicyOptions' alternatives.
enum class KvPolicyKind { kFull, kSnapKv, kFastKv, kQuest, kFreeKv, kFastKvFreeKv };

// quest / freekv: GPU tokens per layer and KV head when `budget` is 0 (research/freekv.md §5).
inline constexpr int kDefaultTieredBudget = 2048;
// KV page size in tokens where nothing else sets it (research/freekv.md §7.1: FreeKV's); also the
// tiered policies' selection unit (docs/accuracy.md measures finer ones).
inline constexpr int kDefaultKvPageSize = 32;

// Each policy's options, with their defaults. The parts several policies share are bases, so a
// field has one name everywhere (the name the proto and the --kv-* flags use).

// How prompt tokens are scored: SnapKV's observation window and pooling (research/fastkv.md §6).
struct PromptScoringOptions {
  int window = 8;
  int pool_kernel = 7;
  ScorePooling pool = ScorePooling::kMax;
};

// Token-Selective Propagation (research/fastkv.md §4).
struct TspOptions {
  int tsp_layer = -1;     // -1: n_layers / 2 - 1
  float tsp_rate = 0.2f;  // τ
  int tsp_len = 0;        // constant TSP length; 0: tsp_rate
};

// The device budget of the tiered policies (research/freekv.md): pages of `page_size` tokens.
struct TieredOptions {
  int budget = 0;  // GPU tokens per layer, sink and recent included; 0: kDefaultTieredBudget
  int page_size = kDefaultKvPageSize;
  int sink = 512;
  int recent = 512;
};

struct FullOptions {};

struct SnapKvOptions : PromptScoringOptions {
  int budget = 0;            // constant per-layer budget in tokens; 0: retain_rate
  float retain_rate = 0.1f;  // ρ
};

struct FastKvOptions : SnapKvOptions, TspOptions {};

struct QuestOptions : TieredOptions {};

struct FreeKvOptions : TieredOptions {
  float tau = 0.8f;  // query cosine below which a KV head is corrected
};

// FastKV's prefill (its per-layer budget follows from the device budget) over FreeKV's tiers.
struct FastKvFreeKvOptions : FreeKvOptions, PromptScoringOptions, TspOptions {};

// A request's KV policy and its options.
using KvPolicyOptions = std::variant<FullOptions, SnapKvOptions, FastKvOptions, QuestOptions,
                                     FreeKvOptions, FastKvFreeKvOptions>;

inline KvPolicyKind KindOf(const KvPolicyOptions& options) {
  return static_cast<KvPolicyKind>(options.index());
}
// "full", "snapkv", "fastkv", "quest", "freekv", "fastkv_freekv".
std::string_view KvPolicyName(KvPolicyKind kind);
inline std::string_view KvPolicyName(const KvPolicyOptions& options) {
  return KvPolicyName(KindOf(options));
}
// Every policy name, in KvPolicyKind's order.
std::span<const std::string_view> KvPolicyNames();
// The policy named `name`; InvalidArgument for field "name" otherwise.
absl::StatusOr<KvPolicyKind> ParseKvPolicyKind(std::string_view name);
// `kind`'s options with their defaults.
KvPolicyOptions DefaultKvPolicyOptions(KvPolicyKind kind);

// Whether the policy keeps the full KV in the host tier and a device budget (quest, freekv,
// fastkv_freekv): the sequence's cache then lives in the host pool.
bool IsTiered(KvPolicyKind kind);
bool IsTieredKvPolicy(std::string_view name);  // by name, as KvStats::policy reports it
// The tiered options of `options`, null for a policy that has none.
const TieredOptions* TieredOptionsOf(const KvPolicyOptions& options);
TieredOptions* TieredOptionsOf(KvPolicyOptions& options);

// Options by name, for front ends that set them from flags or message fields: every field above
// has one name, and a policy has only some of them.
using KvOptionValue = std::variant<int, float, ScorePooling>;
// Every option name, in a fixed order (window, pool_kernel, pool, budget, retain_rate, tsp_layer,
// tsp_rate, tsp_len, page_size, sink, recent, tau).
std::span<const std::string_view> KvOptionNames();
// The names of the options `kind` has, in that order.
std::vector<std::string_view> KvOptionNames(KvPolicyKind kind);
// The value of option `name` of `options`, if the policy has it.
std::optional<KvOptionValue> GetKvOption(const KvPolicyOptions& options, std::string_view name);
// Sets option `name`; InvalidArgument for field `name` when the policy has no such option or the
// value's type is not the option's.
absl::Status SetKvOption(KvPolicyOptions& options, std::string_view name,
                         const KvOptionValue& value);

// Checks every option of `options` against the model: ranges, sizes bounded by the context (before
// any policy is sized by them), FastKV's mode cross-checks and the tiered budget's room. An invalid
// option is InvalidArgument carrying its name as the field path (field_violation.h), e.g. path
// "tsp_rate", problem "must be in (0, 1], got 1.5".
absl::Status ValidateKvPolicyOptions(const KvPolicyOptions& options, const ModelConfig& config);

}  // namespace kvserve
