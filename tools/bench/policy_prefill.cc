#include "tools/bench/policy_prefill.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kv/snapkv_selection.h"
#include "engine/scheduler/batch_generator.h"
#include "tools/bench/median.h"
#include "tools/bench/policy_list.h"
#include "tools/common/kv_prefill_options.h"

namespace kvserve::bench {
namespace {

// A ratio, or null when either side is missing.
nlohmann::json Ratio(std::optional<double> num, std::optional<double> den) {
  if (!num || !den || *den <= 0) return nullptr;
  return *num / *den;
}

}  // namespace

void AddPolicyPrefillFlags(CLI::App& app, PolicyPrefillOptions& o) {
  app.add_option("--kv-policy", o.policies,
                 "run the policy prefill benchmark with these KV policies, comma-separated (e.g. "
                 "full,snapkv,fastkv): TTFT per --policy-lengths beside the FLOP model and SDPA")
      ->delimiter(',');
  app.add_option("--policy-lengths", o.prompt_lengths, "prompt lengths of the policy prefill runs")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--policy-repeats", o.repeats, "timed runs per (length, policy), after a warm-up")
      ->capture_default_str();
  AddKvPrefillOptions(app, o.kv);
  app.add_option("--kv-tsp-len", o.kv.tsp_len, "fastkv: constant TSP length (0: tsp rate)")
      ->capture_default_str();
  app.add_option("--sdpa-reference", o.sdpa_reference,
                 "torch_reference.py's JSON lines from the same run: the SDPA full-prefill TTFT "
                 "each policy is compared with");
  app.add_option("--sdpa-bench", o.sdpa_bench,
                 "which torch line is the SDPA full prefill: prefill (GEMMs + attention) or "
                 "prefill_model (the whole forward)")
      ->capture_default_str();
}

absl::Status ValidatePolicyPrefillOptions(const PolicyPrefillOptions& o) {
  KVSERVE_RETURN_IF_ERROR(CheckPolicyList("--kv-policy", o.policies));
  for (int n : o.prompt_lengths) {
    if (n <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policy-lengths: lengths must be positive, got ", n));
    }
  }
  if (o.repeats < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--policy-repeats must be >= 1, got ", o.repeats));
  }
  if (o.sdpa_bench.empty()) return absl::InvalidArgumentError("--sdpa-bench is empty");
  return absl::OkStatus();
}

int EffectiveTspLayer(const ModelConfig& config, const TspOptions& options) {
  return options.tsp_layer >= 0 ? options.tsp_layer : std::max(0, config.n_layers / 2 - 1);
}

std::vector<LayerRows> PredictedPrefillRows(const ModelConfig& config,
                                            const KvPolicyOptions& options, int n) {
  std::vector<LayerRows> rows(std::max(0, config.n_layers), LayerRows{n, n});
  const TspOptions* tsp = nullptr;
  const PromptScoringOptions* scoring = nullptr;
  std::visit(
      [&](const auto& o) {
        if constexpr (std::is_base_of_v<TspOptions, std::decay_t<decltype(o)>>) {
          tsp = &o;
          scoring = &o;
        }
      },
      options);
  if (tsp == nullptr) return rows;  // no TSP: every layer runs on n rows
  const int min_budget = MinPromptBudget(*scoring);
  const int keep =
      std::max(tsp->tsp_len > 0 ? tsp->tsp_len : FloorRate(n, tsp->tsp_rate), min_budget);
  const int tsp_layer = EffectiveTspLayer(config, *tsp);
  // FastKvPolicy scores nothing (so propagates everything) below twice the minimum budget.
  if (n < 2 * min_budget || n <= keep || n <= scoring->window || tsp_layer >= config.n_layers) {
    return rows;
  }
  rows[tsp_layer].mlp = keep;
  for (int l = tsp_layer + 1; l < config.n_layers; ++l) rows[l] = {keep, keep};
  return rows;
}

std::vector<PolicyPrefillRun> RunPolicyPrefill(Backend& backend, const PolicyPrefillOptions& o) {
  const ModelConfig& config = backend.config();
  // One chunk per prompt for every policy, so full and the compressing ones prefill alike.
  BatchGenerator generator(backend, {.prefill_chunk_tokens = 1 << 30, .eos_id = -1});
  std::mt19937 rng(1234);
  std::vector<PolicyPrefillRun> runs;
  for (int n : o.prompt_lengths) {
    const size_t first = runs.size();
    for (const std::string& p : o.policies) {
      runs.push_back({.policy = p, .prompt_tokens = n});
    }
    for (int r = 0; r <= o.repeats; ++r) {  // round 0 is the warm-up
      const std::vector<int32_t> prompt = RandomPrompt(rng, n, config.vocab_size);
      for (size_t i = first; i < runs.size(); ++i) {
        PolicyPrefillRun& run = runs[i];
        if (!run.status.ok()) continue;
        GenerationRequest req{.prompt = prompt, .max_new_tokens = 1};
        req.ignore_eos = true;
        absl::StatusOr<KvPolicyOptions> kv = PrefillPolicyOptions(run.policy, o.kv);
        if (!kv.ok()) {
          run.status = kv.status();
          continue;
        }
        req.kv_policy = *std::move(kv);
        auto res = generator.Generate(std::span(&req, 1));
        if (!res.ok()) {
          run.status = res.status();
          continue;
        }
        if (r > 0) run.ttft_ms.push_back(res->front().ttft_ms);
        run.kv = res->front().kv;
      }
    }
  }
  return runs;
}

absl::StatusOr<std::map<int, double>> ReadSdpaTtft(std::istream& in, std::string_view bench) {
  std::map<int, double> ttft;
  std::string raw;
  for (int number = 1; std::getline(in, raw); ++number) {
    const size_t start = raw.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    const nlohmann::json line = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded() || !line.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SDPA reference line ", number, " is not a JSON object"));
    }
    if (line.value("impl", "") != "torch" || line.value("bench", "") != bench ||
        line.value("skipped", false) || !line.contains("prompt_tokens") ||
        !line.contains("ttft_ms") || !line["prompt_tokens"].is_number() ||
        !line["ttft_ms"].is_number()) {
      continue;
    }
    ttft[line["prompt_tokens"].get<int>()] = line["ttft_ms"].get<double>();
  }
  return ttft;
}

