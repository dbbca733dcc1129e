// An allocation failure while admitting a request refuses that request with RESOURCE_EXHAUSTED
// and a message; other calls go through untouched.
#include "server/allocation_guard.h"

#include <gtest/gtest.h>

#include <vector>

namespace kvserve::server {
namespace {

grpc::Status Refused(grpc::Status status) { return status; }

TEST(AllocationGuardTest, BadAllocBecomesResourceExhaustedForThatCallOnly) {
  const grpc::Status failed = GuardAllocation(
      []() -> grpc::Status {
        // What std::allocator throws when operator new cannot satisfy a request.
        throw std::bad_alloc();
      },
      Refused);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(failed.error_message(), kOutOfMemoryMessage);

  const grpc::Status fine = GuardAllocation(
      [] {
        std::vector<int> small(1024, 7);
        return grpc::Status(grpc::StatusCode::OK, std::to_string(small.back()));
      },
      Refused);
  EXPECT_TRUE(fine.ok());
  EXPECT_EQ(fine.error_message(), "7");
}

TEST(AllocationGuardTest, OtherExceptionsAreNotSwallowed) {
  EXPECT_THROW(GuardAllocation([]() -> grpc::Status { throw std::runtime_error("bug"); }, Refused),
               std::runtime_error);
}

}  // namespace
}  // namespace kvserve::server
