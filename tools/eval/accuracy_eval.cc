// kvserve-accuracy-eval: passkey retrieval and agreement with `full` for the KV policies (issue
// #4), as JSON records and a Markdown report. The model is loaded once; each prompt is prefilled
// once per prefill group and decoded under every configuration (shared_prefill.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "engine/model/model_loader.h"
#include "engine/runtime/backend_factory.h"
#include "engine/runtime/loaded_engine.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "tools/eval/agreement_task.h"
#include "tools/eval/fidelity_task.h"
#include "tools/eval/passkey_task.h"
#include "tools/eval/prompt_evaluation.h"
#include "tools/eval/report.h"
#include "tools/eval/ruler_tasks.h"
#include "tools/eval/self_check.h"

namespace kvserve::eval {
namespace {

using nlohmann::json;

struct Options {
  std::string model;
  std::string backend = "cpu";
  int threads = 0;
  std::string kv_dtype;  // "": the backend's default
  std::vector<std::string> tasks = {"ruler", "fidelity"};
  std::vector<int> lengths = {1024, 2048, 4096, 7168};
  std::vector<int> depths = {0, 25, 50, 75, 100};
  std::vector<int> seeds = {0, 1, 2};
  std::vector<std::string> configs = {"suite"};
  std::string passkey_format = "plain";
  int passkey_tokens = 8;
  std::vector<std::string> agreement_prompts;  // PATH:TOKENS; empty: the default set
  int agreement_tokens = 32;
  // issue 17's suite
  // The tasks full solves at 4K-8K on the default model (docs/accuracy.md); vt, cwe and
  // niah_multivalue are out of its reach and run only when named.
  // The tasks full solves on the default model (passkey_user, qa, vt: out of its reach).
  std::vector<std::string> ruler_tasks = {"niah_single", "niah_multikey"};
  std::vector<int> ruler_lengths = {4096, 8192};
  int cases = 6;                // per task and length
  std::vector<int> only_cases;  // of those, just these (empty: all)
  std::vector<int> fidelity_contexts = {4096, 7936};
  int fidelity_docs = 2;
  int fidelity_positions = 256;
  int fidelity_greedy = 32;
  bool quick = false;
  std::string plots;     // directory for PNG plots
  std::string log;       // JSON lines, appended as each prompt finishes
  std::string json_out;  // every record as one JSON array
  std::string markdown;
  std::string report_from;  // render from this log only
  bool resume = false;
  bool self_check = false;
  std::string command;
};

int Fail(const absl::Status& status) {
  std::cerr << "kvserve-accuracy-eval: error: " << status.message() << "\n";
  return 1;
}

std::string Now() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

std::string Machine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return absl::StrCat(model, ", ", std::thread::hardware_concurrency(), " hardware threads");
}

// "SmolLM2-135M-Instruct Q4_1" for ".../SmolLM2-135M-Instruct.Q4_1.gguf".
std::string ModelLabel(const std::string& path) {
  std::string name = path.substr(path.rfind('/') + 1);
  if (name.ends_with(".gguf")) name.resize(name.size() - 5);
  if (const size_t dot = name.rfind('.'); dot != std::string::npos) name[dot] = ' ';
  return name;
}

absl::StatusOr<std::vector<json>> ReadLog(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<json> records;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", n, ": not JSON"));
    }
    records.push_back(std::move(j));
  }
  return records;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status WriteOutputs(const Options& o, const std::vector<json>& records) {
  if (!o.json_out.empty()) {
    KVSERVE_RETURN_IF_ERROR(WriteFile(o.json_out, json(records).dump(1) + "\n"));
  }
  if (!o.markdown.empty()) {
    KVSERVE_RETURN_IF_ERROR(WriteFile(o.markdown, RenderMarkdown(records)));
  }
  return absl::OkStatus();
}

