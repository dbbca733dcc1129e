#include "server/metrics_scheduler_collectable.h"

#include <string>

namespace kvserve::server {
namespace {

prometheus::MetricFamily OneValue(std::string name, std::string help, prometheus::MetricType type,
                                  double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {.name = std::move(name), .help = std::move(help), .type = type, .metric = {metric}};
}

double Ratio(int64_t used, int64_t total) {
  return total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0;
}

}  // namespace

std::vector<prometheus::MetricFamily> SchedulerCollectable::Collect() const {
  SchedulerStatus s;
  if (const EngineCore* scheduler = scheduler_.load()) s = scheduler->status();
  using prometheus::MetricType;
  return {
      OneValue("kvserve_num_requests_running", "Requests in the running batch.", MetricType::Gauge,
               s.running),
      OneValue("kvserve_num_requests_waiting", "Requests waiting to be scheduled.",
               MetricType::Gauge, s.waiting),
      OneValue("kvserve_kv_cache_usage_ratio",
               "Fraction of the device KV page pool in use (0 to 1).", MetricType::Gauge,
               Ratio(s.pages_used, s.pages_total)),
      OneValue("kvserve_kv_host_usage_ratio", "Fraction of the host KV page pool in use (0 to 1).",
               MetricType::Gauge, Ratio(s.host_pages_used, s.host_pages_total)),
      OneValue("kvserve_num_preemptions_total",
               "Sequences preempted (their KV freed, to be recomputed).", MetricType::Counter,
               static_cast<double>(s.preemptions_total)),
  };
}

}  // namespace kvserve::server
