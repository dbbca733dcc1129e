#pragma once

#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace kvserve::eval {

// The 95 % Wilson score interval of `successes` in `n` (Wilson 1927), as fractions; {0, 1} for
// n = 0.
std::pair<double, double> WilsonInterval(int successes, int n);

// Issue 17's sections of the report, from "ruler" and "fidelity" records: per task and length, each
// configuration's all-or-nothing score with its Wilson interval, the partial-credit score and the
// share of the KV it kept (tiered: resident on the GPU); tasks where full scores under 50 % marked
// out of reach; per context, teacher-forced top-1 agreement with full (Wilson), mean and max KL,
// greedy agreement length.
void RulerSection(const std::vector<nlohmann::json>& records,
                  const std::vector<std::string>& configs, std::string& md);
void FidelitySection(const std::vector<nlohmann::json>& records,
                     const std::vector<std::string>& configs, std::string& md);

}  // namespace kvserve::eval
