#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvserve::metrics {

// Pieces of the Prometheus text exposition format 0.0.4.

// A metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. A label name: [a-zA-Z_][a-zA-Z0-9_]*, not "__" first.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

// HELP text escapes backslash and newline; label values also escape the double quote.
std::string EscapeHelp(std::string_view help);
std::string EscapeLabelValue(std::string_view value);

// The shortest text that parses back to `v`; "+Inf", "-Inf", "NaN" for the special values.
std::string FormatValue(double v);

// `{a="x",b="y"}`, or "" without labels.
std::string FormatLabels(const std::vector<std::pair<std::string, std::string>>& labels);

}  // namespace kvserve::metrics
