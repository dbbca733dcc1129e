#include "tools/bench/policy_decode.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/scheduler/batch_generator.h"
#include "tools/bench/policy_list.h"

namespace kvserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

// `name`'s defaults with the benchmark's device budget: sink and recent a quarter of it each, as
// FreeKV's 2048 = 512 + 1024 + 512.
absl::StatusOr<KvPolicyOptions> DecodePolicyOptions(std::string_view name,
                                                    const PolicyDecodeOptions& o) {
  const std::string_view policy = name == kFreeKvOracle ? "freekv" : name;
  absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(policy);
  if (!kind.ok()) return kind.status();
  KvPolicyOptions options = DefaultKvPolicyOptions(*kind);
  if (TieredOptions* tiered = TieredOptionsOf(options)) {
    tiered->budget = o.budget;
    tiered->page_size = o.page_size;
    tiered->sink = tiered->recent = std::max(o.page_size, o.budget / 4 / o.page_size * o.page_size);
  }
  return options;
}

void RunOne(BatchGenerator& generator, const PolicyDecodeOptions& o,
            const std::vector<std::vector<int32_t>>& prompts, const RecallOracleSwitch& oracle,
            PolicyDecodeRun& run) {
  absl::StatusOr<KvPolicyOptions> kv = DecodePolicyOptions(run.policy, o);
  if (!kv.ok()) {
    run.status = kv.status();
    return;
  }
  const bool is_oracle = run.policy == kFreeKvOracle;
  if (is_oracle && !oracle) {
    run.status = absl::FailedPreconditionError(
        "freekv_oracle needs a backend whose recall can be switched off (the cuda backend)");
    return;
  }
  std::vector<GenerationRequest> requests;
  for (const std::vector<int32_t>& prompt : prompts) {
    GenerationRequest r{.prompt = prompt, .max_new_tokens = o.new_tokens};
    r.ignore_eos = true;
    r.kv_policy = *kv;
    requests.push_back(std::move(r));
  }
  std::vector<int> counts(requests.size(), 0);
  size_t started = 0;
  Clock::time_point first, last;
  int after = 0;
  auto on_token = [&](size_t i, int32_t) {
    const Clock::time_point now = Clock::now();
    if (counts[i]++ == 0 && ++started == requests.size()) {
      first = now;  // every sequence decodes from here on
      return;
    }
    if (started == requests.size()) {
      ++after;
      last = now;
    }
  };
  if (is_oracle) oracle(true);
  auto results = generator.Generate(requests, on_token);
  if (is_oracle) oracle(false);
  if (!results.ok()) {
    run.status = results.status();
    return;
  }
  run.decode_tokens = after;
  run.decode_ms = after > 0 ? std::chrono::duration<double, std::milli>(last - first).count() : 0;
  run.kv = results->front().kv;
}

nlohmann::json Ratio(double num, double den) {
  if (num <= 0 || den <= 0) return nullptr;
  return num / den;
}

const PolicyDecodeRun* Find(const std::vector<PolicyDecodeRun>& runs, std::string_view policy,
                            int batch) {
  for (const PolicyDecodeRun& r : runs) {
    if (r.policy == policy && r.batch == batch && r.status.ok() && r.decode_tokens > 0) return &r;
  }
  return nullptr;
}

}  // namespace

void AddPolicyDecodeFlags(CLI::App& app, PolicyDecodeOptions& o) {
  app.add_option("--decode-policy", o.policies,
                 "run the policy decode benchmark with these KV policies, comma-separated (e.g. "
                 "full,fastkv,quest,freekv,fastkv_freekv,freekv_oracle): tokens/s per batch")
      ->delimiter(',');
  app.add_option("--decode-context", o.context, "prompt tokens of every policy decode sequence")
      ->capture_default_str();
  app.add_option("--decode-batches", o.batches, "batch sizes of the policy decode runs")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--decode-new-tokens", o.new_tokens, "tokens each sequence generates")
      ->capture_default_str();
  app.add_option("--decode-budget", o.budget,
                 "device budget in tokens of quest, freekv and fastkv_freekv (sink and recent a "
                 "quarter each)")
      ->capture_default_str();
}

