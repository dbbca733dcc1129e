#include "engine/runtime/backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kv/budget_cache.h"

namespace kvserve {

void StepOutput::Reset(size_t chunks) {
  logits.clear();
  logits_row.assign(chunks, -1);
  chunk_status.assign(chunks, absl::OkStatus());
  prompt_layers.assign(chunks, {});
  retained.assign(chunks, {});
  kv_counts.assign(chunks, {});
}

void ApplyDeviceKvCounts(std::span<const SequenceChunk> batch, const StepOutput& out) {
  for (size_t i = 0; i < batch.size() && i < out.kv_counts.size(); ++i) {
    if (out.chunk_status[i].ok() && batch[i].policy != nullptr && !out.kv_counts[i].empty()) {
      batch[i].policy->RecordDeviceCounts(out.kv_counts[i]);
    }
  }
}

void ApplyRetention(std::span<const SequenceChunk> batch, const StepOutput& out) {
  for (size_t i = 0; i < batch.size() && i < out.retained.size(); ++i) {
    if (!out.chunk_status[i].ok()) continue;
    for (const KvRetention& r : out.retained[i]) {
      if (r.rows.empty()) {
        batch[i].kv->Truncate(r.layer, r.length);
      } else {
        batch[i].kv->Retain(r.layer, r.rows);
      }
    }
  }
}

void AdmittedChunks::Admit(std::span<const SequenceChunk> batch,
                           const std::function<absl::Status(const SequenceChunk&)>& admit,
                           StepOutput* out) {
  chunks.clear();
  index.clear();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (absl::Status s = admit(batch[i]); !s.ok()) {
      out->chunk_status[i] = std::move(s);
      continue;
    }
    chunks.push_back(batch[i]);
    index.push_back(static_cast<int>(i));
  }
}

KvPageStore* Backend::AcquireKvPageStore(KvTier tier, const KvPageShape& shape, int64_t max_pages) {
  if (tier == KvTier::kDevice && kv_page_capacity(shape.page_size) >= 0) return nullptr;
  MutexLock lock(&kv_stores_mu_);
  kv_stores_.push_back(std::make_unique<KvPageStore>(kv_dtype(), shape.floats(), max_pages));
  return kv_stores_.back().get();
}

void Backend::ReleaseKvPageStore(KvPageStore* store) {
  if (store == nullptr) return;
  MutexLock lock(&kv_stores_mu_);
  std::erase_if(kv_stores_, [store](const auto& s) { return s.get() == store; });
}

absl::Status Backend::Supports(const KvPolicyOptions&) const { return absl::OkStatus(); }

absl::Status Backend::SetKvDtype(KvDtype dtype) {
  if (dtype == kv_dtype()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("--kv-dtype ", KvDtypeName(dtype), ": backend '", std::string(name()),
                   "' stores KV in ", KvDtypeName(kv_dtype()), " only"));
}

absl::Status GrowForStep(const Backend& backend, std::span<const SequenceChunk> batch) {
  const bool from_first_step = backend.tiered_budget_from_first_step();
  for (const SequenceChunk& c : batch) {
    if (c.kv == nullptr) continue;
    const int tokens = static_cast<int>(c.tokens.size());
    if (!c.kv->Grow(tokens))
      return absl::ResourceExhaustedError("forward: the KV page pool is full");
    if (c.policy != nullptr && (c.kind == ChunkKind::kDecode || from_first_step)) {
      ProvideDeviceBudget(*c.policy, *c.kv, tokens, from_first_step);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckChunkPages(const SequenceChunk& chunk) {
  if (chunk.kv->PagesToGrow(static_cast<int>(chunk.tokens.size())) > 0) {
    return absl::FailedPreconditionError(
        "forward: the chunk's KV pages were not allocated before the step");
  }
  return absl::OkStatus();
}

absl::Status Backend::Forward(std::span<const SequenceChunk> batch, std::vector<float>* logits) {
  KVSERVE_RETURN_IF_ERROR(GrowForStep(*this, batch));
  StepOutput out;
  KVSERVE_RETURN_IF_ERROR(Execute(batch, &out));
  for (const absl::Status& s : out.chunk_status) {
    if (!s.ok()) return s;
  }
  ApplyRetention(batch, out);
  ApplyDeviceKvCounts(batch, out);
  *logits = std::move(out.logits);
  return absl::OkStatus();
}

}  // namespace kvserve
