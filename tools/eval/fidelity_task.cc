#include "tools/eval/fidelity_task.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/model/prompt_encoding.h"

namespace kvserve::eval {
namespace {

constexpr const char* kDocuments[] = {"GPL-3",  "LGPL-2.1", "MPL-1.1",    "GFDL-1.3", "GPL-2",
                                      "LGPL-2", "MPL-2.0",  "Apache-2.0", "GFDL-1.2", "GPL-1"};
constexpr int kDocumentCount = sizeof kDocuments / sizeof kDocuments[0];

}  // namespace

absl::StatusOr<std::vector<int32_t>> FidelityDocument(const Tokenizer& tokenizer, int index,
                                                      int tokens) {
  std::string text;
  for (int i = 0; i < kDocumentCount; ++i) {
    const std::string path =
        absl::StrCat("/usr/share/common-licenses/", kDocuments[(index + i) % kDocumentCount]);
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    std::stringstream s;
    s << in.rdbuf();
    absl::StrAppend(&text, text.empty() ? "" : "\n\n", s.str());
    // About 4 characters per token: encode once there is surely enough.
    if (text.size() > static_cast<size_t>(tokens) * 6) break;
  }
  std::vector<int32_t> ids = EncodePromptText(tokenizer, text);
  if (static_cast<int>(ids.size()) < tokens) {
    return absl::NotFoundError(absl::StrCat("fidelity document ", index, ": ", ids.size(),
                                            " tokens, fewer than ", tokens));
  }
  ids.resize(tokens);
  return ids;
}

std::vector<double> LogSoftmax(std::span<const float> logits) {
  const double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(v - m);
  const double lse = m + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lse;
  return out;
}

double KlDivergence(std::span<const double> ref_logp, std::span<const float> logits) {
  const std::vector<double> logp = LogSoftmax(logits);
  double kl = 0;
  for (size_t i = 0; i < logp.size(); ++i) {
    kl += std::exp(ref_logp[i]) * (ref_logp[i] - logp[i]);
  }
  return std::max(0.0, kl);
}

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void FidelityTally::Add(bool equal, double kl) {
  ++positions;
  top1_equal += equal ? 1 : 0;
  kl_sum += kl;
  kl_max = std::max(kl_max, kl);
}

int CommonPrefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return static_cast<int>(i);
}

}  // namespace kvserve::eval
