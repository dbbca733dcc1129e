#include "tools/eval/prompt_evaluation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvserve::eval {

namespace {

// The options of `options` of type Part (a base of the policy's options), or null.
template <typename Part>
const Part* PartOf(const KvPolicyOptions& options) {
  return std::visit(
      [](const auto& o) -> const Part* {
        if constexpr (std::is_base_of_v<Part, std::decay_t<decltype(o)>>) {
          return &o;
        } else {
          return nullptr;
        }
      },
      options);
}

// quest and freekv prefill densely, as full does; fastkv and fastkv_freekv run FastKV's TSP.
bool FullPrefill(const KvPolicyOptions& o) { return PartOf<TspOptions>(o) == nullptr; }

// The scoring window the prefill records (the default where the policy scores nothing).
int ScoringWindow(const KvPolicyOptions& o) {
  const PromptScoringOptions* scoring = PartOf<PromptScoringOptions>(o);
  return scoring != nullptr ? scoring->window : PromptScoringOptions{}.window;
}

}  // namespace

std::string PrefillGroup(const KvPolicyOptions& o) {
  if (FullPrefill(o)) return absl::StrCat("full/w", ScoringWindow(o));
  const TspOptions& t = *PartOf<TspOptions>(o);
  const PromptScoringOptions& s = *PartOf<PromptScoringOptions>(o);
  return absl::StrCat("fastkv/l", t.tsp_layer, "/r", t.tsp_rate, "/t", t.tsp_len, "/w", s.window,
                      "/k", s.pool_kernel, "/p", static_cast<int>(s.pool));
}

absl::Status ForEachConfig(Backend& backend, PagePool& pool, std::span<const int32_t> prompt,
                           std::span<const EvalConfig> configs, const ConfigVisitor& visit,
                           std::map<std::string, PromptOutcome::Prefill>* prefills) {
  const int n = static_cast<int>(prompt.size());
  std::vector<std::pair<const EvalConfig*, KvPolicyOptions>> runs;
  for (const EvalConfig& c : configs) {
    if (auto o = ForPrompt(c, n)) runs.emplace_back(&c, *std::move(o));
  }
  std::vector<std::string> groups;  // in the order the configurations name them
  for (const auto& [c, o] : runs) {
    const std::string g = PrefillGroup(o);
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  for (const std::string& group : groups) {
    const KvPolicyOptions* first = nullptr;
    for (const auto& [c, o] : runs) {
      if (PrefillGroup(o) == group) {
        first = &o;
        break;
      }
    }
    // The full group records scores without a policy; others run the first member's policy (its
    // KV budget does not matter: only its propagation reaches the prefill).
    std::unique_ptr<KvPolicy> policy;
    const bool full = FullPrefill(*first);
    if (!full) {
      // Plain fastkv records the scores of every layer its members may compress; fastkv_freekv
      // members replay only the TSP layer's. The prefill keeps every row either way.
      FastKvOptions tsp;
      static_cast<PromptScoringOptions&>(tsp) = *PartOf<PromptScoringOptions>(*first);
      static_cast<TspOptions&>(tsp) = *PartOf<TspOptions>(*first);
      if (const SnapKvOptions* rates = PartOf<SnapKvOptions>(*first)) {
        tsp.retain_rate = rates->retain_rate;
      }
      tsp.retain_rate = std::min(tsp.retain_rate, tsp.tsp_rate);
      auto p = CreateKvPolicy(tsp, backend.config());
      if (!p.ok()) return p.status();
      policy = *std::move(p);
    }
    std::string name = full ? "full" : "fastkv";
    if (prefills->contains(name)) name = group;
    auto prefill =
        RunSharedPrefill(backend, pool, prompt, std::move(policy), ScoringWindow(*first));
    if (!prefill.ok()) return prefill.status();
    (*prefills)[name] = {.ms = prefill->prefill_ms, .stats = prefill->stats};
    for (const auto& [c, o] : runs) {
      if (PrefillGroup(o) != group) continue;
      if (auto s = visit(*c, o, *prefill); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("config ", c->label, ": ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PromptOutcome> EvaluatePrompt(Backend& backend, PagePool& pool,
                                             std::span<const int32_t> prompt,
                                             std::span<const EvalConfig> configs,
                                             int max_new_tokens, int32_t eos_id) {
  PromptOutcome out;
  auto decode = [&](const EvalConfig& c, const KvPolicyOptions& o,
                    const SharedPrefill& prefill) -> absl::Status {
    auto r =
        DecodeFromSharedPrefill(backend, pool, prefill, o, max_new_tokens, eos_id, c.experiment);
    if (!r.ok()) return r.status();
    out.results[c.label] = *std::move(r);
    return absl::OkStatus();
  };
  if (auto s = ForEachConfig(backend, pool, prompt, configs, decode, &out.prefills); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace kvserve::eval
