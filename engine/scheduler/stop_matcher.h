#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvserve {

// Finds a request's stop strings in its streamed text. Text that could still be the start of a stop
// string is held back until it cannot; on a match only the text before it is released.
class StopMatcher {
 public:
  StopMatcher() = default;
  // Empty strings are ignored (requests with one are rejected at admission).
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds `text` and appends to `*emit` what can no longer be part of a stop string. With `match`
  // false (min_new_tokens not reached) nothing is held or matched. True when a stop string
  // completed: `*emit` then ends right before it and matched() names it.
  bool Push(std::string_view text, bool match, std::string* emit);

  // Appends the held-back text (the request ended without completing a stop string).
  void Flush(std::string* emit);

  const std::string& matched() const { return matched_; }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of some stop string.
  size_t HeldPrefixLength() const;

  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
};

}  // namespace kvserve
