#include "engine/model/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/model/utf8.h"

namespace kvserve {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// "<0xAB>" -> 0xAB.
std::optional<uint8_t> ParseByteToken(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  int value = 0;
  for (const char c : token.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return static_cast<uint8_t>(value);
}

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0;;) {
    const size_t found = text.find(from, pos);
    out.append(text.substr(pos, found - pos));
    if (found == std::string_view::npos) return out;
    out.append(to);
    pos = found + from.size();
  }
}

bool IsMergeable(TokenType type) {
  return type == TokenType::kNormal || type == TokenType::kUserDefined ||
         type == TokenType::kUndefined;
}

}  // namespace

struct SentencePieceTokenizer::Symbol {
  int32_t start;   // byte offset in the normalized text
  int32_t length;  // 0 once merged into its left neighbour
  int32_t id;      // -1: not a piece, falls back to bytes and never merges
  int32_t prev;
  int32_t next;
};

// A possible merge; stale once either symbol has changed, which their lengths tell since symbols
// only grow.
struct SentencePieceTokenizer::Candidate {
  float score;
  int32_t left;
  int32_t right;
  int32_t length;
  int32_t id;
};

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Create(
    Options options) {
  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer());
  if (absl::Status status = tokenizer->Init(std::move(options)); !status.ok()) return status;
  return tokenizer;
}

absl::Status SentencePieceTokenizer::Init(Options options) {
  const int32_t n = static_cast<int32_t>(options.tokens.size());
  if (n == 0) return absl::InvalidArgumentError("SentencePiece tokenizer: empty vocabulary");
  if (!options.scores.empty() && options.scores.size() != options.tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SentencePiece tokenizer: ", options.scores.size(), " scores for ", n, " tokens"));
  }
  if (!options.token_types.empty() && options.token_types.size() != options.tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SentencePiece tokenizer: ", options.token_types.size(), " token types for ",
                     n, " tokens"));
  }
  for (const auto& [name, id] :
       {std::pair{"bos", options.bos_id}, {"eos", options.eos_id}, {"unk", options.unk_id}}) {
    if (id < -1 || id >= n) {
      return absl::InvalidArgumentError(absl::StrCat("SentencePiece tokenizer: ", name, " id ", id,
                                                     " outside the vocabulary of ", n));
    }
  }
  bos_id_ = options.bos_id;
  eos_id_ = options.eos_id;
  unk_id_ = options.unk_id;
  add_bos_ = options.add_bos;
  add_space_prefix_ = options.add_space_prefix;
  scores_ = std::move(options.scores);
  scores_.resize(n, 0.0f);

  types_.resize(n);
  for (int32_t id = 0; id < n; ++id) {
    if (options.token_types.empty()) {
      types_[id] = id == bos_id_ || id == eos_id_       ? TokenType::kControl
                   : id == unk_id_                      ? TokenType::kUnknown
                   : ParseByteToken(options.tokens[id]) ? TokenType::kByte
                                                        : TokenType::kNormal;
      continue;
    }
    const int32_t type = options.token_types[id];
    if (type < 0 || type > kMaxTokenType) {
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece tokenizer: token ", id, " has unknown type ", type));
    }
    types_[id] = static_cast<TokenType>(type);
  }

  byte_token_.fill(-1);
  token_bytes_.resize(n);
  std::vector<std::pair<std::string, int32_t>> literals;
  for (int32_t id = 0; id < n; ++id) {
    const std::string& token = options.tokens[id];
    switch (types_[id]) {
      case TokenType::kByte: {
        const std::optional<uint8_t> byte = ParseByteToken(token);
        if (!byte) {
          return absl::InvalidArgumentError(absl::StrCat("SentencePiece tokenizer: byte token ", id,
                                                         " '", token, "' is not <0xAB>"));
        }
        if (byte_token_[*byte] < 0) byte_token_[*byte] = id;
        token_bytes_[id] = std::string(1, static_cast<char>(*byte));
        break;
      }
      case TokenType::kControl:
      case TokenType::kUserDefined:
        literals.emplace_back(token, id);
        token_bytes_[id] = token;
        break;
      case TokenType::kUnknown:
        token_bytes_[id] = token;
        break;
      default:
        token_bytes_[id] = ReplaceAll(token, kSpace, " ");
        break;
    }
  }
  piece_text_ = std::move(options.tokens);
  // The first of duplicate pieces wins.
  for (int32_t id = 0; id < n; ++id) {
    if (IsMergeable(types_[id])) pieces_.try_emplace(piece_text_[id], id);
  }
  if (unk_id_ < 0) {
    for (int b = 0; b < 256; ++b) {
      if (byte_token_[b] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("SentencePiece tokenizer: no token for byte 0x",
                         absl::Hex(b, absl::kZeroPad2), " and no unknown token"));
      }
    }
  }
  special_tokens_ = SpecialTokenSplitter(std::move(literals));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::LoadLlama2c(
    const std::string& path, int vocab_size) {
  if (vocab_size <= 2) {
    return absl::InvalidArgumentError(absl::StrCat("llama2.c tokenizer: vocab size ", vocab_size,
                                                   " leaves no room for <s>, </s>"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open tokenizer file '", path, "'"));
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string data = buffer.str();

  size_t offset = 0;
  const auto read = [&](void* dst, size_t size, std::string_view what) -> absl::Status {
    if (data.size() - offset < size) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer file '", path, "' is truncated: ", std::string(what), " needs ",
                       size, " bytes at offset ", offset, ", the file has ", data.size()));
    }
    std::memcpy(dst, data.data() + offset, size);
    offset += size;
    return absl::OkStatus();
  };

  int32_t max_token_length = 0;
  KVSERVE_RETURN_IF_ERROR(read(&max_token_length, 4, "the header"));
  if (max_token_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer file '", path, "': bad max token length ", max_token_length));
  }
  // Tokens are appended as the file provides them (8 bytes at least each), so a vocabulary size
  // the file cannot hold costs no memory before the truncation is found.
  Options options;
  const size_t fit = (data.size() - offset) / 8;
  options.tokens.reserve(std::min(fit, static_cast<size_t>(std::max(vocab_size, 0))));
  options.scores.reserve(options.tokens.capacity());
  for (int id = 0; id < vocab_size; ++id) {
    const std::string what = absl::StrCat("token ", id, " of ", vocab_size);
    int32_t length = 0;
    float score = 0;
    KVSERVE_RETURN_IF_ERROR(read(&score, 4, what));
    KVSERVE_RETURN_IF_ERROR(read(&length, 4, what));
    if (length < 0 || length > max_token_length) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer file '", path, "': ", what,
                                                     " has length ", length, ", the maximum is ",
                                                     max_token_length));
    }
    // Checked against the file before allocating: a hostile length must not cost memory.
    if (static_cast<size_t>(length) > data.size() - offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer file '", path, "' is truncated: ", what, " needs ", length,
                       " bytes at offset ", offset, ", the file has ", data.size()));
    }
    options.scores.push_back(score);
    options.tokens.emplace_back(length, '\0');
    KVSERVE_RETURN_IF_ERROR(read(options.tokens[id].data(), length, what));
    // llama2.c's export spelled "▁" as a plain space; restore SentencePiece's form.
    options.tokens[id] = ReplaceAll(options.tokens[id], " ", kSpace);
  }
  options.unk_id = 0;
  options.bos_id = 1;
  options.eos_id = 2;
  options.add_bos = true;
  options.add_space_prefix = true;
  // The exporter wrapped <s> and </s> in newlines for printing; keep their plain text.
  for (const int32_t id : {options.bos_id, options.eos_id}) {
    std::string& token = options.tokens[id];
    const size_t first = token.find_first_not_of('\n');
    token = first == std::string::npos
                ? ""
                : token.substr(first, token.find_last_not_of('\n') - first + 1);
  }
  return Create(std::move(options));
}

