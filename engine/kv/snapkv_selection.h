#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/kv_policy.h"

namespace kvserve {

// The one place SnapKV-style prompt compression is decided (research/fastkv.md §2.2-§3): the
// snapkv and fastkv policies call these, and so can an evaluation that replays recorded window
// scores under several budgets.

// A rate as the decimal it was written as, in double precision, as the Python reference holds it
// (the float 0.7f is 0.69999999, which would make ⌊10 · 0.7⌋ = 6).
double RateAsDecimal(float rate);
// ⌊n · rate⌋ with the rate as that decimal.
int FloorRate(int n, float rate);

// The smallest budget a compressing layer gets: the window plus one scored prefix token. Without it
// ⌊N·ρ⌋ < window asks top-k for a negative count on short prompts (research/fastkv.md §10.1).
int MinPromptBudget(const PromptScoringOptions& options);

// A layer's budget from the options: the constant `budget` when set, else ⌊n · retain_rate⌋; never
// below MinPromptBudget. A layer of at most that many rows keeps them all.
int SnapKvBudget(const SnapKvOptions& options, int n);

// Steps 6-7 of §2.2: each query head's window scores ([n_heads][n - window], as
// cpu::WindowScores writes them) pooled along tokens, then summed over its GQA group:
// [n_kv_heads][n - window]. `window` is options.window.
std::vector<float> KvHeadWindowScores(std::span<const float> window_scores, int n, int n_heads,
                                      int n_kv_heads, const PromptScoringOptions& options);

// The rows each KV head of a layer of `n` keeps (§3): its top-(budget - window) prefix tokens by
// its pooled, group-summed window score, then the window; every head the same count. A budget >= n
// keeps everything (SelectPerKvHead's clamping).
std::vector<std::vector<int32_t>> SnapKvRetain(std::span<const float> window_scores, int n,
                                               int n_heads, int n_kv_heads,
                                               const PromptScoringOptions& options, int budget);

}  // namespace kvserve
