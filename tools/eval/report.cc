#include "tools/eval/report.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/eval/suite_report.h"

namespace kvserve::eval {
namespace {

using nlohmann::json;

// "1K" for 1024, "7K" for 7168, else the count.
std::string LengthName(int tokens) {
  return tokens % 1024 == 0 ? absl::StrCat(tokens / 1024, "K") : absl::StrCat(tokens);
}

struct Tally {
  int correct = 0;
  int total = 0;
  double percent() const { return total ? 100.0 * correct / total : 0.0; }
};

std::string Cell(const Tally& t) {
  return t.total ? absl::StrFormat("%.1f", t.percent()) : std::string("–");
}

// The configurations in the order the runs named them, then any other that has results; only
// those with results (a run's "configs" may hold a group name such as "tiered").
std::vector<std::string> ConfigOrder(const std::vector<json>& records) {
  std::set<std::string> scored;
  std::vector<std::string> seen;
  for (const json& r : records) {
    if (!r.contains("results") || !r.at("results").is_object()) continue;
    for (const auto& [label, result] : r.at("results").items()) {
      if (scored.insert(label).second) seen.push_back(label);
    }
  }
  std::vector<std::string> order;
  auto add = [&](const std::string& label) {
    if (scored.contains(label) && std::find(order.begin(), order.end(), label) == order.end()) {
      order.push_back(label);
    }
  };
  for (const json& r : records) {
    if (r.value("type", "") != "run") continue;
    for (const json& c : r.at("configs")) add(c.get<std::string>());
  }
  for (const std::string& label : seen) add(label);
  return order;
}

// "- 1K: `full` 86.7 %, `fastkv` 86.7 % (+0.0) — met" for each length where both have cases:
// `candidate` within `points` of `reference` wherever `reference` scores at least `floor` %.
// Returns whether every applicable length met it (and sets *any when one applied).
bool TargetLines(const std::map<std::string, std::map<int, Tally>>& by_length,
                 const std::set<int>& lengths, const std::string& reference,
                 const std::string& candidate, double points, double floor, bool* any,
                 std::string& md) {
  bool all_met = true;
  for (int l : lengths) {
    const auto ref = by_length.find(reference);
    const auto cand = by_length.find(candidate);
    if (ref == by_length.end() || cand == by_length.end()) continue;
    const auto f = ref->second.find(l);
    const auto k = cand->second.find(l);
    if (f == ref->second.end() || k == cand->second.end()) continue;
    const double delta = k->second.percent() - f->second.percent();
    const bool applies = f->second.percent() >= floor;
    const bool met = !applies || delta >= -points;
    *any = *any || applies;
    all_met = all_met && met;
    md += absl::StrFormat(
        "- %s: `%s` %.1f %%, `%s` %.1f %% (%+.1f) — %s\n", LengthName(l), reference,
        f->second.percent(), candidate, k->second.percent(), delta,
        applies ? (met ? "met" : "**not met**")
                : absl::StrFormat("not applicable (`%s` < %.0f %%)", reference, floor));
  }
  return all_met;
}

std::string Row(const std::vector<std::string>& cells) {
  return absl::StrCat("| ", absl::StrJoin(cells, " | "), " |\n");
}

std::string Separator(size_t columns, size_t text_columns = 1) {
  std::vector<std::string> cells;
  for (size_t i = 0; i < columns; ++i) cells.push_back(i < text_columns ? "---" : "---:");
  return Row(cells);
}

void PasskeySection(const std::vector<json>& records, const std::vector<std::string>& configs,
                    std::string& md) {
  std::map<std::string, std::map<int, Tally>> by_length;                // config, length
  std::map<int, std::map<std::string, std::map<int, Tally>>> by_depth;  // length, config, depth
  std::map<int, std::pair<int, int>> prompt_tokens;                     // length: min, max
  std::map<int, std::set<int>> seeds;
  std::map<std::string, std::map<int, std::pair<double, int>>> kept;       // config, length: sum, n
  std::map<std::string, std::map<int, std::pair<double, int>>> prefill_s;  // group, length
  std::set<int> lengths, depths;
  for (const json& r : records) {
    if (r.value("type", "") != "passkey") continue;
    for (const auto& [name, ms] : r.at("prefill_ms").items()) {
      auto& p = prefill_s[name][r.at("target_tokens").get<int>()];
      p.first += ms.get<double>() / 1000.0;
      ++p.second;
    }
    const int length = r.at("target_tokens");
    const int depth = r.at("depth");
    const int tokens = r.at("prompt_tokens");
    lengths.insert(length);
    depths.insert(depth);
    seeds[length].insert(r.at("seed").get<int>());
    auto [it, fresh] = prompt_tokens.try_emplace(length, tokens, tokens);
    it->second.first = std::min(it->second.first, tokens);
    it->second.second = std::max(it->second.second, tokens);
    for (const auto& [label, result] : r.at("results").items()) {
      const bool ok = result.at("correct");
      for (Tally* t : {&by_length[label][length], &by_depth[length][label][depth]}) {
        t->correct += ok ? 1 : 0;
        ++t->total;
      }
      auto& k = kept[label][length];
      k.first += result.at("kv_tokens_mean").get<double>();
      ++k.second;
    }
  }
  if (lengths.empty()) return;
  md += "## Passkey retrieval\n\n";
  md += "Accuracy in % (cases per cell: depths × seeds):\n\n";
  std::vector<std::string> head = {"config"};
  for (int l : lengths) {
    head.push_back(absl::StrCat(LengthName(l), " (", prompt_tokens[l].first, "–",
                                prompt_tokens[l].second, " tok, n=", by_length[configs[0]][l].total,
                                ")"));
  }
  head.push_back("all");
  md += Row(head) + Separator(head.size());
  for (const std::string& c : configs) {
    std::vector<std::string> cells = {absl::StrCat("`", c, "`")};
    Tally all;
    for (int l : lengths) {
      const Tally& t = by_length[c][l];
      cells.push_back(Cell(t));
      all.correct += t.correct;
      all.total += t.total;
    }
    cells.push_back(Cell(all));
    md += Row(cells);
  }
  md +=
      "\nKV entries a layer holds after the answer (mean over layers and cases; the answer's "
      "own tokens included):\n\n";
  std::vector<std::string> khead = {"config"};
  for (int l : lengths) khead.push_back(LengthName(l));
  md += Row(khead) + Separator(khead.size());
  for (const std::string& c : configs) {
    std::vector<std::string> cells = {absl::StrCat("`", c, "`")};
    for (int l : lengths) {
      const auto& k = kept[c][l];
      cells.push_back(k.second ? absl::StrFormat("%.0f", k.first / k.second) : "–");
    }
    md += Row(cells);
  }

  md +=
      "\nPrefill time of these runs in s (mean over cases; informative only: the machine was "
      "shared with other work while the sweep ran, see docs/fastkv-prefill.md for the "
      "benchmark):\n\n";
  std::vector<std::string> phead = {"prefill"};
  for (int l : lengths) phead.push_back(LengthName(l));
  md += Row(phead) + Separator(phead.size());
  for (const auto& [name, per_length] : prefill_s) {
    std::vector<std::string> cells = {absl::StrCat("`", name, "`")};
    for (int l : lengths) {
      const auto it = per_length.find(l);
      cells.push_back(it == per_length.end()
                          ? std::string("–")
                          : absl::StrFormat("%.1f", it->second.first / it->second.second));
    }
    md += Row(cells);
  }

  auto has = [&](const std::string& c) { return by_length.contains(c); };
  if (has("full") && has("fastkv")) {
    md +=
        "\nTarget (issue #4): `fastkv` within 2 points of `full` at every length where `full` "
        "scores ≥ 80 %.\n\n";
    bool any = false;
    const bool met = TargetLines(by_length, lengths, "full", "fastkv", 2.0, 80.0, &any, md);
    if (any) md += absl::StrCat("\nOverall: ", met ? "met" : "**not met**", ".\n");
  }
  if (has("full") && has("freekv")) {
    md +=
        "\nTarget (issue #5): `freekv` within 1 point of `full` at every length where `full` "
        "scores ≥ 80 %.\n\n";
    bool any = false;
    const bool met = TargetLines(by_length, lengths, "full", "freekv", 1.0, 80.0, &any, md);
    if (any) md += absl::StrCat("\nOverall: ", met ? "met" : "**not met**", ".\n");
  }
  // fastkv-B keeps B tokens per layer and KV head on the GPU; fastkv_freekv-B has a GPU budget of
  // B.
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& c : configs) {
    if (!c.starts_with("fastkv_freekv-")) continue;
    const std::string fastkv = "fastkv-" + c.substr(std::string("fastkv_freekv-").size());
    if (has(fastkv)) pairs.emplace_back(fastkv, c);
  }
  if (!pairs.empty()) {
    md +=
        "\nTarget (issue #5): `fastkv_freekv` at least as accurate as `fastkv` at the same GPU "
        "budget (every length).\n\n";
    bool all = true;
    for (const auto& [fastkv, tiered] : pairs) {
      bool any = false;
      all = TargetLines(by_length, lengths, fastkv, tiered, 0.0, 0.0, &any, md) && all;
    }
    md += absl::StrCat("\nOverall: ", all ? "met" : "**not met**", ".\n");
  }

