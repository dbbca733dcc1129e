#include "tests/support/teacher_forced.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <span>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve::testing {

std::vector<std::vector<float>> TeacherForcedLogits(Backend& backend,
                                                    const std::vector<int32_t>& tokens, int prefill,
                                                    int chunk) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, 32, c.head_dim}, PagePool::kUnbounded, backend.kv_dtype());
  SequenceKvCache kv(pool, c.n_layers);
  if (chunk <= 0) chunk = prefill;
  std::vector<std::vector<float>> rows;
  for (int at = 0; at < static_cast<int>(tokens.size());) {
    const int n = at < prefill ? std::min(chunk, prefill - at) : 1;
    std::vector<int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), at);
    const SequenceChunk step{
        .tokens = std::span(tokens).subspan(at, n), .positions = positions, .kv = &kv};
    std::vector<float> logits;
    const absl::Status s = backend.Forward(std::span(&step, 1), &logits);
    EXPECT_TRUE(s.ok()) << backend.name() << " at token " << at << ": " << s;
    if (!s.ok()) break;
    rows.push_back(std::move(logits));
    at += n;
  }
  return rows;
}

}  // namespace kvserve::testing
