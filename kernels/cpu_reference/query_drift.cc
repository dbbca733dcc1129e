#include "kernels/cpu_reference/query_drift.h"

#include <cmath>
#include <vector>

#include "kernels/ceil_div.h"

namespace kvserve::kernels::reference {

float QueryCosine(const float* a, const float* b, int d) {
  double dot = 0, na = 0, nb = 0;
  for (int i = 0; i < d; ++i) {
    dot += double{a[i]} * b[i];
    na += double{a[i]} * a[i];
    nb += double{b[i]} * b[i];
  }
  return na > 0 && nb > 0 ? static_cast<float>(dot / std::sqrt(na * nb)) : 1.0f;
}

bool QueryDrifted(float cosine_sum, int group, float tau) {
  return tau >= 1.0f || cosine_sum / group < tau;
}

void QueryDrift(const QueryDriftParams& p) {
  const int group = p.n_heads / p.n_kv_heads;
  const int d = p.head_dim;
  const size_t row = static_cast<size_t>(p.n_heads) * d;
  std::vector<float> q(row), last(row);
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    uint8_t* flags = p.flags + static_cast<size_t>(seq) * p.n_kv_heads;
    if (CeilDiv(p.kv_lens[seq], p.page_size) <= p.slots) {
      for (int h = 0; h < p.n_kv_heads; ++h) flags[h] = 0;
      continue;
    }
    const int state = StateRow(p.state_rows, seq);
    const Bf16* q_row = p.q + static_cast<size_t>(seq) * p.q_row_stride;
    Bf16* last_row = p.last_q + static_cast<size_t>(state) * row;
    for (size_t e = 0; e < row; ++e) {
      q[e] = ToFloat(q_row[e]);
      last[e] = ToFloat(last_row[e]);
    }
    const bool has_last = p.has_last_q[state] != 0;
    bool any = false;
    for (int h = 0; h < p.n_kv_heads; ++h) {
      if (!has_last) {
        flags[h] = 1;  // nothing speculated yet: every head selects now
        continue;
      }
      float cos = 0.0f;
      for (int g = h * group; g < (h + 1) * group; ++g) {
        cos += QueryCosine(q.data() + static_cast<size_t>(g) * d,
                           last.data() + static_cast<size_t>(g) * d, d);
      }
      flags[h] = QueryDrifted(cos, group, p.tau) ? 1 : 0;
      if (p.checks != nullptr) ++p.checks[state];
      if (p.corrections != nullptr && flags[h]) ++p.corrections[state];
      any |= flags[h] != 0;
    }
    if (has_last && p.checked_steps != nullptr) ++p.checked_steps[state];
    if (any && p.corrected_steps != nullptr) ++p.corrected_steps[state];
    for (size_t e = 0; e < row; ++e) last_row[e] = q_row[e];
    p.has_last_q[state] = 1;
  }
}

}  // namespace kvserve::kernels::reference
