#pragma once

namespace kvserve::kernels::testing {

// Attention outputs are convex combinations of N(0, 1) values rounded to bf16 by both sides (up
// to one unit in the last place apart), and the GPU prefill also rounds probabilities to bf16
// (relative 2^-9 each) for the tensor cores.
inline constexpr float kAttentionAtol = 1.5e-2f;
inline constexpr float kAttentionRtol = 1.6e-2f;

}  // namespace kvserve::kernels::testing
