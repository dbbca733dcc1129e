#pragma once

#include <span>
#include <vector>

#include "engine/runtime/backend.h"

namespace kvserve {

struct Sequence;

// What one engine step runs, as data (vLLM v1's SchedulerOutput): each scheduled sequence's chunk
// (its tokens and positions, page tables, KV policy and prompt compression plan), in the order
// the backend runs them. Scheduler::Schedule makes it; Scheduler::Update consumes the backend's
// StepOutput for it.
struct StepPlan {
  std::vector<SequenceChunk> chunks;
  std::vector<Sequence*> sequences;  // the owner of each chunk

  bool empty() const { return chunks.empty(); }
  void Clear() {
    chunks.clear();
    sequences.clear();
  }
};

}  // namespace kvserve
