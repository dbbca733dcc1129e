#include "engine/scheduler/stop_matcher.h"

#include <algorithm>

namespace kvserve {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

bool StopMatcher::Push(std::string_view text, bool match, std::string* emit) {
  if (stops_.empty() || (!match && held_.empty())) {
    emit->append(text);
    return false;
  }
  held_.append(text);
  if (!match) {
    Flush(emit);
    return false;
  }
  // Earlier releases kept back every suffix that could start a stop string, so a match starts
  // inside held_.
  size_t first = std::string::npos;
  const std::string* which = nullptr;
  for (const std::string& stop : stops_) {
    const size_t at = held_.find(stop);
    if (at < first) {
      first = at;
      which = &stop;
    }
  }
  if (which != nullptr) {
    emit->append(held_, 0, first);
    held_.clear();
    matched_ = *which;
    return true;
  }
  const size_t keep = HeldPrefixLength();
  emit->append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return false;
}

void StopMatcher::Flush(std::string* emit) {
  emit->append(held_);
  held_.clear();
}

size_t StopMatcher::HeldPrefixLength() const {
  size_t keep = 0;
  for (const std::string& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, held_.size()); len > keep; --len) {
      if (held_.compare(held_.size() - len, len, stop, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}

}  // namespace kvserve
