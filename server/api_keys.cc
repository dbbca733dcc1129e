#include "server/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kvserve::server {

absl::StatusOr<ApiKeys> ApiKeys::Parse(std::string_view text) {
  ApiKeys keys;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const absl::string_view hex = line.substr(0, line.find_first_of(" \t"));
    const bool is_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
      return absl::ascii_isxdigit(static_cast<unsigned char>(c));
    });
    if (hex.size() != 64 || !is_hex) {
      return absl::InvalidArgumentError(
          absl::StrCat("--api-key-file line ", line_no,
                       ": expected the 64 hex digits of a key's SHA-256 (sha256sum), got ",
                       hex.size(), " characters"));
    }
    const std::string bytes = absl::HexStringToBytes(absl::AsciiStrToLower(hex));
    Digest d;
    std::copy(bytes.begin(), bytes.end(), d.begin());
    keys.digests_.push_back(d);
  }
  if (keys.digests_.empty()) {
    return absl::InvalidArgumentError("--api-key-file holds no key (one SHA-256 hex per line)");
  }
  return keys;
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--api-key-file: cannot open '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

ApiKeys::Digest ApiKeys::Sha256(std::string_view data) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

std::optional<int> ApiKeys::Match(std::string_view key) const {
  const Digest presented = Sha256(key);
  // Every digest is compared, whatever matched earlier: the time does not depend on which key.
  int match = -1;
  for (size_t i = 0; i < digests_.size(); ++i) {
    const int equal = CRYPTO_memcmp(presented.data(), digests_[i].data(), presented.size()) == 0;
    match = equal ? static_cast<int>(i) : match;
  }
  if (match < 0) return std::nullopt;
  return match;
}

std::optional<std::string_view> ApiKeys::BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
      return std::nullopt;
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && absl::ascii_isspace(static_cast<unsigned char>(token.front()))) {
    token.remove_prefix(1);
  }
  while (!token.empty() && absl::ascii_isspace(static_cast<unsigned char>(token.back()))) {
    token.remove_suffix(1);
  }
  if (token.empty()) return std::nullopt;
  return token;
}

std::string NewRequestId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::random_device os;  // the kernel's CSPRNG on Linux; OpenSSL's should never fail
    for (unsigned char& b : bytes) b = static_cast<unsigned char>(os());
  }
  return absl::StrCat("req-", absl::BytesToHexString(absl::string_view(
                                  reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

}  // namespace kvserve::server