std::string Method(const Options& o, const std::vector<AgreementSource>& sources) {
  std::string m = "How the figures were made:\n\n";
  const auto runs = [&o](const char* task) {
    return std::find(o.tasks.begin(), o.tasks.end(), task) != o.tasks.end();
  };
  if (runs("ruler")) {
    absl::StrAppend(
        &m, "- **Tasks** (tools/eval/ruler_tasks.h): ", absl::StrJoin(o.ruler_tasks, ", "), " at ",
        absl::StrJoin(o.ruler_lengths, ", "), " tokens (prompt + answer budget), ", o.cases,
        " cases each, generated from (task, length, case) with SplitMix64; each case one chat "
        "turn; greedy answer within the task's budget; a case is correct when every reference "
        "appears in the answer (case-insensitive), partial credit is the share found.\n");
  }
  if (runs("fidelity")) {
    absl::StrAppend(&m, "- **Fidelity** (tools/eval/fidelity_task.h): ", o.fidelity_docs,
                    " document(s) per context of ", absl::StrJoin(o.fidelity_contexts, ", "),
                    " tokens of Debian's license texts as plain text; the next ",
                    o.fidelity_positions,
                    " tokens teacher-forced; top-1 agreement with full and KL(P_full ‖ P) per "
                    "position; greedy agreement over ",
                    o.fidelity_greedy, " tokens.\n");
  }
  if (!runs("passkey") && !runs("agreement")) return m;
  absl::StrAppend(
      &m,
      "- **Passkey**: the filler \"The grass is green. The sky is blue. The sun is yellow. "
      "Here we go. There and back again.\" repeated, after the intro \"There is an important "
      "info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
      "about the important information there.\"; the line \"The pass key is NNNNN. Remember "
      "it. NNNNN is the pass key.\" (a random 5-digit key per length, depth and seed) between "
      "filler blocks at the depth; then ",
      o.passkey_format == "plain"
          ? "\"What is the pass key? The pass key is\", all as plain text"
          : "\"What is the pass key?\", all as the user's message under the model's chat "
            "template, the assistant's turn opened with \"The pass key is\"",
      ". Each prompt is the most whole filler blocks within the length. Greedy answer of at most ",
      o.passkey_tokens, " tokens; correct when the key's five digits appear in it. Lengths ",
      absl::StrJoin(o.lengths, ", "), " tokens; depths ", absl::StrJoin(o.depths, ", "),
      " %; seeds ", absl::StrJoin(o.seeds, ", "), ".\n");
  std::vector<std::string> names;
  for (const AgreementSource& s : sources) names.push_back(s.path);
  absl::StrAppend(
      &m,
      "- **Agreement**: the user's message \"Summarize the following document.\" + the "
      "longest whole-line prefix of a document within the prompt budget + \"Summarize the "
      "document above in a few sentences.\", under the model's chat template; documents: ",
      absl::StrJoin(names, ", "),
      " (Debian's license texts: verbatim copies may be used freely). The first ",
      o.agreement_tokens, " greedy tokens of each configuration against `full`'s.\n");
  absl::StrAppend(
      &m,
      "- **Configurations**: `snapkv`/`fastkv` at the paper's v3 defaults (window 8, max pool 7, "
      "ρ = 0.1; fastkv τ = 0.2, ℓ_T = L/2 − 1 = 14 of 30 layers); `-B` = a constant KV budget of "
      "B tokens per layer (fastkv keeps τ = 0.2).\n",
      "- **One prefill per prompt and group**: SnapKV's prefill computation does not depend on its "
      "budget (each layer attends over its full K/V; compression only decides what is cached), "
      "and FastKV's (TSP) does not depend on its KV budget. So each prompt runs one `full` "
      "prefill that records every layer's window scores and keeps every row, and one FastKV "
      "prefill that propagates as FastKV does but records instead of compressing. Each "
      "configuration then gets a copy of the prefilled cache, a fresh policy object that is "
      "shown the recorded layers exactly as the backend shows them (its own budget, the shared "
      "selection code in engine/kv/snapkv_selection.h), and its `retain` decisions applied; then "
      "greedy decoding with the policy attached. `--self-check` compares this with the real "
      "policies run by `BatchGenerator` (tokens and KV stats must be identical).\n");
  return m;
}

json ResultJson(const DecodeResult& r, const Tokenizer& tok) {
  double kept = 0;
  for (int k : r.kv.kept_tokens) kept += k;
  if (!r.kv.kept_tokens.empty()) kept /= static_cast<double>(r.kv.kept_tokens.size());
  return {{"tokens", r.tokens},
          {"text", tok.Decode(r.tokens)},
          {"kv_tokens_mean", kept},
          {"tsp_tokens", r.kv.tsp_tokens},
          {"prefill_flops_fraction", r.kv.prefill_flops_fraction}};
}

json PrefillJson(const PromptOutcome& outcome) {
  json j = json::object();
  for (const auto& [name, p] : outcome.prefills) j[name] = p.ms;
  return j;
}

class Evaluation {
 public:
  Evaluation(const Options& o, LoadedModel& model, Backend& backend,
             std::vector<EvalConfig> configs, std::vector<AgreementSource> sources)
      : o_(o),
        model_(model),
        backend_(backend),
        configs_(std::move(configs)),
        sources_(std::move(sources)),
        pool_({model.config.n_kv_heads, 32, model.config.head_dim}, PagePool::kUnbounded,
              backend.kv_dtype()) {}

