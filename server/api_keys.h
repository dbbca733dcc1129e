#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kvserve::server {

// The API keys a server accepts, stored as SHA-256 digests (as vLLM does) so the key file holds
// no secret. A presented key is hashed and compared with every stored digest in constant time,
// so neither which key matched nor how much of it did shows in the timing.
class ApiKeys {
 public:
  using Digest = std::array<uint8_t, 32>;

  // One lowercase or uppercase hex SHA-256 per line (`sha256sum`'s first column, optionally
  // followed by whitespace and anything); '#' comments and blank lines are skipped. At least one
  // key; every error names the line.
  static absl::StatusOr<ApiKeys> Parse(std::string_view text);
  static absl::StatusOr<ApiKeys> Load(const std::string& path);

  static Digest Sha256(std::string_view data);

  // The index of the key `key` is (the request's owner), or nullopt.
  std::optional<int> Match(std::string_view key) const;
  // The key of an `authorization` metadata value "Bearer KEY" (scheme case-insensitive), or
  // nullopt when it is not of that form.
  static std::optional<std::string_view> BearerToken(std::string_view authorization);

  size_t size() const { return digests_.size(); }

 private:
  std::vector<Digest> digests_;
};

// A fresh request id nobody can guess: "req-" and 128 random bits in hex (OpenSSL's CSPRNG).
std::string NewRequestId();

}  // namespace kvserve::server
