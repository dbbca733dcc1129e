#pragma once

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "kvserve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/bench/bench_dataset.h"

namespace kvserve::bench {

// An open-loop load test as `vllm bench serve` runs one: requests start at arrival times drawn
// from a gamma process of rate `request_rate` (shape `burstiness`; 1 = Poisson), at most
// `max_concurrency` in flight, each streamed to its end.
struct ServeBenchOptions {
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at once
  double burstiness = 1.0;
  int max_concurrency = 0;  // 0: unbounded
  uint64_t seed = 0;
  double timeout_s = 0;  // per request; 0: none
  bool ignore_eos = true;
  bool progress = false;                  // a progress bar on stderr
  std::map<std::string, double> goodput;  // "ttft" | "tpot" | "e2el" -> SLO in ms
  // KV options for the requests whose policy takes them (0: the server's default): the budget
  // for every policy but full; sink and recent tokens for quest, freekv and fastkv_freekv.
  int kv_budget = 0;
  int kv_sink = 0;
  int kv_recent = 0;
};

// Seconds from the start at which each of `count` requests is sent.
std::vector<double> ArrivalTimes(int count, double request_rate, double burstiness, uint64_t seed);

// "ttft:200 tpot:50": the --goodput SLOs; an unknown metric or a bad number is an error.
absl::StatusOr<std::map<std::string, double>> ParseGoodput(const std::vector<std::string>& args);

// Runs the requests and returns vLLM's result fields (duration, completed, failed,
// request/output/total token throughput, request_goodput, mean/median/std/p50/p90/p99 of ttft_ms,
// tpot_ms, itl_ms and e2el_ms, ...) plus a breakdown per KV policy.
nlohmann::json RunServeBench(
    const std::vector<std::unique_ptr<kvserve::v1::Inference::Stub>>& stubs,
    const std::vector<BenchRequest>& requests, const ServeBenchOptions& options);

// Mean, median, std and p50/p90/p99 of `samples` under vLLM's keys, e.g. mean_ttft_ms.
// The request's KV policy `policy` in the API's oneof form, with the budget, sink and recent the
// policy has (0: its default); an empty name leaves `kv` empty (the server's default), an unknown
// one goes as the flat form's name for the server to refuse.
void SetKvPolicy(const std::string& policy, int budget, int sink, int recent,
                 kvserve::v1::KvPolicy& kv);

void AddLatencyStats(nlohmann::json& out, const std::string& metric, std::vector<double> samples);

}  // namespace kvserve::bench