  absl::Status Run() {
    const auto start = std::chrono::steady_clock::now();
    if (o_.resume && !o_.log.empty()) {
      auto old = ReadLog(o_.log);
      if (old.ok()) {
        for (json& r : *old) {
          if (r.value("type", "") == "done") continue;
          if (r.contains("key_id")) done_.insert(r.at("key_id").get<std::string>());
          records_.push_back(std::move(r));
        }
      }
    }
    if (!o_.log.empty()) log_.open(o_.log, o_.resume ? std::ios::app : std::ios::trunc);
    Record({{"type", "run"},
            {"command", o_.command},
            {"model", model_.config.name},
            {"model_description",
             absl::StrCat(ModelLabel(o_.model), " (",
                          model_.format == "synthetic" ? "synthetic" : "real", " weights; ",
                          o_.model, ", GGUF name \"", model_.config.name, "\")")},
            {"backend", o_.backend},
            {"kv_dtype", KvDtypeName(backend_.kv_dtype())},
            {"threads",
             o_.threads > 0 ? o_.threads : static_cast<int>(std::thread::hardware_concurrency())},
            {"machine", Machine()},
            {"started", Now()},
            {"configs", ConfigLabels()},
            {"self_check", o_.self_check},
            {"method", Method(o_, sources_)}});
    for (const std::string& task : o_.tasks) {
      if (task == "agreement") {
        for (const AgreementSource& s : sources_) {
          if (auto st = Agreement(s); !st.ok()) return st;
        }
      } else if (task == "ruler") {
        // Case by case across tasks and lengths: a run stopped early leaves every cell with
        // (nearly) the same number of cases.
        for (int i = 0; i < o_.cases; ++i) {
          if (!o_.only_cases.empty() &&
              std::find(o_.only_cases.begin(), o_.only_cases.end(), i) == o_.only_cases.end()) {
            continue;
          }
          for (const std::string& t : o_.ruler_tasks)
            for (int length : o_.ruler_lengths) {
              if (auto st = Ruler(t, length, i); !st.ok()) return st;
            }
        }
      } else if (task == "fidelity") {
        for (int d = 0; d < o_.fidelity_docs; ++d)
          for (int context : o_.fidelity_contexts) {
            if (auto st = Fidelity(context, d); !st.ok()) return st;
          }
      } else if (task == "passkey") {
        for (int seed : o_.seeds)
          for (int length : o_.lengths)
            for (int depth : o_.depths) {
              if (auto st = Passkey(length, depth, seed); !st.ok()) return st;
            }
      }
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Record({{"type", "done"}, {"finished", Now()}, {"elapsed_s", elapsed}});
    KVSERVE_RETURN_IF_ERROR(WriteOutputs(o_, records_));
    return self_check_failures_ == 0
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("self-check: ", self_check_failures_,
                                                  " configuration runs differ from the real "
                                                  "policy (see the log)"));
  }

 private:
  void Record(json j) {
    if (log_.is_open()) log_ << j.dump() << std::endl;
    records_.push_back(std::move(j));
  }

  // Self-check mode: the prompt's shared-prefill results beside the real policies'.
  absl::Status Check(const std::string& what, const std::vector<int32_t>& prompt, int max_new) {
    auto results = SelfCheckPrompt(backend_, prompt, configs_, max_new, Eos());
    if (!results.ok()) return results.status();
    json list = json::array();
    std::vector<std::string> summary;
    for (const SelfCheckResult& r : *results) {
      list.push_back({{"config", r.config},
                      {"tokens_equal", r.tokens_equal},
                      {"stats_equal", r.stats_equal},
                      {"shared_tokens", r.shared_tokens},
                      {"real_tokens", r.real_tokens}});
      summary.push_back(absl::StrCat(r.config, r.ok() ? " same" : " DIFFERS"));
      self_check_failures_ += r.ok() ? 0 : 1;
    }
    std::cerr << "self-check " << what << " (" << prompt.size()
              << " tokens): " << absl::StrJoin(summary, ", ") << std::endl;
    Record({{"type", "self_check"},
            {"prompt", what},
            {"prompt_tokens", prompt.size()},
            {"results", list}});
    return absl::OkStatus();
  }

  // The share of the KV a configuration kept: resident on the GPU for tiered policies, else the
  // cached rows over the rows `full` would hold (prompt + fed tokens).
  static double KvFraction(const KvStats& kv, int full_rows) {
    if (kv.host_tokens > 0) return kv.resident_fraction;
    double kept = 0;
    for (int k : kv.kept_tokens) kept += k;
    if (kv.kept_tokens.empty() || full_rows <= 0) return 1.0;
    return kept / kv.kept_tokens.size() / full_rows;
  }

