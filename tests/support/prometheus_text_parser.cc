#include "tests/support/prometheus_text_parser.h"

#include <cstdlib>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace kvserve::testing {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':';
}

std::optional<double> ParseValue(const std::string& s) {
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// Unescapes \\, \n and (when `quotes`) \" ; nullopt on any other escape.
std::optional<std::string> Unescape(const std::string& s, bool quotes) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return std::nullopt;
    if (s[i] == '\\') {
      out += '\\';
    } else if (s[i] == 'n') {
      out += '\n';
    } else if (quotes && s[i] == '"') {
      out += '"';
    } else {
      return std::nullopt;
    }
  }
  return out;
}

absl::StatusOr<MetricSample> ParseSample(const std::string& line) {
  const auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat(why, " in line: ", line));
  };
  MetricSample sample;
  size_t i = 0;
  while (i < line.size() && IsNameChar(line[i])) ++i;
  sample.name = line.substr(0, i);
  if (sample.name.empty()) return bad("no metric name");
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return bad("bad label");
      }
      const std::string key = line.substr(i, eq - i);
      std::string raw;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) raw += line[j++];
        raw += line[j];
      }
      if (j >= line.size()) return bad("unterminated label value");
      auto value = Unescape(raw, /*quotes=*/true);
      if (!value) return bad("bad escape in label value");
      if (!sample.labels.emplace(key, *value).second) return bad("repeated label");
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return bad("unterminated labels");
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return bad("no value");
  std::istringstream rest(line.substr(i + 1));
  std::string value_text, timestamp, extra;
  rest >> value_text >> timestamp >> extra;
  if (!extra.empty()) return bad("trailing text");
  const auto value = ParseValue(value_text);
  if (!value) return bad("bad value");
  sample.value = *value;
  return sample;
}

}  // namespace

std::optional<double> MetricsPage::Value(const std::string& name,
                                         const std::map<std::string, std::string>& labels) const {
  for (const MetricSample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

double MetricsPage::Sum(const std::string& name) const {
  double total = 0;
  for (const MetricSample& s : samples) {
    if (s.name == name) total += s.value;
  }
  return total;
}

std::vector<MetricSample> MetricsPage::Samples(const std::string& name) const {
  std::vector<MetricSample> out;
  for (const MetricSample& s : samples) {
    if (s.name == name) out.push_back(s);
  }
  return out;
}

absl::StatusOr<MetricsPage> ParseMetricsPage(const std::string& text) {
  MetricsPage page;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const bool is_help = line[2] == 'H';
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      const std::string name = rest.substr(0, sp);
      const std::string body = sp == std::string::npos ? "" : rest.substr(sp + 1);
      if (is_help) {
        auto help = Unescape(body, /*quotes=*/false);
        if (!help) return absl::InvalidArgumentError(absl::StrCat("bad escape in line: ", line));
        page.help[name] = *help;
      } else {
        if (page.type.contains(name)) {
          return absl::InvalidArgumentError(absl::StrCat("second TYPE for ", name));
        }
        page.type[name] = body;
      }
      continue;
    }
    if (line[0] == '#') continue;  // a comment
    auto sample = ParseSample(line);
    if (!sample.ok()) return sample.status();
    page.samples.push_back(*std::move(sample));
  }
  return page;
}

}  // namespace kvserve::testing
