#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvserve::testing {

// One sample line of a Prometheus text page: name{labels} value.
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;  // values unescaped
  double value = 0;
};

// A parsed /metrics page (text exposition format 0.0.4), independent of the code that wrote it.
struct MetricsPage {
  std::map<std::string, std::string> help;  // family -> HELP text (unescaped)
  std::map<std::string, std::string> type;  // family -> TYPE
  std::vector<MetricSample> samples;        // in page order

  // The value of the sample with exactly these labels, if present.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  // The sum over every sample of `name` whatever its labels (0 when none).
  double Sum(const std::string& name) const;
  // Samples of `name`, in page order.
  std::vector<MetricSample> Samples(const std::string& name) const;
};

// Strict: a malformed line, a bad escape or an unparsable value is an error naming the line.
absl::StatusOr<MetricsPage> ParseMetricsPage(const std::string& text);

}  // namespace kvserve::testing
