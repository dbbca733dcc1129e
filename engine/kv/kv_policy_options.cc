#include "engine/kv/kv_policy_options.h"

#include <algorithm>
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"
#include "kernels/ceil_div.h"

namespace kvserve {
namespace {

constexpr std::array<std::string_view, 6> kNames = {"full",  "snapkv", "fastkv",
                                                    "quest", "freekv", "fastkv_freekv"};

constexpr std::array<std::string_view, 12> kOptionNames = {
    "window",   "pool_kernel", "pool",      "budget", "retain_rate", "tsp_layer",
    "tsp_rate", "tsp_len",     "page_size", "sink",   "recent",      "tau"};

// Calls fn(name, field) for each option `o` (one of the option structs) has, in kOptionNames'
// order: the one list of which policy has which option.
template <typename Options, typename Fn>
void ForEachOption(Options& o, Fn&& fn) {
  if constexpr (requires { o.window; }) fn("window", o.window);
  if constexpr (requires { o.pool_kernel; }) fn("pool_kernel", o.pool_kernel);
  if constexpr (requires { o.pool; }) fn("pool", o.pool);
  if constexpr (requires { o.budget; }) fn("budget", o.budget);
  if constexpr (requires { o.retain_rate; }) fn("retain_rate", o.retain_rate);
  if constexpr (requires { o.tsp_layer; }) fn("tsp_layer", o.tsp_layer);
  if constexpr (requires { o.tsp_rate; }) fn("tsp_rate", o.tsp_rate);
  if constexpr (requires { o.tsp_len; }) fn("tsp_len", o.tsp_len);
  if constexpr (requires { o.page_size; }) fn("page_size", o.page_size);
  if constexpr (requires { o.sink; }) fn("sink", o.sink);
  if constexpr (requires { o.recent; }) fn("recent", o.recent);
  if constexpr (requires { o.tau; }) fn("tau", o.tau);
}

// `got` as its type prints it: an int in full, a float as StrCat writes floats.
template <typename Value>
absl::Status Bad(absl::string_view option, absl::string_view requirement, Value got) {
  return InvalidField(option, absl::StrCat("must be ", requirement, ", got ", got));
}

// A rate in (0, 1]; NaN fails too.
bool IsRate(float r) { return r > 0.0f && r <= 1.0f; }

// Sizes a request gives are bounded by the context before anything is sized by them: a policy's
// buffers scale with its budget, window and pages.
absl::Status WithinContext(absl::string_view option, int value, const ModelConfig& config) {
  if (value <= config.context_length) return absl::OkStatus();
  return Bad(option, absl::StrCat("<= the model's context (", config.context_length, ")"), value);
}

absl::Status Validate(const PromptScoringOptions& o, const ModelConfig& config) {
  if (o.window < 1) return Bad("window", ">= 1", o.window);
  KVSERVE_RETURN_IF_ERROR(WithinContext("window", o.window, config));
  if (o.pool_kernel < 1 || o.pool_kernel % 2 == 0) {
    return Bad("pool_kernel", "odd and >= 1", o.pool_kernel);
  }
  if (o.pool != ScorePooling::kMax && o.pool != ScorePooling::kAvg) {
    return Bad("pool", "max or avg", static_cast<int>(o.pool));
  }
  return absl::OkStatus();
}

absl::Status Validate(const SnapKvOptions& o, const ModelConfig& config) {
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const PromptScoringOptions&>(o), config));
  if (o.budget < 0) return Bad("budget", ">= 0 (0: retain_rate)", o.budget);
  KVSERVE_RETURN_IF_ERROR(WithinContext("budget", o.budget, config));
  if (!IsRate(o.retain_rate)) return Bad("retain_rate", "in (0, 1]", o.retain_rate);
  return absl::OkStatus();
}

