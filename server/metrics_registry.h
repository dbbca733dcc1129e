#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kvserve::metrics {

// A metric's constant labels, in the order they are printed.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing value (Prometheus counter). Lock-free.
class Counter {
 public:
  void Increment(double v = 1.0);  // negative or NaN increments are ignored
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (Prometheus gauge). Lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Increment(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets (Prometheus histogram). Lock-free: one bucket counter
// and the sum are updated per observation.
class Histogram {
 public:
  // `upper_bounds` are sorted and deduplicated; +Inf is implicit (a given +Inf is dropped).
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double v);  // NaN is ignored
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Cumulative counts per upper bound, the last one for +Inf (== the count of this snapshot).
  std::vector<uint64_t> CumulativeCounts() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf; not cumulative
  std::atomic<double> sum_{0.0};
};

// Metrics by family, serialized in the Prometheus text exposition format 0.0.4. Thread-safe;
// returned references stay valid for the registry's lifetime. Adding a name again with the same
// labels returns the existing metric; with other labels it joins the family (one HELP/TYPE).
// Registering a name as two different types, or an invalid metric or label name, is a programming
// error and aborts with a message.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& AddCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds, const Labels& labels = {});

  // Runs before each Serialize, in the order added (e.g. to refresh gauges from a status).
  void AddCollectHook(std::function<void()> hook);

  // Every family in the order first added, each sample as "name{labels} value".
  std::string Serialize();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family;
  Family& FamilyFor(const std::string& name, const std::string& help, Type type,
                    const Labels& labels);
  static const char* TypeName(Type type);

  std::mutex mu_;  // guards families_ and hooks_
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void()>> hooks_;
  std::mutex collect_mu_;  // one Serialize runs the hooks at a time
};

}  // namespace kvserve::metrics
