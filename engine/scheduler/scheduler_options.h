#pragma once

#include <cstdint>

#include "engine/kv/kv_policy.h"
#include "engine/kv/kv_policy_options.h"

namespace kvserve {

struct SchedulerOptions {
  int max_batch_tokens = 2048;  // tokens per engine step: decodes first, then prefill chunks
  int max_running = 64;         // sequences in the running batch
  int max_queued_requests = 256;
  int64_t max_queued_prompt_tokens = 1 << 20;
  int page_size = kDefaultKvPageSize;
  int64_t kv_cache_bytes = int64_t{2} << 30;  // the (device) KV page pool's budget
  // The host tier's budget: the full KV of quest/freekv/fastkv_freekv sequences (their device
  // budget pages come from the KV page pool).
  int64_t kv_host_bytes = int64_t{8} << 30;
  int32_t eos_id = -1;
  KvPolicyOptions default_kv_policy;
};

struct SchedulerStatus {
  int running = 0;
  int waiting = 0;
  int64_t pages_used = 0;  // the (device) KV page pool
  int64_t pages_total = 0;
  int64_t host_pages_used = 0;  // the host tier
  int64_t host_pages_total = 0;
  int page_size = 0;
  int64_t preemptions_total = 0;
  int64_t finished_total = 0;
  bool draining = false;
};

}  // namespace kvserve
