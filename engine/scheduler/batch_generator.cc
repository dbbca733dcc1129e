#include "engine/scheduler/batch_generator.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/kv/page_pool.h"
#include "engine/scheduler/request_validation.h"

namespace kvserve {

double GenerationResult::decode_tokens_per_s() const {
  // The first token comes from prefill; decode rate counts the ones after it.
  return tokens.size() > 1 && decode_ms > 0 ? (tokens.size() - 1) * 1000.0 / decode_ms : 0.0;
}

BatchGenerator::BatchGenerator(Backend& backend, GeneratorOptions options)
    : backend_(backend), options_(options) {}

absl::StatusOr<std::vector<GenerationResult>> BatchGenerator::Generate(
    std::span<const GenerationRequest> requests, const TokenCallback& on_token) {
  const ModelConfig& config = backend_.config();
  // Tiered policies select whole pages of the pool: the pool takes their page size.
  int page_size = std::max(1, options_.page_size);
  const TieredOptions* tiered = nullptr;
  for (size_t i = 0; i < requests.size(); ++i) {
    const TieredOptions* kv = TieredOptionsOf(requests[i].kv_policy);
    if (kv == nullptr) continue;
    if (tiered != nullptr && kv->page_size != tiered->page_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("request ", i, ": kv_policy.page_size ", kv->page_size, " differs from ",
                       tiered->page_size, ", another tiered request's, in one batch"));
    }
    tiered = kv;
    page_size = std::max(1, kv->page_size);
  }
  std::vector<EngineRequest> engine_requests;
  engine_requests.reserve(requests.size());
  int64_t pages = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    // The CLI's flag is --max-tokens: name it so.
    if (r.max_new_tokens < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("request ", i, ": max_tokens must be >= 1, got ", r.max_new_tokens));
    }
    EngineRequest e{.id = absl::StrCat(i),
                    .prompt = r.prompt,
                    .max_new_tokens = r.max_new_tokens,
                    .sampling = r.sampling,
                    .stop_token_ids = r.stop_token_ids,
                    .ignore_eos = r.ignore_eos,
                    .kv_policy = r.kv_policy};
    if (auto s = ValidateEngineRequest(e, config, nullptr); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("request ", i, ": ", s.message()));
    }
    const int64_t tokens = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
    pages += config.n_layers * ((tokens + page_size - 1) / page_size);
    // A tiered request's device budget, besides its host pages.
    if (const TieredOptions* kv = TieredOptionsOf(r.kv_policy)) {
      const int budget = kv->budget > 0 ? kv->budget : kDefaultTieredBudget;
      pages += static_cast<int64_t>(config.n_layers) * (budget / page_size);
    }
    engine_requests.push_back(std::move(e));
  }
  if (requests.empty()) return std::vector<GenerationResult>{};

  const KvPageShape shape{
      .n_kv_heads = config.n_kv_heads, .page_size = page_size, .head_dim = config.head_dim};
  const int batch = static_cast<int>(requests.size());
  EngineCore scheduler(backend_, /*tokenizer=*/nullptr,
                       {.max_batch_tokens = std::max(1, options_.prefill_chunk_tokens),
                        .max_running = batch,
                        .max_queued_requests = batch,
                        .max_queued_prompt_tokens = std::numeric_limits<int64_t>::max(),
                        .page_size = page_size,
                        .kv_cache_bytes = pages * static_cast<int64_t>(shape.bytes()),
                        .kv_host_bytes = pages * static_cast<int64_t>(shape.bytes()),
                        .eos_id = options_.eos_id});
  std::vector<GenerationResult> results(requests.size());
  std::string error;
  for (size_t i = 0; i < engine_requests.size(); ++i) {
    auto on_output = [&, i](SequenceOutput&& out) {
      GenerationResult& r = results[i];
      for (int32_t token : out.tokens) {
        r.tokens.push_back(token);
        if (on_token) on_token(i, token);
      }
      if (!out.finished) return;
      r.finish_reason = out.finish_reason;
      r.prefill_ms = out.timing.prefill_ms;
      r.ttft_ms = out.timing.ttft_ms;  // submitted at the start of the batch
      r.decode_ms = out.timing.decode_ms;
      r.kv = std::move(out.kv);
      if (out.finish_reason == FinishReason::kError && error.empty()) {
        error = absl::StrCat("request ", i, ": ", out.error);
      }
    };
    if (auto s = scheduler.Submit(std::move(engine_requests[i]), on_output); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("request ", i, ": ", s.message()));
    }
  }
  scheduler.RunUntilIdle();
  if (!error.empty()) return absl::InternalError(error);
  return results;
}

}  // namespace kvserve