nlohmann::json PolicyPrefillLine(const ModelConfig& config, const FastKvOptions& kv,
                                 const PolicyPrefillRun& run, const PolicyPrefillRun* full,
                                 std::optional<double> sdpa_ttft_ms, std::string_view sdpa_bench) {
  const KvPolicyOptions options = PrefillPolicyOptions(run.policy, kv).value_or(FullOptions{});
  const int n = run.prompt_tokens;
  const std::vector<LayerRows> rows = PredictedPrefillRows(config, options, n);
  const double predicted_fraction = PrefillFlopsFraction(config, rows, n);
  const bool tsp = run.policy == "fastkv" || run.policy == "fastkv_freekv";
  nlohmann::json line = {{"bench", "policy_prefill"},
                         {"kv_policy", run.policy},
                         {"prompt_tokens", n},
                         {"predicted_flops_fraction", predicted_fraction},
                         {"predicted_speedup_vs_full", 1.0 / predicted_fraction}};
  if (tsp) {
    line["tsp_rate"] =
        kv.tsp_len > 0 ? nlohmann::json(nullptr) : nlohmann::json(RateAsDecimal(kv.tsp_rate));
    line["tsp_layer"] = EffectiveTspLayer(config, kv);
    line["predicted_tsp_tokens"] = rows.empty() ? n : rows.back().attention;
  }
  const absl::Status status = run.status.ok() && run.ttft_ms.empty()
                                  ? absl::FailedPreconditionError("no timed runs")
                                  : run.status;
  if (!status.ok()) {
    line["error"] = std::string(status.message());
    line["error_code"] = absl::StatusCodeToString(status.code());
    return line;
  }
  const double ttft = Median(run.ttft_ms);
  line["repeats"] = run.ttft_ms.size();
  line["ttft_ms"] = ttft;
  line["ttft_ms_min"] = *std::min_element(run.ttft_ms.begin(), run.ttft_ms.end());
  line["engine_flops_fraction"] = run.kv.prefill_flops_fraction;
  if (tsp) line["tsp_tokens"] = run.kv.tsp_tokens;

  std::optional<double> full_ttft;
  if (full != nullptr && full->status.ok() && !full->ttft_ms.empty()) {
    full_ttft = Median(full->ttft_ms);
  }
  line["full_ttft_ms"] = full_ttft ? nlohmann::json(*full_ttft) : nlohmann::json(nullptr);
  line["speedup_vs_full"] = Ratio(full_ttft, ttft);
  line["speedup_vs_full_over_predicted"] =
      full_ttft ? nlohmann::json(*full_ttft / ttft * predicted_fraction) : nlohmann::json(nullptr);
  line["sdpa_bench"] = sdpa_bench;
  line["sdpa_ttft_ms"] = sdpa_ttft_ms ? nlohmann::json(*sdpa_ttft_ms) : nlohmann::json(nullptr);
  line["speedup_vs_sdpa"] = Ratio(sdpa_ttft_ms, ttft);
  return line;
}

std::vector<nlohmann::json> PolicyPrefillLines(const ModelConfig& config,
                                               const PolicyPrefillOptions& options,
                                               const std::vector<PolicyPrefillRun>& runs,
                                               const std::map<int, double>& sdpa_ttft_ms) {
  std::vector<nlohmann::json> lines;
  for (const PolicyPrefillRun& run : runs) {
    const PolicyPrefillRun* full = nullptr;
    for (const PolicyPrefillRun& other : runs) {
      if (other.policy == "full" && other.prompt_tokens == run.prompt_tokens) full = &other;
    }
    std::optional<double> sdpa;
    if (auto it = sdpa_ttft_ms.find(run.prompt_tokens); it != sdpa_ttft_ms.end()) {
      sdpa = it->second;
    }
    lines.push_back(PolicyPrefillLine(config, options.kv, run, full, sdpa, options.sdpa_bench));
  }
  return lines;
}

}  // namespace kvserve::bench
