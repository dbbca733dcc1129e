#include "tools/eval/suite_report.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kvserve::eval {
namespace {

using nlohmann::json;

std::string LengthName(int tokens) {
  return tokens % 1024 == 0 ? absl::StrCat(tokens / 1024, "K") : absl::StrCat(tokens);
}

std::string Row(const std::vector<std::string>& cells) {
  return absl::StrCat("| ", absl::StrJoin(cells, " | "), " |\n");
}

std::string Separator(size_t columns) {
  std::vector<std::string> cells = {"---"};
  for (size_t i = 1; i < columns; ++i) cells.push_back("---:");
  return Row(cells);
}

struct Cell {
  int n = 0;
  int correct = 0;
  double partial = 0;
  double kv_fraction = 0;
  int full_correct_both = 0;  // cases both this config and full got right
  int full_correct = 0;       // of the cases this config ran, those full got right
};

std::string Interval(int k, int n) {
  const auto [lo, hi] = WilsonInterval(k, n);
  return absl::StrFormat("%.0f [%.0f–%.0f]", 100.0 * k / n, 100 * lo, 100 * hi);
}

}  // namespace

std::pair<double, double> WilsonInterval(int successes, int n) {
  if (n <= 0) return {0.0, 1.0};
  constexpr double z = 1.959963984540054;
  const double p = static_cast<double>(successes) / n;
  const double denom = 1 + z * z / n;
  const double center = (p + z * z / (2.0 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

void RulerSection(const std::vector<json>& records, const std::vector<std::string>& configs,
                  std::string& md) {
  // task → length → config → cell
  std::map<std::string, std::map<int, std::map<std::string, Cell>>> cells;
  std::map<std::string, std::set<std::string>> variants;
  for (const json& r : records) {
    if (r.value("type", "") != "ruler") continue;
    const std::string task = r.at("task");
    const int length = r.at("target_tokens");
    variants[task].insert(r.value("variant", std::string()));
    const json& res = r.at("results");
    const bool full_ok = res.contains("full") && res.at("full").at("correct").get<bool>();
    for (const auto& [label, j] : res.items()) {
      Cell& c = cells[task][length][label];
      ++c.n;
      const bool ok = j.at("correct");
      c.correct += ok ? 1 : 0;
      c.partial += j.at("score").get<double>();
      c.kv_fraction += j.value("kv_fraction", 1.0);
      c.full_correct += full_ok ? 1 : 0;
      c.full_correct_both += full_ok && ok ? 1 : 0;
    }
  }
  if (cells.empty()) return;
  md += absl::StrCat(
      "## Tasks (RULER-style)\n\n"
      "Each cell: the all-or-nothing score in % with its 95 % Wilson interval (every reference "
      "found), then the partial-credit score (RULER's string_match_all) and the mean share of the "
      "KV the configuration kept (tiered policies: resident on the GPU; the rest of the KV is in "
      "the host tier). A tiered configuration whose budget covers a prompt is not run on it "
      "(it would decode densely, identical to `full`): its cells are empty. \"kept of full's\": "
      "of the cases `full` answered correctly, the share this configuration also answered "
      "correctly. Lengths whose `full` score is under 50 % are out of reach of the model and "
      "marked so.\n\n");
  for (const auto& [task, by_length] : cells) {
    md += absl::StrCat("### ", task, " (", absl::StrJoin(variants[task], ", "), ")\n\n");
    std::vector<std::string> head = {"config"};
    std::vector<bool> in_reach;
    for (const auto& [length, by_config] : by_length) {
      const auto f = by_config.find("full");
      const bool reach =
          f != by_config.end() && f->second.n > 0 && 2 * f->second.correct >= f->second.n;
      in_reach.push_back(reach);
      head.push_back(absl::StrCat(LengthName(length), reach ? "" : " (out of reach)"));
      head.push_back("partial · KV");
      head.push_back("kept of full's");
    }
    md += Row(head) + Separator(head.size());
    for (const std::string& config : configs) {
      std::vector<std::string> row = {absl::StrCat("`", config, "`")};
      bool any = false;
      for (const auto& [length, by_config] : by_length) {
        const auto it = by_config.find(config);
        if (it == by_config.end() || it->second.n == 0) {
          row.insert(row.end(), {"–", "–", "–"});
          continue;
        }
        any = true;
        const Cell& c = it->second;
        row.push_back(absl::StrCat(Interval(c.correct, c.n), " (", c.n, ")"));
        row.push_back(absl::StrFormat("%.0f · %.2f", 100 * c.partial / c.n, c.kv_fraction / c.n));
        row.push_back(c.full_correct ? absl::StrCat(Interval(c.full_correct_both, c.full_correct))
                                     : "–");
      }
      if (any) md += Row(row);
    }
    md += "\n";
  }
}

void FidelitySection(const std::vector<json>& records, const std::vector<std::string>& configs,
                     std::string& md) {
  struct Acc {
    int docs = 0, positions = 0, top1 = 0;
    double kl_sum = 0, kl_max = 0, greedy_sum = 0, kv = 0;
    int greedy_n = 0, greedy_of = 0;
  };
  std::map<int, std::map<std::string, Acc>> acc;  // context → config
  std::map<int, int> scored;
  for (const json& r : records) {
    if (r.value("type", "") != "fidelity") continue;
    const int context = r.at("context_tokens");
    scored[context] = r.at("scored_positions");
    for (const auto& [label, j] : r.at("results").items()) {
      Acc& a = acc[context][label];
      ++a.docs;
      a.positions += j.at("positions").get<int>();
      a.top1 += j.at("top1_equal").get<int>();
      a.kl_sum += j.at("kl_mean").get<double>() * j.at("positions").get<int>();
      a.kl_max = std::max(a.kl_max, j.at("kl_max").get<double>());
      a.kv += j.value("kv_fraction", 1.0);
      if (j.contains("greedy_agree")) {
        a.greedy_sum += j.at("greedy_agree").get<int>();
        a.greedy_of = j.at("greedy_tokens").get<int>();
        ++a.greedy_n;
      }
    }
  }
  if (acc.empty()) return;
  md += absl::StrCat(
      "## Fidelity to `full`\n\n"
      "Teacher-forced over the continuation of long documents (Debian's license texts, plain "
      "text): each configuration prefills the document's first tokens as it would a prompt, then "
      "is fed the document's next tokens one by one; at each scored position its next-token "
      "distribution is compared with `full`'s. Top-1: % of positions where its argmax equals "
      "`full`'s, with the Wilson interval over positions (positions of one document are not "
      "independent: read it as a lower bound on the uncertainty). KL: KL(P_full ‖ P_config) in "
      "nats, mean over positions and the largest. Greedy: mean number of leading greedy tokens "
      "equal to `full`'s, from the same prompt. KV: the share kept (tiered: resident).\n\n");
  for (const auto& [context, by_config] : acc) {
    const int docs = by_config.begin()->second.docs;
    md += absl::StrCat("### ", context, " tokens of context, ", scored[context],
                       " scored positions × ", docs, " document", docs == 1 ? "" : "s", "\n\n");
    md +=
        Row({"config", "top-1 % [95 %]", "mean KL", "max KL", "greedy agree", "KV"}) + Separator(6);
    for (const std::string& config : configs) {
      const auto it = by_config.find(config);
      if (it == by_config.end()) continue;
      const Acc& a = it->second;
      md += Row(
          {absl::StrCat("`", config, "`"), Interval(a.top1, a.positions),
           absl::StrFormat("%.4f", a.kl_sum / a.positions), absl::StrFormat("%.3f", a.kl_max),
           a.greedy_n ? absl::StrFormat("%.1f / %d", a.greedy_sum / a.greedy_n, a.greedy_of) : "–",
           absl::StrFormat("%.2f", a.kv / a.docs)});
    }
    md += "\n";
  }
}

}  // namespace kvserve::eval
