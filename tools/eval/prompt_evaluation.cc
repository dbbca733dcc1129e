#include "tools/eval/prompt_evaluation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvserve::eval {

namespace {

// quest and freekv prefill densely, as full does; fastkv_freekv runs FastKV's TSP.
bool FullPrefill(const KvPolicyOptions& o) {
  return o.name == "full" || o.name == "snapkv" || o.name == "quest" || o.name == "freekv";
}

}  // namespace

std::string PrefillGroup(const KvPolicyOptions& o) {
  if (FullPrefill(o)) return absl::StrCat("full/w", o.window);
  return absl::StrCat("fastkv/l", o.tsp_layer, "/r", o.tsp_rate, "/t", o.tsp_len, "/w", o.window,
                      "/k", o.pool_kernel, "/p", static_cast<int>(o.pool));
}

absl::StatusOr<PromptOutcome> EvaluatePrompt(Backend& backend, PagePool& pool,
                                             std::span<const int32_t> prompt,
                                             std::span<const EvalConfig> configs,
                                             int max_new_tokens, int32_t eos_id) {
  PromptOutcome out;
  std::vector<std::string> groups;  // in the order the configurations name them
  for (const EvalConfig& c : configs) {
    const std::string g = PrefillGroup(c.options);
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  for (const std::string& group : groups) {
    const EvalConfig* first = nullptr;
    for (const EvalConfig& c : configs) {
      if (PrefillGroup(c.options) == group) {
        first = &c;
        break;
      }
    }
    // The full group records scores without a policy; others run the first member's policy (its
    // KV budget does not matter: only its propagation reaches the prefill).
    std::unique_ptr<KvPolicy> policy;
    const bool full = FullPrefill(first->options);
    if (!full) {
      // Plain fastkv records the scores of every layer its members may compress; fastkv_freekv
      // members replay only the TSP layer's. The prefill keeps every row either way.
      KvPolicyOptions tsp = first->options;
      tsp.name = "fastkv";
      tsp.budget = 0;
      tsp.retain_rate = std::min(tsp.retain_rate, tsp.tsp_rate);
      auto p = CreateKvPolicy(tsp, backend.config());
      if (!p.ok()) return p.status();
      policy = *std::move(p);
    }
    std::string name = full ? "full" : "fastkv";
    if (out.prefills.contains(name)) name = group;
    auto prefill =
        RunSharedPrefill(backend, pool, prompt, std::move(policy), first->options.window);
    if (!prefill.ok()) return prefill.status();
    out.prefills[name] = {.ms = prefill->prefill_ms, .stats = prefill->stats};
    for (const EvalConfig& c : configs) {
      if (PrefillGroup(c.options) != group) continue;
      auto r = DecodeFromSharedPrefill(backend, pool, *prefill, c.options, max_new_tokens, eos_id);
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            absl::StrCat("config ", c.label, ": ", r.status().message()));
      }
      out.results[c.label] = *std::move(r);
    }
  }
  return out;
}

}  // namespace kvserve::eval
