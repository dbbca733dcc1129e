#include "tools/bench/bench_dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace kvserve::bench {
namespace {

std::vector<int32_t> RandomIds(std::mt19937_64& rng, int length, int vocab_size) {
  std::uniform_int_distribution<int32_t> id(3, vocab_size - 1);  // past BOS/EOS/UNK
  std::vector<int32_t> ids(length);
  for (int32_t& t : ids) t = id(rng);
  return ids;
}

int UniformAround(std::mt19937_64& rng, int length, double ratio) {
  const int low = std::max(1, static_cast<int>(std::floor(length * (1.0 - ratio))));
  const int high = std::max(low, static_cast<int>(std::ceil(length * (1.0 + ratio))));
  return std::uniform_int_distribution<int>(low, high)(rng);
}

absl::StatusOr<std::vector<nlohmann::json>> ReadEntries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--dataset-path: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  std::vector<nlohmann::json> entries;
  const size_t first = all.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && all[first] == '[') {
    auto array = nlohmann::json::parse(all, nullptr, false);
    if (array.is_discarded() || !array.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON array"));
    }
    for (auto& e : array) entries.push_back(std::move(e));
    return entries;
  }
  int line_number = 0;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(all, '\n'))) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_discarded() || !entry.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": not a JSON object"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// A ShareGPT conversation's first human turn and the reply to it; false when it has none.
bool FirstExchange(const nlohmann::json& entry, std::string& prompt, std::string& reply) {
  const auto it = entry.find("conversations");
  if (it == entry.end() || !it->is_array()) return false;
  const auto& turns = *it;
  for (size_t i = 0; i + 1 < turns.size(); ++i) {
    const std::string from = turns[i].value("from", "");
    if ((from == "human" || from == "user") && turns[i].contains("value")) {
      prompt = turns[i]["value"].get<std::string>();
      reply = turns[i + 1].value("value", "");
      return !prompt.empty();
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<BenchRequest>> BuildDataset(const DatasetOptions& o, int vocab_size,
                                                       int context_length) {
  std::mt19937_64 rng(o.seed);
  std::vector<BenchRequest> requests;
  if (o.name == "random" || o.name == "long") {
    for (int i = 0; i < o.num_prompts; ++i) {
      BenchRequest r;
      if (o.name == "random") {
        r.input_len = UniformAround(rng, o.random_input_len, o.random_range_ratio);
        r.output_len = UniformAround(rng, o.random_output_len, o.random_range_ratio);
      } else {
        r.output_len = o.random_output_len;
        const int max_len = std::min(o.long_max_len, context_length - r.output_len);
        if (max_len < o.long_min_len) {
          return absl::InvalidArgumentError(
              absl::StrCat("--dataset-name long: the model's context (", context_length,
                           ") leaves room for prompts of at most ", max_len,
                           " tokens, under --long-min-len ", o.long_min_len));
        }
        r.input_len = std::uniform_int_distribution<int>(o.long_min_len, max_len)(rng);
      }
      if (o.fixed_output_len > 0) r.output_len = o.fixed_output_len;
      if (r.input_len + r.output_len > context_length) {
        return absl::InvalidArgumentError(
            absl::StrCat("request ", i, ": ", r.input_len, " prompt + ", r.output_len,
                         " output tokens exceed the model's context of ", context_length));
      }
      r.prompt_ids = RandomIds(rng, r.input_len, vocab_size);
      requests.push_back(std::move(r));
    }
    return requests;
  }
  if (o.name != "jsonl" && o.name != "sharegpt") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dataset-name: unknown \"", o.name, "\" (random, long, jsonl, sharegpt)"));
  }
  if (o.path.empty()) return absl::InvalidArgumentError("--dataset-path is required");
  auto entries = ReadEntries(o.path);
  if (!entries.ok()) return entries.status();
  std::shuffle(entries->begin(), entries->end(), rng);
  for (const nlohmann::json& e : *entries) {
    if (static_cast<int>(requests.size()) == o.num_prompts) break;
    BenchRequest r;
    std::string reply;
    if (e.contains("prompt") && e["prompt"].is_string()) {
      r.prompt_text = e["prompt"].get<std::string>();
      r.output_len = e.value("output_len", e.value("max_tokens", 128));
    } else if (FirstExchange(e, r.prompt_text, reply)) {
      r.output_len = std::clamp(static_cast<int>(reply.size() / 4), 4, 1024);
    } else {
      continue;  // vLLM skips conversations without an exchange too
    }
    if (o.fixed_output_len > 0) r.output_len = o.fixed_output_len;
    requests.push_back(std::move(r));
  }
  if (requests.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(o.path, ": no usable prompt"));
  }
  // Fewer entries than --num-prompts: cycle through them, as vLLM's samplers oversample.
  for (size_t i = 0; static_cast<int>(requests.size()) < o.num_prompts; ++i) {
    requests.push_back(requests[i]);
  }
  return requests;
}

absl::StatusOr<std::vector<std::pair<std::string, double>>> ParsePolicyMix(const std::string& mix) {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& part :
       std::vector<std::string>(absl::StrSplit(mix, ',', absl::SkipEmpty()))) {
    const std::vector<std::string> kv = absl::StrSplit(part, absl::MaxSplits(':', 1));
    double weight = 1;
    if (kv.size() == 2 && (!absl::SimpleAtod(kv[1], &weight) || !(weight > 0))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kv-policy-mix: \"", part, "\": the weight must be a positive number"));
    }
    out.emplace_back(kv[0], weight);
  }
  if (out.empty()) return absl::InvalidArgumentError("--kv-policy-mix is empty");
  return out;
}

void AssignPolicies(const std::vector<std::pair<std::string, double>>& mix, uint64_t seed,
                    std::vector<BenchRequest>& requests) {
  std::vector<double> weights;
  for (const auto& [name, w] : mix) weights.push_back(w);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  for (BenchRequest& r : requests) r.kv_policy = mix[pick(rng)].first;
}

}  // namespace kvserve::bench
