#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvserve {

// Cuts text at the literal text of special and added tokens (e.g. `<|im_start|>`) before the
// model's own tokenization sees it. Matches leftmost first and, among tokens starting at the same
// place, longest first, as Hugging Face's added-vocabulary matcher does.
class SpecialTokenSplitter {
 public:
  struct Fragment {
    std::string_view text;
    int32_t token_id;  // the matched token, or -1 for plain text between matches
  };

  SpecialTokenSplitter() = default;
  // (text, id) pairs; empty texts are ignored.
  explicit SpecialTokenSplitter(std::vector<std::pair<std::string, int32_t>> tokens);

  // Fragments in order; their texts concatenate to `text`. Plain fragments are never empty.
  std::vector<Fragment> Split(std::string_view text) const;

 private:
  std::vector<std::pair<std::string, int32_t>> tokens_;
  // Indices into tokens_ by first byte, longest first: only those can start at a given byte.
  std::array<std::vector<int>, 256> by_first_byte_;
};

}  // namespace kvserve
