#include "tools/eval/report.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

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

std::vector<std::string> ConfigOrder(const std::vector<json>& records) {
  std::vector<std::string> order;
  for (const json& r : records) {
    if (r.value("type", "") != "run") continue;
    for (const json& c : r.at("configs")) {
      const std::string label = c.get<std::string>();
      if (std::find(order.begin(), order.end(), label) == order.end()) order.push_back(label);
    }
  }
  return order;
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

  md +=
      "\nTarget (issue #4): `fastkv` within 2 points of `full` at every length where `full` "
      "scores ≥ 80 %.\n\n";
  bool all_met = true, any = false;
  for (int l : lengths) {
    const Tally& f = by_length["full"][l];
    const Tally& k = by_length["fastkv"][l];
    if (f.total == 0 || k.total == 0) continue;
    const double delta = k.percent() - f.percent();
    const bool applies = f.percent() >= 80.0;
    const bool met = !applies || delta >= -2.0;
    any = any || applies;
    all_met = all_met && met;
    md += absl::StrFormat("- %s: `full` %.1f %%, `fastkv` %.1f %% (%+.1f) — %s\n", LengthName(l),
                          f.percent(), k.percent(), delta,
                          applies ? (met ? "met" : "**not met**") : "not applicable (full < 80 %)");
  }
  if (any) md += absl::StrCat("\nOverall: ", all_met ? "met" : "**not met**", ".\n");

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
  std::string md = "# KV policy accuracy (issue #4)\n\n";
  md +=
      "Produced by `kvserve-accuracy-eval` (tools/eval/) with the commands below; "
      "`kvserve-accuracy-eval --report-from LOG --markdown docs/accuracy.md` re-renders it from "
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
  PasskeySection(records, configs, md);
  AgreementSection(records, configs, md);
  SelfCheckSection(records, md);
  return md;
}

}  // namespace kvserve::eval
