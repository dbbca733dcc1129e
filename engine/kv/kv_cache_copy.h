#pragma once

#include "absl/status/status.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve {

// Copies every layer of `from` into `to`, which must be empty and of the same shape (layers, KV
// heads, head dim; page sizes and pools may differ): each KV head keeps its own rows in their
// order, and each layer its own length, so a compressed cache copies as it is. Lets an evaluation
// prefill a prompt once and decode it under several KV budgets. FailedPrecondition on a shape
// mismatch or a non-empty `to`; ResourceExhausted when `to`'s pool runs short (`to` then holds a
// partial copy).
absl::Status CopyKvCache(const SequenceKvCache& from, SequenceKvCache& to);

}  // namespace kvserve