  // The share of (layer, KV head) pairs whose kept rows hold every position of `needle`; layers
  // that kept everything count as holding it.
  // Tiered: per decode step, the share of sparse (layer, KV head) pairs that attended over every
  // page holding the answer's tokens (the pages the copy needs), to two decimals.
  static std::vector<double> NeedleResident(const DecodeResult& r,
                                            const std::vector<int32_t>& needle, int page_size) {
    std::vector<int32_t> pages;
    for (int32_t pos : needle) pages.push_back(pos / page_size);
    std::vector<double> out;
    for (const auto& step : r.residency) {
      int pairs = 0, resident = 0;
      for (const auto& layer : step) {
        for (const std::vector<int32_t>& head : layer) {
          ++pairs;
          resident += std::all_of(pages.begin(), pages.end(), [&](int32_t p) {
            return std::binary_search(head.begin(), head.end(), p);
          });
        }
      }
      if (pairs > 0) out.push_back(std::round(100.0 * resident / pairs) / 100.0);
    }
    return out;
  }

  static double NeedleKept(const DecodeResult& r, const std::vector<int32_t>& needle) {
    int pairs = 0, kept = 0;
    const int heads = r.retained.empty()
                          ? 0
                          : static_cast<int>(std::max_element(r.retained.begin(), r.retained.end(),
                                                              [](const auto& a, const auto& b) {
                                                                return a.size() < b.size();
                                                              })
                                                 ->size());
    for (const auto& layer : r.retained) {
      for (int h = 0; h < heads; ++h) {
        ++pairs;
        if (layer.empty()) {
          ++kept;
          continue;
        }
        const std::set<int32_t> rows(layer[h].begin(), layer[h].end());
        kept +=
            std::all_of(needle.begin(), needle.end(), [&](int32_t p) { return rows.contains(p); })
                ? 1
                : 0;
      }
    }
    return pairs ? static_cast<double>(kept) / pairs : 1.0;
  }

  // `full` is the reference of agreement and fidelity: first, and evaluated even when not asked.
  std::vector<EvalConfig> WithFullFirst() const {
    std::vector<EvalConfig> configs = {*ParseEvalConfig("full")};
    for (const EvalConfig& c : configs_) {
      if (c.label != "full") configs.push_back(c);
    }
    return configs;
  }

  absl::Status Ruler(const std::string& task, int length, int index) {
    const std::string id = absl::StrCat("ruler/", task, "/", length, "/", index);
    if (!o_.self_check && done_.contains(id)) return absl::OkStatus();
    const TaskSpec spec{.task = task, .target_tokens = length, .index = index, .seed = 0};
    auto prompt = BuildTaskPrompt(*model_.tokenizer, model_.chat_template, spec);
    if (!prompt.ok()) return prompt.status();
    if (o_.self_check) {
      return Check(absl::StrCat(task, " ", length, "/", index), prompt->ids, prompt->answer_tokens);
    }
    auto outcome =
        EvaluatePrompt(backend_, pool_, prompt->ids, configs_, prompt->answer_tokens, Eos());
    if (!outcome.ok()) return outcome.status();
    json results = json::object();
    std::vector<std::string> summary;
    const int n = static_cast<int>(prompt->ids.size());
    // The first reference's tokens: whether a compressing policy kept them (investigation).
    const std::vector<int32_t> needle =
        ReferencePositions(*model_.tokenizer, prompt->ids, prompt->references.front());
    for (const EvalConfig& c : configs_) {
      if (!outcome->results.contains(c.label)) continue;  // budget covers the prompt
      const DecodeResult& r = outcome->results.at(c.label);
      json j = ResultJson(r, *model_.tokenizer);
      const double score = ReferenceScore(j.at("text"), prompt->references);
      j["score"] = score;
      j["correct"] = score == 1.0;
      j["kv_fraction"] = KvFraction(r.kv, n + static_cast<int>(r.tokens.size()) - 1);
      if (!r.retained.empty() && !needle.empty()) j["needle_kept"] = NeedleKept(r, needle);
      // Not for fastkv_freekv: its host rows are reordered per head, so pages are not positions.
      if (!r.residency.empty() && !needle.empty() &&
          KindOf(c.options) != KvPolicyKind::kFastKvFreeKv) {
        const std::vector<double> steps =
            NeedleResident(r, needle, TieredOptionsOf(c.options)->page_size);
        double sum = 0;
        for (double x : steps) sum += x;
        j["needle_resident"] = steps.empty() ? 1.0 : sum / static_cast<double>(steps.size());
        j["needle_resident_steps"] = steps;
      }
      if (r.kv.host_tokens > 0) {
        j["resident_fraction"] = r.kv.resident_fraction;
        j["step_correction_rate"] = r.kv.step_correction_rate;
      }
      results[c.label] = std::move(j);
      summary.push_back(absl::StrCat(c.label, score == 1.0 ? " ok" : (score > 0 ? " ~" : " x")));
    }
    std::cerr << absl::StrFormat("%s %d/%d (%d tokens, %s): %s [%s]\n", task, length, index, n,
                                 prompt->variant, absl::StrJoin(summary, ", "),
                                 PrefillJson(*outcome).dump());
    Record({{"type", "ruler"},
            {"key_id", id},
            {"task", task},
            {"target_tokens", length},
            {"index", index},
            {"variant", prompt->variant},
            {"prompt_tokens", n},
            {"references", prompt->references},
            {"depths", prompt->depth_percent},
            {"needle_positions", needle},
            {"prefill_ms", PrefillJson(*outcome)},
            {"results", results}});
    return absl::OkStatus();
  }