absl::Status Validate(const TspOptions& o, const ModelConfig& config) {
  if (o.tsp_layer != -1 && (o.tsp_layer < 0 || o.tsp_layer >= config.n_layers)) {
    return Bad("tsp_layer",
               absl::StrCat("in [0, ", config.n_layers - 1, "] (or -1: n_layers / 2 - 1)"),
               o.tsp_layer);
  }
  if (!IsRate(o.tsp_rate)) return Bad("tsp_rate", "in (0, 1]", o.tsp_rate);
  if (o.tsp_len < 0) return Bad("tsp_len", ">= 0 (0: tsp_rate)", o.tsp_len);
  return WithinContext("tsp_len", o.tsp_len, config);
}

// FastKV's two modes (research/fastkv.md §10.3): the reference silently stops compressing after
// TSP when ρ > τ, and keeps every propagated row when budget > tsp_len.
absl::Status Validate(const FastKvOptions& o, const ModelConfig& config) {
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const SnapKvOptions&>(o), config));
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const TspOptions&>(o), config));
  if (o.budget == 0 && o.tsp_len == 0 && o.retain_rate > o.tsp_rate) {
    return InvalidField(
        "retain_rate",
        absl::StrCat("must be <= tsp_rate (", o.tsp_rate,
                     "): post-TSP layers would keep every propagated token, got ", o.retain_rate));
  }
  if (o.budget > 0 && o.tsp_len > 0 && o.budget > o.tsp_len) {
    return InvalidField(
        "budget",
        absl::StrCat("must be <= tsp_len (", o.tsp_len,
                     "): post-TSP layers would keep every propagated token, got ", o.budget));
  }
  return absl::OkStatus();
}

// The device budget (research/freekv.md §5) must hold the sink and recent pages and at least one
// retrieved page; `budget` is the total GPU tokens, sink and recent included.
absl::Status Validate(const TieredOptions& o, const ModelConfig& config) {
  if (o.budget < 0) return Bad("budget", ">= 0 (0: 2048)", o.budget);
  KVSERVE_RETURN_IF_ERROR(WithinContext("budget", o.budget, config));
  if (o.page_size < 1) return Bad("page_size", ">= 1", o.page_size);
  KVSERVE_RETURN_IF_ERROR(WithinContext("page_size", o.page_size, config));
  if (o.sink < 0) return Bad("sink", ">= 0", o.sink);
  KVSERVE_RETURN_IF_ERROR(WithinContext("sink", o.sink, config));
  if (o.recent < 0) return Bad("recent", ">= 0", o.recent);
  KVSERVE_RETURN_IF_ERROR(WithinContext("recent", o.recent, config));
  const int budget = o.budget > 0 ? o.budget : kDefaultTieredBudget;
  const int slots = budget / o.page_size;
  const int fixed = CeilDiv(o.sink, o.page_size) + std::max(1, CeilDiv(o.recent, o.page_size));
  if (slots <= fixed) {
    return InvalidField(
        "budget", absl::StrCat("must exceed sink + recent by at least one page of ", o.page_size,
                               " tokens (", fixed * o.page_size, " tokens fixed), got ", budget));
  }
  return absl::OkStatus();
}

absl::Status Validate(const FreeKvOptions& o, const ModelConfig& config) {
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const TieredOptions&>(o), config));
  if (!(o.tau >= -1.0f && o.tau <= 1.0f)) return Bad("tau", "in [-1, 1]", o.tau);
  return absl::OkStatus();
}

absl::Status Validate(const FastKvFreeKvOptions& o, const ModelConfig& config) {
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const PromptScoringOptions&>(o), config));
  KVSERVE_RETURN_IF_ERROR(Validate(static_cast<const TspOptions&>(o), config));
  return Validate(static_cast<const FreeKvOptions&>(o), config);
}

absl::Status Validate(const FullOptions&, const ModelConfig&) { return absl::OkStatus(); }
absl::Status Validate(const QuestOptions& o, const ModelConfig& config) {
  return Validate(static_cast<const TieredOptions&>(o), config);
}

}  // namespace

