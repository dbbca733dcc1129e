#include "server/request_owners.h"

namespace kvserve::server {

bool RequestOwners::Add(const std::string& id, int owner) {
  std::lock_guard lock(mu_);
  return owners_.emplace(id, owner).second;
}

void RequestOwners::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  owners_.erase(id);
}

bool RequestOwners::Owns(const std::string& id, int owner) const {
  std::lock_guard lock(mu_);
  auto it = owners_.find(id);
  return it != owners_.end() && it->second == owner;
}

size_t RequestOwners::size() const {
  std::lock_guard lock(mu_);
  return owners_.size();
}

}  // namespace kvserve::server