  // Teacher-forced fidelity on document `doc`: `context` tokens of prompt, then the next
  // fidelity_positions tokens fed one by one; each configuration's distributions against full's.
  absl::Status Fidelity(int context, int doc) {
    const std::string id = absl::StrCat("fidelity/", context, "/", doc);
    if (o_.self_check || done_.contains(id)) return absl::OkStatus();
    const int scored = o_.fidelity_positions;
    auto ids = FidelityDocument(*model_.tokenizer, doc, context + scored);
    if (!ids.ok()) return ids.status();
    const std::span<const int32_t> prompt(ids->data(), context);
    const std::span<const int32_t> next(ids->data() + context, scored);
    std::vector<std::vector<double>> full_logp;  // per scored position
    std::vector<int32_t> full_greedy;
    json results = json::object();
    std::vector<std::string> summary;
    std::map<std::string, PromptOutcome::Prefill> prefills;
    auto visit = [&](const EvalConfig& c, const KvPolicyOptions& options,
                     const SharedPrefill& prefill) -> absl::Status {
      const bool is_full = c.label == "full";
      auto run = PrefilledConfig::Create(backend_, pool_, prefill, options, c.experiment);
      if (!run.ok()) return run.status();
      FidelityTally tally;
      std::vector<float> logits = prefill.logits;
      for (int i = 0; i < scored; ++i) {
        if (i > 0) {
          KVSERVE_RETURN_IF_ERROR((*run)->Step(next[i - 1], &logits));
        }
        if (is_full) {
          full_logp.push_back(LogSoftmax(logits));
          tally.Add(true, 0.0);
        } else {
          const std::vector<double>& ref = full_logp[i];
          const int32_t ref_top =
              static_cast<int32_t>(std::max_element(ref.begin(), ref.end()) - ref.begin());
          tally.Add(ArgMax(logits) == ref_top, KlDivergence(ref, logits));
        }
      }
      json j = {{"positions", tally.positions},
                {"top1_equal", tally.top1_equal},
                {"kl_mean", tally.kl_sum / tally.positions},
                {"kl_max", tally.kl_max},
                {"kv_fraction", KvFraction((*run)->Stats(), context + scored - 1)}};
      const KvStats stats = (*run)->Stats();
      if (stats.host_tokens > 0) j["step_correction_rate"] = stats.step_correction_rate;
      if (o_.fidelity_greedy > 0) {
        // The configuration's own variant (+mad, dN, ...), as the teacher-forced run above.
        auto greedy = DecodeFromSharedPrefill(backend_, pool_, prefill, options, o_.fidelity_greedy,
                                              /*eos_id=*/-1, c.experiment);
        if (!greedy.ok()) return greedy.status();
        if (is_full) full_greedy = greedy->tokens;
        j["greedy_agree"] = CommonPrefix(full_greedy, greedy->tokens);
        j["greedy_tokens"] = o_.fidelity_greedy;
      }
      summary.push_back(absl::StrFormat("%s %.3f/%.4f", c.label,
                                        static_cast<double>(tally.top1_equal) / tally.positions,
                                        tally.kl_sum / tally.positions));
      results[c.label] = std::move(j);
      return absl::OkStatus();
    };
    const std::vector<EvalConfig> configs = WithFullFirst();
    if (auto s = ForEachConfig(backend_, pool_, prompt, configs, visit, &prefills); !s.ok()) {
      return s;
    }
    json prefill_ms = json::object();
    for (const auto& [name, p] : prefills) prefill_ms[name] = p.ms;
    std::cerr << absl::StrFormat("fidelity %d/%d: %s [%s]\n", context, doc,
                                 absl::StrJoin(summary, ", "), prefill_ms.dump());
    Record({{"type", "fidelity"},
            {"key_id", id},
            {"doc", doc},
            {"context_tokens", context},
            {"scored_positions", scored},
            {"prefill_ms", prefill_ms},
            {"results", results}});
    return absl::OkStatus();
  }

