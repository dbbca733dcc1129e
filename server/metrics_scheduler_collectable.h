#pragma once

#include <atomic>
#include <vector>

#include "engine/scheduler/engine_core.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace kvserve::server {

// The scheduler's state as Prometheus metrics, read from EngineCore::status() at each scrape (so a
// gauge is never stale): kvserve_num_requests_running/_waiting, kvserve_kv_cache_usage_ratio,
// kvserve_kv_host_usage_ratio and the counter kvserve_num_preemptions_total. Before a scheduler is
// set (model loading) every value is 0.
class SchedulerCollectable : public prometheus::Collectable {
 public:
  // `scheduler` must outlive its use here: set it back to null before destroying it.
  void SetScheduler(const EngineCore* scheduler) { scheduler_.store(scheduler); }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::atomic<const EngineCore*> scheduler_{nullptr};
};

}  // namespace kvserve::server