int32_t SentencePieceTokenizer::FindPiece(std::string_view piece) const {
  const auto it = pieces_.find(piece);
  return it == pieces_.end() ? -1 : it->second;
}

void SentencePieceTokenizer::EncodeNormalized(std::string_view text,
                                              std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit unit = DecodeUtf8(text, pos);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<int32_t>(pos), unit.length,
                       FindPiece(text.substr(pos, unit.length)), index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
    pos += unit.length;
  }
  // Highest score first; among equal scores the leftmost, as llama2.c's scan picks.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  };
  std::vector<Candidate> queue;
  const auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0 || symbols[left].id < 0 || symbols[right].id < 0) return;
    const int32_t length = symbols[left].length + symbols[right].length;
    const int32_t id = FindPiece(text.substr(symbols[left].start, length));
    if (id < 0) return;
    queue.push_back({scores_[id], left, right, length, id});
    std::push_heap(queue.begin(), queue.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Candidate c = queue.back();
    queue.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != c.length) continue;
    left.length = c.length;
    left.id = c.id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.length = 0;
    if (left.prev >= 0) consider(left.prev);
    consider(c.left);
  }

  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    for (const char byte : text.substr(s.start, s.length)) {
      const int32_t id = byte_token_[static_cast<uint8_t>(byte)];
      out.push_back(id >= 0 ? id : unk_id_);
    }
  }
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  // Like llama.cpp, the dummy prefix goes before the text and after each special token in it.
  bool after_special = true;
  std::string normalized;
  for (const SpecialTokenSplitter::Fragment& fragment : special_tokens_.Split(text)) {
    if (fragment.token_id >= 0) {
      ids.push_back(fragment.token_id);
      after_special = true;
      continue;
    }
    normalized.clear();
    if (add_space_prefix_ && after_special) normalized = kSpace;
    normalized += ReplaceAll(fragment.text, " ", kSpace);
    EncodeNormalized(normalized, ids);
    after_special = false;
  }
  return ids;
}

}  // namespace kvserve