  md +=
      "\n### By depth\n\nAccuracy in % per depth of the key (0 %: first line of the haystack, "
      "100 %: last).\n";
  for (int l : lengths) {
    md += absl::StrCat("\n", LengthName(l), " (seeds: ", absl::StrJoin(seeds[l], ", "), "):\n\n");
    std::vector<std::string> dhead = {"config"};
    for (int d : depths) dhead.push_back(absl::StrCat(d, " %"));
    md += Row(dhead) + Separator(dhead.size());
    for (const std::string& c : configs) {
      std::vector<std::string> cells = {absl::StrCat("`", c, "`")};
      for (int d : depths) cells.push_back(Cell(by_depth[l][c][d]));
      md += Row(cells);
    }
  }
  md += "\n";
}

void AgreementSection(const std::vector<json>& records, const std::vector<std::string>& configs,
                      std::string& md) {
  std::vector<const json*> prompts;
  for (const json& r : records) {
    if (r.value("type", "") == "agreement") prompts.push_back(&r);
  }
  if (prompts.empty()) return;
  const int n = prompts.front()->at("compared_tokens");
  md += absl::StrCat("## Agreement with `full`\n\nFraction (%) of the first ", n,
                     " greedy tokens equal to `full`'s, position by position (a sequence that "
                     "ended at EOS matches only where both have ended):\n\n");
  std::vector<std::string> head = {"config"};
  for (const json* p : prompts) {
    const std::string source = p->at("source");
    head.push_back(absl::StrCat(source.substr(source.rfind('/') + 1), " (",
                                p->at("prompt_tokens").get<int>(), " tok)"));
  }
  head.push_back("mean");
  md += Row(head) + Separator(head.size());
  for (const std::string& c : configs) {
    std::vector<std::string> cells = {absl::StrCat("`", c, "`")};
    double sum = 0;
    int count = 0;
    for (const json* p : prompts) {
      const json& results = p->at("results");
      if (!results.contains(c)) {
        cells.push_back("–");
        continue;
      }
      const double a = results.at(c).at("agreement");
      cells.push_back(absl::StrFormat("%.1f", 100 * a));
      sum += a;
      ++count;
    }
    cells.push_back(count ? absl::StrFormat("%.1f", 100 * sum / count) : "–");
    md += Row(cells);
  }
  md += "\n";
}

void SelfCheckSection(const std::vector<json>& records, std::string& md) {
  int prompts = 0, runs = 0, equal = 0;
  std::vector<std::string> failures;
  for (const json& r : records) {
    if (r.value("type", "") != "self_check") continue;
    ++prompts;
    for (const json& c : r.at("results")) {
      ++runs;
      if (c.at("tokens_equal").get<bool>() && c.at("stats_equal").get<bool>()) {
        ++equal;
      } else {
        failures.push_back(absl::StrCat(c.at("config").get<std::string>(), " on ",
                                        r.at("prompt").get<std::string>()));
      }
    }
  }
  if (prompts == 0) return;
  md += absl::StrCat("## Self-check\n\nShared prefill vs the real policy run by `BatchGenerator`: ",
                     equal, " of ", runs, " (configuration, prompt) runs on ", prompts,
                     " prompts gave identical tokens and KV stats.\n");
  for (const std::string& f : failures) md += absl::StrCat("- differs: ", f, "\n");
  md += "\n";
}

}  // namespace