  absl::Status Passkey(int length, int depth, int seed) {
    const std::string id = absl::StrCat("passkey/", length, "/", depth, "/", seed);
    if (!o_.self_check && done_.contains(id)) return absl::OkStatus();
    const PasskeySpec spec{
        .target_tokens = length,
        .depth_percent = depth,
        .seed = seed,
        .format = o_.passkey_format == "chat" ? PromptFormat::kChat : PromptFormat::kPlain};
    auto prompt = BuildPasskeyPrompt(*model_.tokenizer, model_.chat_template, spec);
    if (!prompt.ok()) return prompt.status();
    if (o_.self_check) {
      return Check(absl::StrCat("passkey ", length, "/", depth, "%/seed ", seed), prompt->ids,
                   o_.passkey_tokens);
    }
    auto outcome = EvaluatePrompt(backend_, pool_, prompt->ids, configs_, o_.passkey_tokens, Eos());
    if (!outcome.ok()) return outcome.status();
    json results = json::object();
    std::vector<std::string> summary;
    for (const EvalConfig& c : configs_) {
      if (!outcome->results.contains(c.label)) continue;  // budget covers the prompt
      const DecodeResult& r = outcome->results.at(c.label);
      json j = ResultJson(r, *model_.tokenizer);
      const bool correct = PasskeyCorrect(j.at("text"), prompt->key);
      j["correct"] = correct;
      results[c.label] = std::move(j);
      summary.push_back(absl::StrCat(c.label, correct ? " ok" : " x"));
    }
    std::cerr << absl::StrFormat("passkey %d/%d%%/seed %d (%d tokens, key %s): %s [%s]\n", length,
                                 depth, seed, prompt->ids.size(), prompt->key,
                                 absl::StrJoin(summary, ", "), PrefillJson(*outcome).dump());
    Record({{"type", "passkey"},
            {"key_id", id},
            {"target_tokens", length},
            {"prompt_tokens", prompt->ids.size()},
            {"filler_blocks", prompt->filler_blocks},
            {"depth", depth},
            {"seed", seed},
            {"key", prompt->key},
            {"prefill_ms", PrefillJson(*outcome)},
            {"results", results}});
    return absl::OkStatus();
  }

