#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tokenizer.h"

namespace kvserve::eval {

// Fidelity to full attention (research/ruler.md §6.6), independent of how strong the model is: a
// long natural document's first `context` tokens are the prompt, and its next tokens are fed
// teacher-forced; at each position a policy's next-token distribution is compared with full's.

// Document `index` of the fidelity set: Debian's license texts (/usr/share/common-licenses,
// verbatim copies may be used freely) concatenated from the index-th file on, as plain text (BOS
// when the tokenizer adds one), its first `tokens` ids. NotFound when the texts run out.
absl::StatusOr<std::vector<int32_t>> FidelityDocument(const Tokenizer& tokenizer, int index,
                                                      int tokens);

// log-softmax of `logits`, in double precision.
std::vector<double> LogSoftmax(std::span<const float> logits);

// KL(P_ref ‖ P) in nats from the reference's log-probabilities and the other's logits.
double KlDivergence(std::span<const double> ref_logp, std::span<const float> logits);

// Index of the largest logit (ties to the lower id).
int32_t ArgMax(std::span<const float> logits);

// Per-configuration sums over the scored positions of one document.
struct FidelityTally {
  int positions = 0;
  int top1_equal = 0;
  double kl_sum = 0;
  double kl_max = 0;
  void Add(bool equal, double kl);
};

// The number of leading positions where `a` and `b` agree.
int CommonPrefix(std::span<const int32_t> a, std::span<const int32_t> b);

}  // namespace kvserve::eval