std::string RenderMarkdown(const std::vector<json>& records) {
  const std::vector<std::string> configs = ConfigOrder(records);
  // Each invocation logs a "run" record and, when it finished, a "done" one.
  std::vector<std::pair<json, json>> runs;
  for (const json& r : records) {
    const std::string type = r.value("type", "");
    if (type == "run") runs.emplace_back(r, json());
    if (type == "done" && !runs.empty()) runs.back().second = r;
  }
  std::string md = "# KV policy accuracy\n\n";
  md +=
      "Produced by `kvserve-accuracy-eval` (tools/eval/) with the commands below; "
      "`kvserve-accuracy-eval --report-from LOG --markdown REPORT.md` re-renders it from "
      "the log.\n\n";
  if (runs.empty()) return md;
  const json* scoring = &runs.front().first;  // the method of the last scoring run
  for (const auto& [run, done] : runs) {
    if (!run.value("self_check", false)) scoring = &run;
  }
  md += absl::StrCat("- Model: ", scoring->value("model_description", std::string("?")), "\n");
  md += absl::StrCat("- Backend: ", scoring->value("backend", std::string("?")),
                     " (fp32 compute), ", scoring->value("threads", 0), " threads\n");
  md += absl::StrCat("- Machine: ", scoring->value("machine", std::string("?")), "\n");
  md += absl::StrCat("- Configurations: ",
                     absl::StrJoin(configs, ", ",
                                   [](std::string* out, const std::string& c) {
                                     absl::StrAppend(out, "`", c, "`");
                                   }),
                     "\n\nCommands (each appended its records to the same log):\n\n");
  for (const auto& [run, done] : runs) {
    md += absl::StrCat("```sh\n", run.value("command", std::string("?")), "\n```\n\n", "started ",
                       run.value("started", std::string("?")), ", ",
                       done.is_null() ? std::string("**not finished** (partial results)")
                                      : absl::StrFormat("finished %s (%.0f min)",
                                                        done.value("finished", std::string()),
                                                        done.value("elapsed_s", 0.0) / 60.0),
                       "\n\n");
  }
  md += scoring->value("method", std::string()) + "\n";
  if (configs.empty()) return md;
  RulerSection(records, configs, md);
  FidelitySection(records, configs, md);
  PasskeySection(records, configs, md);
  AgreementSection(records, configs, md);
  SelfCheckSection(records, md);
  return md;
}

}  // namespace kvserve::eval
