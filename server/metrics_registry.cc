#include "server/metrics_registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "server/prometheus_text.h"

namespace kvserve::metrics {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "kvserve metrics registry: %s\n", message.c_str());
  std::abort();
}

}  // namespace

void Counter::Increment(double v) {
  if (!(v >= 0.0)) return;  // counters only go up; also drops NaN
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds) : upper_bounds_(std::move(upper_bounds)) {
  std::erase_if(upper_bounds_, [](double b) { return std::isnan(b) || b == INFINITY; });
  std::sort(upper_bounds_.begin(), upper_bounds_.end());
  upper_bounds_.erase(std::unique(upper_bounds_.begin(), upper_bounds_.end()), upper_bounds_.end());
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1);
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // The first bound with v <= bound; past the last one is the +Inf bucket.
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
  }
  return total;
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> counts(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

struct Registry::Family {
  std::string name;
  std::string help;
  Type type;
  struct Child {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::vector<Child> children;

  Child* Find(const Labels& labels) {
    for (Child& c : children) {
      if (c.labels == labels) return &c;
    }
    return nullptr;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

const char* Registry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& help, Type type,
                                      const Labels& labels) {
  if (!IsValidMetricName(name)) Die("invalid metric name '" + name + "'");
  for (const auto& [label, value] : labels) {
    if (!IsValidLabelName(label) || (type == Type::kHistogram && label == "le")) {
      Die("metric " + name + ": invalid label name '" + label + "'");
    }
  }
  for (auto& family : families_) {
    if (family->name != name) continue;
    if (family->type != type) {
      Die("metric " + name + " added as " + TypeName(type) + " but is a " + TypeName(family->type));
    }
    return *family;
  }
  auto family = std::make_unique<Family>();
  family->name = name;
  family->help = help;
  family->type = type;
  families_.push_back(std::move(family));
  return *families_.back();
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(name, help, Type::kCounter, labels);
  if (Family::Child* child = family.Find(labels)) return *child->counter;
  family.children.push_back({.labels = labels, .counter = std::make_unique<Counter>()});
  return *family.children.back().counter;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(name, help, Type::kGauge, labels);
  if (Family::Child* child = family.Find(labels)) return *child->gauge;
  family.children.push_back({.labels = labels, .gauge = std::make_unique<Gauge>()});
  return *family.children.back().gauge;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> upper_bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(name, help, Type::kHistogram, labels);
  if (Family::Child* child = family.Find(labels)) return *child->histogram;
  family.children.push_back(
      {.labels = labels, .histogram = std::make_unique<Histogram>(std::move(upper_bounds))});
  return *family.children.back().histogram;
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Serialize() {
  std::lock_guard collect(collect_mu_);
  // Hooks run without mu_ held: they may set gauges or even add metrics.
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mu_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();

  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& family : families_) {
    out += "# HELP " + family->name + " " + EscapeHelp(family->help) + "\n";
    out += "# TYPE " + family->name + " " + TypeName(family->type) + "\n";
    for (const Family::Child& child : family->children) {
      const std::string labels = FormatLabels(child.labels);
      switch (family->type) {
        case Type::kCounter:
          out += family->name + labels + " " + FormatValue(child.counter->value()) + "\n";
          break;
        case Type::kGauge:
          out += family->name + labels + " " + FormatValue(child.gauge->value()) + "\n";
          break;
        case Type::kHistogram: {
          const Histogram& h = *child.histogram;
          // Sum before counts: an observation racing with this snapshot shows in the counts
          // rather than only in the sum.
          const double sum = h.sum();
          const std::vector<uint64_t> counts = h.CumulativeCounts();
          Labels with_le = child.labels;
          with_le.emplace_back("le", "");
          for (size_t i = 0; i < counts.size(); ++i) {
            with_le.back().second =
                i < h.upper_bounds().size() ? FormatValue(h.upper_bounds()[i]) : "+Inf";
            out += family->name + "_bucket" + FormatLabels(with_le) + " " +
                   std::to_string(counts[i]) + "\n";
          }
          out += family->name + "_sum" + labels + " " + FormatValue(sum) + "\n";
          out += family->name + "_count" + labels + " " + std::to_string(counts.back()) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace kvserve::metrics
