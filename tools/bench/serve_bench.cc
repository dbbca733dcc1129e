#include "tools/bench/serve_bench.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/bench/streamed_request.h"

namespace kvserve::bench {
namespace {

namespace pb = kvserve::v1;
using Clock = std::chrono::steady_clock;

pb::GenerateRequest ToProto(const BenchRequest& r, const ServeBenchOptions& o) {
  pb::GenerateRequest p;
  if (!r.prompt_ids.empty()) {
    p.mutable_token_ids()->mutable_ids()->Add(r.prompt_ids.begin(), r.prompt_ids.end());
  } else {
    p.set_text(r.prompt_text);
  }
  p.mutable_sampling()->set_max_new_tokens(static_cast<uint32_t>(r.output_len));
  p.mutable_sampling()->set_temperature(0.0f);
  p.mutable_sampling()->set_ignore_eos(o.ignore_eos);
  SetKvPolicy(r.kv_policy, o.kv_budget, o.kv_sink, o.kv_recent, *p.mutable_kv_policy());
  return p;
}

template <typename Options>
void SetSizes(int budget, int sink, int recent, Options& m) {
  if (budget > 0) m.set_budget(budget);
  if constexpr (requires { m.set_sink(sink); }) {
    if (sink > 0) m.set_sink(sink);
    if (recent > 0) m.set_recent(recent);
  }
}

}  // namespace

void SetKvPolicy(const std::string& policy, int budget, int sink, int recent, pb::KvPolicy& kv) {
  if (policy == "full") {
    kv.mutable_full();
  } else if (policy == "snapkv") {
    SetSizes(budget, sink, recent, *kv.mutable_snapkv());
  } else if (policy == "fastkv") {
    SetSizes(budget, sink, recent, *kv.mutable_fastkv());
  } else if (policy == "quest") {
    SetSizes(budget, sink, recent, *kv.mutable_quest());
  } else if (policy == "freekv") {
    SetSizes(budget, sink, recent, *kv.mutable_freekv());
  } else if (policy == "fastkv_freekv") {
    SetSizes(budget, sink, recent, *kv.mutable_fastkv_freekv());
  } else {
    kv.set_name(policy);
  }
}

namespace {

// Linear interpolation between closest ranks, as numpy.percentile (which vLLM uses).
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t low = static_cast<size_t>(std::floor(rank));
  const size_t high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - static_cast<double>(low));
}

double Tpot(const StreamedRequestTiming& t) {
  return t.tokens > 1 ? (t.e2e_ms - t.ttft_ms) / (t.tokens - 1) : 0.0;
}

// One line, redrawn in place: requests done of all, failures, elapsed time.
class ProgressBar {
 public:
  ProgressBar(int total, bool enabled) : total_(total), enabled_(enabled) {}
  void Update(int done, int failed, double elapsed_s) {
    if (!enabled_) return;
    constexpr int kWidth = 40;
    const int filled = total_ > 0 ? done * kWidth / total_ : kWidth;
    std::fprintf(stderr, "\r[%s%s] %d/%d requests, %d failed, %.1f s",
                 std::string(filled, '=').c_str(), std::string(kWidth - filled, ' ').c_str(), done,
                 total_, failed, elapsed_s);
    if (done == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  int total_;
  bool enabled_;
};

}  // namespace

std::vector<double> ArrivalTimes(int count, double request_rate, double burstiness, uint64_t seed) {
  std::vector<double> times(count, 0.0);
  if (!std::isfinite(request_rate)) return times;
  // Gamma inter-arrival gaps with mean 1/rate: shape = burstiness, scale = 1/(rate*burstiness).
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gap(burstiness, 1.0 / (request_rate * burstiness));
  double t = 0;
  for (int i = 0; i < count; ++i) {
    times[i] = t;
    t += gap(rng);
  }
  return times;
}

absl::StatusOr<std::map<std::string, double>> ParseGoodput(const std::vector<std::string>& args) {
  std::map<std::string, double> slos;
  for (const std::string& arg : args) {
    const size_t colon = arg.find(':');
    double ms = 0;
    const std::string metric = arg.substr(0, colon);
    if (colon == std::string::npos || !absl::SimpleAtod(arg.substr(colon + 1), &ms) || ms <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--goodput \"", arg, "\": want METRIC:MS with a positive MS"));
    }
    if (metric != "ttft" && metric != "tpot" && metric != "e2el") {
      return absl::InvalidArgumentError(
          absl::StrCat("--goodput \"", arg, "\": the metric is ttft, tpot or e2el"));
    }
    slos[metric] = ms;
  }
  return slos;
}

void AddLatencyStats(nlohmann::json& out, const std::string& metric, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const double n = static_cast<double>(samples.size());
  const double mean =
      samples.empty() ? 0 : std::accumulate(samples.begin(), samples.end(), 0.0) / n;
  double var = 0;
  for (double s : samples) var += (s - mean) * (s - mean);
  out["mean_" + metric + "_ms"] = mean;
  out["median_" + metric + "_ms"] = Percentile(samples, 50);
  out["std_" + metric + "_ms"] = samples.empty() ? 0 : std::sqrt(var / n);
  for (int p : {50, 90, 99}) {
    out[absl::StrCat("p", p, "_", metric, "_ms")] = Percentile(samples, p);
  }
}