  absl::Status Agreement(const AgreementSource& source) {
    const std::string id = absl::StrCat("agreement/", source.path, "/", source.target_tokens);
    if (!o_.self_check && done_.contains(id)) return absl::OkStatus();
    std::ifstream in(source.path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", source.path));
    std::stringstream text;
    text << in.rdbuf();
    auto prompt = BuildAgreementPrompt(*model_.tokenizer, model_.chat_template, text.str(),
                                       source.target_tokens);
    if (!prompt.ok()) return prompt.status();
    if (o_.self_check) {
      return Check(absl::StrCat("agreement ", source.path), prompt->ids, o_.agreement_tokens);
    }
    // `full` is the reference: evaluated even when not asked for.
    std::vector<EvalConfig> configs = configs_;
    const bool has_full = std::any_of(configs.begin(), configs.end(),
                                      [](const EvalConfig& c) { return c.label == "full"; });
    if (!has_full) configs.insert(configs.begin(), *ParseEvalConfig("full"));
    auto outcome =
        EvaluatePrompt(backend_, pool_, prompt->ids, configs, o_.agreement_tokens, Eos());
    if (!outcome.ok()) return outcome.status();
    const std::vector<int32_t>& reference = outcome->results.at("full").tokens;
    json results = json::object();
    std::vector<std::string> summary;
    for (const EvalConfig& c : configs_) {
      if (!outcome->results.contains(c.label)) continue;  // budget covers the prompt
      const DecodeResult& r = outcome->results.at(c.label);
      json j = ResultJson(r, *model_.tokenizer);
      const double a = TokenAgreement(reference, r.tokens, o_.agreement_tokens);
      j["agreement"] = a;
      results[c.label] = std::move(j);
      summary.push_back(absl::StrFormat("%s %.2f", c.label, a));
    }
    std::cerr << absl::StrFormat("agreement %s (%d tokens): %s [%s]\n", source.path,
                                 prompt->ids.size(), absl::StrJoin(summary, ", "),
                                 PrefillJson(*outcome).dump());
    Record({{"type", "agreement"},
            {"key_id", id},
            {"source", source.path},
            {"target_tokens", source.target_tokens},
            {"prompt_tokens", prompt->ids.size()},
            {"document_lines", prompt->document_lines},
            {"compared_tokens", o_.agreement_tokens},
            {"prefill_ms", PrefillJson(*outcome)},
            {"results", results}});
    return absl::OkStatus();
  }

  int32_t Eos() const { return model_.tokenizer->eos_id(); }

  const Options& o_;
  LoadedModel& model_;
  Backend& backend_;
  std::vector<std::string> ConfigLabels() const {
    std::vector<std::string> labels;
    for (const EvalConfig& c : configs_) labels.push_back(c.label);
    return labels;
  }

  std::vector<EvalConfig> configs_;
  std::vector<AgreementSource> sources_;
  PagePool pool_;
  std::vector<json> records_;
  std::set<std::string> done_;
  std::ofstream log_;
  int self_check_failures_ = 0;
};

// Runs tools/eval/plot_accuracy.py on the log (or --report-from's).
int Plot(const Options& o) {
  const std::string log = o.report_from.empty() ? o.log : o.report_from;
  if (log.empty()) return Fail(absl::InvalidArgumentError("--plots needs --log or --report-from"));
  // Debian's interpreter, which has python3-matplotlib, ahead of whatever python3 is on PATH.
  const char* python = std::ifstream("/usr/bin/python3").good() ? "/usr/bin/python3" : "python3";
  const std::string command =
      absl::StrCat(python, " '", KVSERVE_PLOT_SCRIPT, "' --log '", log, "' --out '", o.plots, "'");
  if (std::system(command.c_str()) != 0) {
    return Fail(absl::InternalError(absl::StrCat("plotting failed: ", command)));
  }
  return 0;
}

int Run(const Options& o) {
  if (!o.report_from.empty()) {
    auto records = ReadLog(o.report_from);
    if (!records.ok()) return Fail(records.status());
    if (o.markdown.empty() && o.json_out.empty()) {
      std::cout << RenderMarkdown(*records);
      return 0;
    }
    if (auto s = WriteOutputs(o, *records); !s.ok()) return Fail(s);
    return o.plots.empty() ? 0 : Plot(o);
  }
  if (o.model.empty()) return Fail(absl::InvalidArgumentError("--model is required"));
  std::vector<EvalConfig> configs;
  for (const std::string& given : o.configs) {
    std::vector<std::string> labels = {given};
    if (given == "tiered") labels = TieredConfigLabels();
    if (given == "issue4") labels = DefaultConfigLabels();
    if (given == "suite") labels = o.quick ? QuickConfigLabels() : SuiteConfigLabels();
    for (const std::string& label : labels) {
      auto c = ParseEvalConfig(label);
      if (!c.ok()) return Fail(c.status());
      configs.push_back(*std::move(c));
    }
  }
  std::vector<AgreementSource> sources;
  if (o.agreement_prompts.empty()) {
    sources = DefaultAgreementSources();
  } else {
    for (const std::string& spec : o.agreement_prompts) {
      auto s = ParseAgreementSource(spec);
      if (!s.ok()) return Fail(s.status());
      sources.push_back(*std::move(s));
    }
  }
  auto model = LoadModel({.model = o.model});
  if (!model.ok()) return Fail(model.status());
  if (model->tokenizer == nullptr) {
    return Fail(absl::InvalidArgumentError("the model has no tokenizer: prompts are text"));
  }
  for (const EvalConfig& c : configs) {
    if (auto s = ValidateKvPolicyOptions(c.options, model->config); !s.ok()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("config ", c.label, ": ", s.message())));
    }
  }
  auto backend = CreateBackend(o.backend, model->config, std::move(model->weights), o.threads);
  if (!backend.ok()) return Fail(backend.status());
  if (auto s = ApplyKvDtype(**backend, o.kv_dtype); !s.ok()) return Fail(s);
  Evaluation eval(o, *model, **backend, std::move(configs), std::move(sources));
  if (auto s = eval.Run(); !s.ok()) return Fail(s);
  if (!o.plots.empty()) return Plot(o);
  return 0;
}

}  // namespace
}  // namespace kvserve::eval

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  kvserve::eval::Options o;
  std::vector<std::string> args(argv, argv + argc);
  o.command = absl::StrJoin(args, " ");
  CLI::App app{
      "kvserve-accuracy-eval: passkey retrieval and agreement with full for the KV "
      "policies, as JSON and Markdown"};
  app.add_option("--model", o.model, "GGUF file with a tokenizer (SmolLM2-135M-Instruct)");
  app.add_option("--backend", o.backend)->capture_default_str();
  app.add_option("--threads", o.threads, "CPU backend threads (0: one per hardware thread)");
  app.add_option("--kv-dtype", o.kv_dtype,
                 "how K and V are stored: f16, bf16 or f32 (empty: the backend's default)");
  app.add_option("--tasks", o.tasks,
                 "ruler, fidelity (issue 17's suite); passkey, agreement (the earlier ones)")
      ->delimiter(',')
      ->check(CLI::IsMember({"ruler", "fidelity", "passkey", "agreement"}))
      ->capture_default_str();
  app.add_option("--lengths", o.lengths, "passkey prompt lengths in tokens")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--depths", o.depths, "passkey depths in %")
      ->delimiter(',')
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_option("--seeds", o.seeds, "passkey seeds")->delimiter(',')->capture_default_str();
  app.add_option("--configs", o.configs,
                 "full, or NAME[-BUDGET|-rRATIO] for NAME in snapkv, fastkv, quest, freekv, "
                 "fastkv_freekv (suite: issue 17's sweep, or the quick set with --quick; issue4, "
                 "tiered: the earlier sets)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--passkey-format", o.passkey_format, "plain or chat")
      ->check(CLI::IsMember({"plain", "chat"}))
      ->capture_default_str();
  app.add_option("--passkey-tokens", o.passkey_tokens, "answer tokens at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--agreement-prompts", o.agreement_prompts,
                 "PATH:TOKENS documents (default: 8 license texts of 1000-4000 tokens)")
      ->delimiter(',');
  app.add_option("--agreement-tokens", o.agreement_tokens, "greedy tokens compared")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--log", o.log, "JSON lines, one per prompt, written as they finish");
  app.add_option("--json", o.json_out, "every record as one JSON array, at the end");
  app.add_option("--markdown", o.markdown, "the report, at the end");
  app.add_option("--report-from", o.report_from,
                 "render --markdown/--json (or Markdown to stdout) from a --log; runs nothing");
  app.add_flag("--resume", o.resume, "keep the prompts already in --log and append the rest");
  app.add_flag("--self-check", o.self_check,
               "instead of scoring, compare shared prefills with the real policies on the "
               "selected prompts (exit 1 on any difference)");
  app.add_option("--ruler-tasks", o.ruler_tasks, "the RULER-style tasks (tools/eval/ruler_tasks.h)")
      ->delimiter(',')
      ->check(CLI::IsMember(kvserve::eval::RulerTaskNames()))
      ->capture_default_str();
  app.add_option("--ruler-lengths", o.ruler_lengths, "task lengths in tokens (answer included)")
      ->delimiter(',')
      ->check(CLI::Range(256, 8192))
      ->capture_default_str();
  app.add_option("--cases", o.cases, "cases per task and length")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--only-cases", o.only_cases,
                 "run just these case indices (below --cases), e.g. the ones a policy lost")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fidelity-contexts", o.fidelity_contexts,
                 "fidelity prompt lengths (context + scored positions <= 8192)")
      ->delimiter(',')
      ->check(CLI::Range(64, 8192))
      ->capture_default_str();
  app.add_option("--fidelity-docs", o.fidelity_docs, "documents per context")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--fidelity-positions", o.fidelity_positions, "teacher-forced positions scored")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--fidelity-greedy", o.fidelity_greedy,
                 "greedy tokens compared with full's on fidelity prompts (0: none)")
      ->capture_default_str();
  app.add_flag("--quick", o.quick,
               "a few-minute subset for checking a change: niah_single and niah_multikey at 2K, 4 "
               "cases each, fidelity on one 2K document over 64 positions, the quick configs");
  app.add_option("--plots", o.plots,
                 "write PNG plots (accuracy and fidelity against KV kept, per task) to this "
                 "directory, from --log (python3 with matplotlib)");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    if (app.count("--ruler-tasks") == 0) o.ruler_tasks = {"niah_single", "niah_multikey"};
    if (app.count("--ruler-lengths") == 0) o.ruler_lengths = {2048};
    if (app.count("--cases") == 0) o.cases = 4;
    if (app.count("--fidelity-contexts") == 0) o.fidelity_contexts = {2048};
    if (app.count("--fidelity-docs") == 0) o.fidelity_docs = 1;
    if (app.count("--fidelity-positions") == 0) o.fidelity_positions = 64;
    if (app.count("--fidelity-greedy") == 0) o.fidelity_greedy = 16;
  }
  for (const int i : o.only_cases) {
    if (i >= o.cases) {
      std::cerr << "kvserve-accuracy-eval: --only-cases: case " << i << " is not below --cases "
                << o.cases << "\n";
      return 1;
    }
  }
  return kvserve::eval::Run(o);
}
