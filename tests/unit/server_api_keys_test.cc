// API keys stored as SHA-256 digests, Bearer parsing, request ownership and unguessable ids.
#include "server/api_keys.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/escaping.h"
#include "server/request_owners.h"

namespace kvserve::server {
namespace {

std::string HexSha256(std::string_view key) {
  const ApiKeys::Digest d = ApiKeys::Sha256(key);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

TEST(ApiKeysTest, Sha256MatchesTheStandardVector) {
  // FIPS 180-2's "abc".
  EXPECT_EQ(HexSha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeysTest, MatchesTheKeyWhoseHashIsListed) {
  const std::string file = "# team a\n" + HexSha256("key-a") + "  team-a\n\n" +
                           absl::AsciiStrToUpper(HexSha256("key-b")) + "\n";
  auto keys = ApiKeys::Parse(file);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->Match("key-a"), 0);
  EXPECT_EQ(keys->Match("key-b"), 1);
  EXPECT_EQ(keys->Match("key-c"), std::nullopt);
  EXPECT_EQ(keys->Match(""), std::nullopt);
  // The file's own text (a hash) is not a key.
  EXPECT_EQ(keys->Match(HexSha256("key-a")), std::nullopt);
}

TEST(ApiKeysTest, BadFilesNameTheLine) {
  EXPECT_NE(ApiKeys::Parse("# only a comment\n").status().message().find("no key"),
            std::string::npos);
  EXPECT_NE(ApiKeys::Parse("\nplaintext-key\n").status().message().find("line 2"),
            std::string::npos);
  EXPECT_EQ(ApiKeys::Load("/nonexistent/keys").status().code(), absl::StatusCode::kNotFound);
}

TEST(ApiKeysTest, BearerSchemeIsCaseInsensitive) {
  EXPECT_EQ(ApiKeys::BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(ApiKeys::BearerToken("bearer  abc "), "abc");
  EXPECT_EQ(ApiKeys::BearerToken("BEARER abc"), "abc");
  EXPECT_EQ(ApiKeys::BearerToken("Basic abc"), std::nullopt);
  EXPECT_EQ(ApiKeys::BearerToken("Bearer "), std::nullopt);
  EXPECT_EQ(ApiKeys::BearerToken("abc"), std::nullopt);
}

TEST(RequestOwnersTest, OnlyTheOwnerOwns) {
  RequestOwners owners;
  EXPECT_TRUE(owners.Add("r1", 0));
  EXPECT_FALSE(owners.Add("r1", 1));  // live ids are unique, whoever asks
  EXPECT_TRUE(owners.Owns("r1", 0));
  EXPECT_FALSE(owners.Owns("r1", 1));
  EXPECT_FALSE(owners.Owns("r2", 0));
  owners.Remove("r1");
  EXPECT_FALSE(owners.Owns("r1", 0));
  EXPECT_EQ(owners.size(), 0u);
}

TEST(NewRequestIdTest, IdsAre128RandomBits) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 4u + 32u) << id;
    EXPECT_EQ(id.substr(0, 4), "req-");
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

}  // namespace
}  // namespace kvserve::server