nlohmann::json RunServeBench(const std::vector<std::unique_ptr<pb::Inference::Stub>>& stubs,
                             const std::vector<BenchRequest>& requests,
                             const ServeBenchOptions& o) {
  const int n = static_cast<int>(requests.size());
  const std::vector<double> arrivals =
      ArrivalTimes(n, o.request_rate, o.burstiness, o.seed ^ 0xa77a);
  std::vector<StreamedRequestTiming> timings(n);
  std::vector<double> start_s(n, 0);

  std::mutex mu;
  std::condition_variable slot_freed;
  int in_flight = 0, max_in_flight = 0, done = 0, failed = 0;
  ProgressBar bar(n, o.progress);

  const auto start = Clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(arrivals[i])));
    {
      std::unique_lock lock(mu);
      slot_freed.wait(lock,
                      [&] { return o.max_concurrency <= 0 || in_flight < o.max_concurrency; });
      ++in_flight;
      max_in_flight = std::max(max_in_flight, in_flight);
    }
    start_s[i] = elapsed();
    threads.emplace_back([&, i] {
      timings[i] =
          RunStreamedRequest(*stubs[i % stubs.size()], ToProto(requests[i], o), o.timeout_s);
      std::lock_guard lock(mu);
      --in_flight;
      ++done;
      failed += timings[i].ok ? 0 : 1;
      bar.Update(done, failed, elapsed());
      slot_freed.notify_one();
    });
  }
  for (auto& t : threads) t.join();
  const double duration = elapsed();

  std::vector<double> ttft, tpot, itl, e2el;
  std::map<std::string, int> errors;
  int completed = 0, good = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  std::map<std::string, std::vector<const StreamedRequestTiming*>> per_policy;
  for (int i = 0; i < n; ++i) {
    const StreamedRequestTiming& t = timings[i];
    if (!t.ok) {
      ++errors[t.error];
      continue;
    }
    ++completed;
    input_tokens += t.prompt_tokens;
    output_tokens += t.tokens;
    ttft.push_back(t.ttft_ms);
    e2el.push_back(t.e2e_ms);
    if (t.tokens > 1) tpot.push_back(Tpot(t));
    itl.insert(itl.end(), t.itl_ms.begin(), t.itl_ms.end());
    per_policy[requests[i].kv_policy.empty() ? "default" : requests[i].kv_policy].push_back(&t);
    const auto within = [&](const char* metric, double value) {
      const auto slo = o.goodput.find(metric);
      return slo == o.goodput.end() || value <= slo->second;
    };
    good += within("ttft", t.ttft_ms) && within("tpot", Tpot(t)) && within("e2el", t.e2e_ms);
  }

  // Output tokens per whole second of the run, the busiest second's count (vLLM's
  // max_output_tokens_per_s).
  std::vector<int64_t> per_second(static_cast<size_t>(duration) + 1, 0);
  for (int i = 0; i < n; ++i) {
    const StreamedRequestTiming& t = timings[i];
    if (!t.ok || t.tokens == 0) continue;
    double at_ms = t.ttft_ms;
    ++per_second[std::min(per_second.size() - 1,
                          static_cast<size_t>((start_s[i] * 1000 + at_ms) / 1000))];
    for (double gap : t.itl_ms) {
      at_ms += gap;
      ++per_second[std::min(per_second.size() - 1,
                            static_cast<size_t>((start_s[i] * 1000 + at_ms) / 1000))];
    }
  }

  nlohmann::json out = {
      {"duration", duration},
      {"completed", completed},
      {"failed", n - completed},
      {"total_input_tokens", input_tokens},
      {"total_output_tokens", output_tokens},
      {"request_throughput", completed / duration},
      {"request_goodput",
       o.goodput.empty() ? nlohmann::json(nullptr) : nlohmann::json(good / duration)},
      {"output_throughput", output_tokens / duration},
      {"total_token_throughput", (input_tokens + output_tokens) / duration},
      {"max_output_tokens_per_s", *std::max_element(per_second.begin(), per_second.end())},
      {"max_concurrent_requests", max_in_flight},
  };
  AddLatencyStats(out, "ttft", ttft);
  AddLatencyStats(out, "tpot", tpot);
  AddLatencyStats(out, "itl", itl);
  AddLatencyStats(out, "e2el", e2el);
  if (!errors.empty()) out["errors"] = errors;
  nlohmann::json policies = nlohmann::json::object();
  for (const auto& [policy, list] : per_policy) {
    std::vector<double> p_ttft, p_tpot, p_e2el;
    int64_t tokens = 0;
    for (const StreamedRequestTiming* t : list) {
      p_ttft.push_back(t->ttft_ms);
      p_e2el.push_back(t->e2e_ms);
      if (t->tokens > 1) p_tpot.push_back(Tpot(*t));
      tokens += t->tokens;
    }
    nlohmann::json j = {{"completed", list.size()}, {"output_throughput", tokens / duration}};
    AddLatencyStats(j, "ttft", p_ttft);
    AddLatencyStats(j, "tpot", p_tpot);
    AddLatencyStats(j, "e2el", p_e2el);
    policies[policy] = j;
  }
  out["per_kv_policy"] = policies;
  return out;
}

}  // namespace kvserve::bench
