#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/model/model_config.h"

namespace kvserve {

// One sequence's share of a forward step: a prefill chunk or a single decode token.
struct SequenceChunk {
  std::span<const int32_t> tokens;     // tokens to run this step
  std::span<const int32_t> positions;  // their logical positions (RoPE), same length as tokens
  SequenceKvCache* kv = nullptr;       // the chunk's K/V are appended here; attention reads it
  bool compute_logits = true;          // emit logits for the chunk's last token
  KvPolicy* policy = nullptr;          // the sequence's KV policy; nullptr = full
  bool whole_prompt = false;           // the chunk is the entire prompt: the policy may compress
};

// Runs the model's layers on some device. The scheduler drives it with ragged batches.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual const ModelConfig& config() const = 0;

  // Runs every chunk of `batch` through the model. Rows of `logits` ([rows][vocab], resized) hold
  // the last token's logits of each chunk with compute_logits, in batch order.
  virtual absl::Status Forward(std::span<const SequenceChunk> batch,
                               std::vector<float>* logits) = 0;

  // KV pages of `page_size` tokens the backend can hold beside the scheduler's budget (a device
  // arena); -1: no limit of its own (the CPU backend reads the pool's pages in place).
  virtual int64_t kv_page_capacity(int page_size) const { return -1; }
};

}  // namespace kvserve
