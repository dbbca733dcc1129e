#include "engine/model/special_token_splitter.h"

#include <algorithm>

namespace kvserve {

SpecialTokenSplitter::SpecialTokenSplitter(std::vector<std::pair<std::string, int32_t>> tokens)
    : tokens_(std::move(tokens)) {
  for (int i = 0; i < static_cast<int>(tokens_.size()); ++i) {
    if (tokens_[i].first.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].first[0])].push_back(i);
  }
  for (std::vector<int>& candidates : by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(), [&](int a, int b) {
      return tokens_[a].first.size() > tokens_[b].first.size();
    });
  }
}

std::vector<SpecialTokenSplitter::Fragment> SpecialTokenSplitter::Split(
    std::string_view text) const {
  std::vector<Fragment> fragments;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    int match = -1;
    for (const int i : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      if (text.substr(pos).starts_with(tokens_[i].first)) {
        match = i;
        break;
      }
    }
    if (match < 0) {
      ++pos;
      continue;
    }
    if (pos > plain_start) fragments.push_back({text.substr(plain_start, pos - plain_start), -1});
    fragments.push_back({text.substr(pos, tokens_[match].first.size()), tokens_[match].second});
    pos += tokens_[match].first.size();
    plain_start = pos;
  }
  if (text.size() > plain_start) fragments.push_back({text.substr(plain_start), -1});
  return fragments;
}

}  // namespace kvserve
