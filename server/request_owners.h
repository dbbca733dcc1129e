#pragma once

#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace kvserve::server {

// Which client (API key index; -1 without authentication) made each live request, so that Abort
// reaches only the caller's own requests. Entries live from just before Submit to the call's end.
class RequestOwners {
 public:
  // False when `id` is already live (whoever owns it).
  bool Add(const std::string& id, int owner);
  void Remove(const std::string& id);
  bool Owns(const std::string& id, int owner) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, int> owners_;
};

}  // namespace kvserve::server