absl::Status ValidatePolicyDecodeOptions(const PolicyDecodeOptions& o) {
  const std::string_view oracle[] = {kFreeKvOracle};
  KVSERVE_RETURN_IF_ERROR(CheckPolicyList("--decode-policy", o.policies, oracle));
  if (o.context < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decode-context must be positive, got ", o.context));
  }
  for (int b : o.batches) {
    if (b < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--decode-batches: sizes must be positive, got ", b));
    }
  }
  if (o.new_tokens < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decode-new-tokens must be >= 2 (one decode step), got ", o.new_tokens));
  }
  if (o.page_size < 1 || o.budget < 4 * o.page_size) {
    return absl::InvalidArgumentError(absl::StrCat("--decode-budget must hold at least 4 pages of ",
                                                   o.page_size, " tokens, got ", o.budget));
  }
  return absl::OkStatus();
}

std::vector<PolicyDecodeRun> RunPolicyDecode(Backend& backend, const PolicyDecodeOptions& o,
                                             const RecallOracleSwitch& oracle) {
  BatchGenerator generator(backend, {.page_size = o.page_size, .eos_id = -1});
  std::mt19937 rng(4321);
  std::vector<PolicyDecodeRun> runs;
  for (int batch : o.batches) {
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < batch; ++i) {
      prompts.push_back(RandomPrompt(rng, o.context, backend.config().vocab_size));
    }
    for (const std::string& policy : o.policies) {
      runs.push_back({.policy = policy, .batch = batch});
      RunOne(generator, o, prompts, oracle, runs.back());
    }
  }
  return runs;
}

std::vector<nlohmann::json> PolicyDecodeLines(const PolicyDecodeOptions& o,
                                              const std::vector<PolicyDecodeRun>& runs) {
  std::vector<nlohmann::json> lines;
  for (const PolicyDecodeRun& run : runs) {
    nlohmann::json line = {{"bench", "policy_decode"},
                           {"kv_policy", run.policy},
                           {"batch", run.batch},
                           {"context_tokens", o.context},
                           {"new_tokens", o.new_tokens}};
    if (IsTieredKvPolicy(run.policy == kFreeKvOracle ? "freekv" : run.policy)) {
      line["budget_tokens"] = o.budget;
    }
    const absl::Status status = run.status.ok() && run.decode_tokens == 0
                                    ? absl::FailedPreconditionError("no decode step was timed")
                                    : run.status;
    if (!status.ok()) {
      line["error"] = std::string(status.message());
      line["error_code"] = absl::StatusCodeToString(status.code());
      lines.push_back(std::move(line));
      continue;
    }
    const double tps = run.tokens_per_s();
    const double step_ms = run.decode_ms * run.batch / run.decode_tokens;
    line["decode_tokens"] = run.decode_tokens;
    line["decode_ms"] = run.decode_ms;
    line["tokens_per_s"] = tps;
    line["step_ms"] = step_ms;
    const PolicyDecodeRun* full = Find(runs, "full", run.batch);
    line["speedup_vs_full"] = full ? Ratio(tps, full->tokens_per_s()) : nullptr;
    if (run.policy == "freekv") {
      const PolicyDecodeRun* oracle = Find(runs, kFreeKvOracle, run.batch);
      line["step_over_oracle"] =
          oracle ? Ratio(step_ms, oracle->decode_ms * oracle->batch / oracle->decode_tokens)
                 : nullptr;
    }
    line["resident_fraction"] = run.kv.resident_fraction;
    line["recalled_bytes"] = run.kv.recalled_bytes;
    line["step_correction_rate"] = run.kv.step_correction_rate;
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace kvserve::bench