std::string_view KvPolicyName(KvPolicyKind kind) { return kNames[static_cast<size_t>(kind)]; }

std::span<const std::string_view> KvPolicyNames() { return kNames; }

absl::StatusOr<KvPolicyKind> ParseKvPolicyKind(std::string_view name) {
  const auto it = std::find(kNames.begin(), kNames.end(), name);
  if (it == kNames.end()) {
    return InvalidField("name", absl::StrCat("'", std::string(name),
                                             "' is not a KV policy (expected one of full, snapkv, "
                                             "fastkv, quest, freekv, fastkv_freekv)"));
  }
  return static_cast<KvPolicyKind>(it - kNames.begin());
}

KvPolicyOptions DefaultKvPolicyOptions(KvPolicyKind kind) {
  switch (kind) {
    case KvPolicyKind::kFull:
      return FullOptions{};
    case KvPolicyKind::kSnapKv:
      return SnapKvOptions{};
    case KvPolicyKind::kFastKv:
      return FastKvOptions{};
    case KvPolicyKind::kQuest:
      return QuestOptions{};
    case KvPolicyKind::kFreeKv:
      return FreeKvOptions{};
    case KvPolicyKind::kFastKvFreeKv:
      return FastKvFreeKvOptions{};
  }
  return FullOptions{};
}

bool IsTiered(KvPolicyKind kind) {
  return kind == KvPolicyKind::kQuest || kind == KvPolicyKind::kFreeKv ||
         kind == KvPolicyKind::kFastKvFreeKv;
}

bool IsTieredKvPolicy(std::string_view name) {
  auto kind = ParseKvPolicyKind(name);
  return kind.ok() && IsTiered(*kind);
}

const TieredOptions* TieredOptionsOf(const KvPolicyOptions& options) {
  return std::visit(
      [](const auto& o) -> const TieredOptions* {
        if constexpr (std::is_base_of_v<TieredOptions, std::decay_t<decltype(o)>>) {
          return &o;
        } else {
          return nullptr;
        }
      },
      options);
}

TieredOptions* TieredOptionsOf(KvPolicyOptions& options) {
  return const_cast<TieredOptions*>(TieredOptionsOf(std::as_const(options)));
}

std::span<const std::string_view> KvOptionNames() { return kOptionNames; }

std::vector<std::string_view> KvOptionNames(KvPolicyKind kind) {
  std::vector<std::string_view> names;
  std::visit(
      [&](const auto& o) {
        ForEachOption(o, [&](std::string_view n, auto&) { names.push_back(n); });
      },
      DefaultKvPolicyOptions(kind));
  return names;
}

std::optional<KvOptionValue> GetKvOption(const KvPolicyOptions& options, std::string_view name) {
  std::optional<KvOptionValue> value;
  std::visit(
      [&](const auto& o) {
        ForEachOption(o, [&](std::string_view n, const auto& field) {
          if (n == name) value = field;
        });
      },
      options);
  return value;
}

absl::Status SetKvOption(KvPolicyOptions& options, std::string_view name,
                         const KvOptionValue& value) {
  absl::Status status = InvalidField(
      std::string(name),
      absl::StrCat("is not an option of the ", std::string(KvPolicyName(options)), " policy"));
  std::visit(
      [&](auto& o) {
        ForEachOption(o, [&](std::string_view n, auto& field) {
          if (n != name) return;
          using Field = std::decay_t<decltype(field)>;
          if (const Field* v = std::get_if<Field>(&value)) {
            field = *v;
            status = absl::OkStatus();
          } else {
            status = InvalidField(std::string(name), "has another type");  // a front end's mistake
          }
        });
      },
      options);
  return status;
}

absl::Status ValidateKvPolicyOptions(const KvPolicyOptions& options, const ModelConfig& config) {
  return std::visit([&](const auto& o) { return Validate(o, config); }, options);
}

}  // namespace kvserve
