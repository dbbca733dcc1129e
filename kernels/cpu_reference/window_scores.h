#pragma once

#include <algorithm>

#include "kernels/selection_params.h"

namespace kvserve::kernels::reference {

// One query head's observation-window scores (research/fastkv.md §2.2 steps 1-5) of a layer of
// `n` tokens: out[j] = the sum over the window queries (tokens n - window .. n - 1) of their
// softmax probability of key j, for the prefix columns j < n - window. `probabilities(token,
// visible, p)` writes the softmax of the query at `token` over keys [0, visible) into p (n floats
// of scratch). The CPU engine (cpu::WindowScores) and WindowScores' twin below both run this.
template <typename Probabilities>
void HeadWindowScores(int n, int window, Probabilities&& probabilities, float* p, float* out) {
  const int prefix = n - window;
  std::fill(out, out + prefix, 0.0f);
  for (int i = 0; i < window; ++i) {
    const int token = prefix + i;
    probabilities(token, token + 1, p);  // causal inside the window: the keys up to the query
    for (int j = 0; j < prefix; ++j) out[j] += p[j];
  }
}

// LaunchWindowScores' twin on host memory: dot products and softmax in double.
void WindowScores(const WindowScoresParams& params);

}  // namespace kvserve::kernels::reference
