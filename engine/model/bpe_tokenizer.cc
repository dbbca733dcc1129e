#include "engine/model/bpe_tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/model/utf8.h"

namespace kvserve {
namespace {

// GPT-2's bijection between bytes and printable codepoints: printable Latin-1 bytes stand for
// themselves, the other 68 bytes map in order to U+0100 onwards. Tokens are stored in this form.
struct ByteUnicodeTables {
  std::array<char32_t, 256> byte_to_cp;
  // Indexed by codepoint; -1 where no byte maps to it.
  std::array<int16_t, 256 + 68> cp_to_byte;
};

const ByteUnicodeTables& ByteUnicode() {
  static const ByteUnicodeTables tables = [] {
    ByteUnicodeTables t;
    t.cp_to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t.byte_to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
      t.cp_to_byte[t.byte_to_cp[b]] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

// A token's bytes: each codepoint of its byte-level form mapped back to its byte (a codepoint
// outside the mapping, which a well-formed vocab lacks, is kept as its UTF-8).
std::string ByteLevelToBytes(std::string_view token) {
  const ByteUnicodeTables& tables = ByteUnicode();
  std::string bytes;
  for (size_t pos = 0; pos < token.size();) {
    const Utf8Unit unit = DecodeUtf8(token, pos);
    const char32_t cp = unit.codepoint;
    if (unit.kind == Utf8Unit::Kind::kValid && cp < tables.cp_to_byte.size() &&
        tables.cp_to_byte[cp] >= 0) {
      bytes.push_back(static_cast<char>(tables.cp_to_byte[cp]));
    } else {
      bytes.append(token.substr(pos, unit.length));
    }
    pos += unit.length;
  }
  return bytes;
}

bool IsLiteral(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUserDefined;
}

}  // namespace

struct BpeTokenizer::Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

// A possible merge of the symbols at `left` and `right`; stale once either has changed, which
// the ids tell since every merge gives its left symbol a new (longer) token.
struct BpeTokenizer::Candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  int32_t left_id;
  int32_t right_id;
  int32_t result;
};

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(Options options) {
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  if (absl::Status status = tokenizer->Init(std::move(options)); !status.ok()) return status;
  return tokenizer;
}

absl::Status BpeTokenizer::Init(Options options) {
  const int32_t n = static_cast<int32_t>(options.tokens.size());
  if (n == 0) return absl::InvalidArgumentError("BPE tokenizer: empty vocabulary");
  if (!options.token_types.empty() && options.token_types.size() != options.tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("BPE tokenizer: ", options.token_types.size(),
                                                   " token types for ", n, " tokens"));
  }
  for (const auto& [name, id] : {std::pair{"bos", options.bos_id}, {"eos", options.eos_id}}) {
    if (id < -1 || id >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("BPE tokenizer: ", name, " id ", id, " outside the vocabulary of ", n));
    }
  }
  absl::StatusOr<BpePreTokenizer> pre = BpePreTokenizerFromName(options.pre);
  if (!pre.ok()) return pre.status();
  pre_ = *pre;
  bos_id_ = options.bos_id;
  eos_id_ = options.eos_id;
  add_bos_ = options.add_bos;

  types_.assign(n, TokenType::kNormal);
  for (int32_t id = 0; id < static_cast<int32_t>(options.token_types.size()); ++id) {
    const int32_t type = options.token_types[id];
    if (type < 0 || type > kMaxTokenType) {
      return absl::InvalidArgumentError(
          absl::StrCat("BPE tokenizer: token ", id, " has unknown type ", type));
    }
    types_[id] = static_cast<TokenType>(type);
  }

  // The first of duplicate token strings wins, as in the vocab's own order.
  absl::flat_hash_map<std::string_view, int32_t> ids;
  ids.reserve(n);
  for (int32_t id = 0; id < n; ++id) ids.emplace(options.tokens[id], id);

  const ByteUnicodeTables& tables = ByteUnicode();
  for (int b = 0; b < 256; ++b) {
    std::string text;
    AppendUtf8(tables.byte_to_cp[b], &text);
    const auto it = ids.find(text);
    byte_token_[b] = it == ids.end() ? -1 : it->second;
  }

  merges_.reserve(options.merges.size());
  for (int32_t rank = 0; rank < static_cast<int32_t>(options.merges.size()); ++rank) {
    const std::string& merge = options.merges[rank];
    // From 1: a left token may itself be a space.
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("BPE tokenizer: merge ", rank, " '", merge, "' is not 'LEFT RIGHT'"));
    }
    const std::string_view left = std::string_view(merge).substr(0, space);
    const std::string_view right = std::string_view(merge).substr(space + 1);
    const auto left_it = ids.find(left);
    const auto right_it = ids.find(right);
    const auto result_it = ids.find(std::string(left).append(right));
    if (left_it == ids.end() || right_it == ids.end() || result_it == ids.end()) {
      return absl::InvalidArgumentError(absl::StrCat("BPE tokenizer: merge ", rank, " '", merge,
                                                     "' names a token not in the vocabulary"));
    }
    const uint64_t key =
        (static_cast<uint64_t>(left_it->second) << 32) | static_cast<uint32_t>(right_it->second);
    // A repeated merge keeps its first (best) rank.
    merges_.try_emplace(key, Merge{rank, result_it->second});
  }

  std::vector<std::pair<std::string, int32_t>> literals;
  token_bytes_.resize(n);
  for (int32_t id = 0; id < n; ++id) {
    if (IsLiteral(types_[id])) {
      token_bytes_[id] = options.tokens[id];
      literals.emplace_back(options.tokens[id], id);
    } else {
      token_bytes_[id] = ByteLevelToBytes(options.tokens[id]);
    }
  }
  special_tokens_ = SpecialTokenSplitter(std::move(literals));
  return absl::OkStatus();
}

const BpeTokenizer::Merge* BpeTokenizer::FindMerge(int32_t left, int32_t right) const {
  const auto it = merges_.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeTokenizer::EncodePiece(std::string_view piece, std::vector<Symbol>& symbols,
                               std::vector<Candidate>& queue, std::vector<int32_t>& out) const {
  symbols.clear();
  for (const char byte : piece) {
    const int32_t id = byte_token_[static_cast<uint8_t>(byte)];
    if (id < 0) continue;
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  }
  if (symbols.empty()) return;
  // Lowest rank first; among equal ranks the leftmost, as Hugging Face merges.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  const auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* merge = FindMerge(symbols[left].id, symbols[right].id)) {
      queue.push_back(
          {merge->rank, left, right, symbols[left].id, symbols[right].id, merge->result});
      std::push_heap(queue.begin(), queue.end(), later);
    }
  };
  queue.clear();
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Candidate c = queue.back();
    queue.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.id != c.left_id || right.id != c.right_id) continue;
    left.id = c.result;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.id = -1;
    if (left.prev >= 0) consider(left.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  std::vector<Symbol> symbols;
  std::vector<Candidate> queue;
  for (const SpecialTokenSplitter::Fragment& fragment : special_tokens_.Split(text)) {
    if (fragment.token_id >= 0) {
      ids.push_back(fragment.token_id);
      continue;
    }
    for (const std::string_view piece : PreTokenize(pre_, fragment.text)) {
      EncodePiece(piece, symbols, queue, ids);
    }
  }
  return ids;
}

}  // namespace kvserve
