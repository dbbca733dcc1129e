#include "engine/model/gguf_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/model/ggml_dequantize.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/test_paths.h"

namespace kvserve {
namespace {

using testing::GgufWriter;
using ::testing::HasSubstr;

// Fixed header layout: magic 0, version 4, tensor count 8, metadata count 16, first key length 24.
constexpr size_t kTensorCountAt = 8;
constexpr size_t kKvCountAt = 16;
constexpr size_t kFirstKeyLengthAt = 24;
// With a 1-character first key: its value type, then an array's element type and count.
constexpr size_t kFirstValueTypeAt = 33;
constexpr size_t kFirstArrayElementTypeAt = 37;
constexpr size_t kFirstArrayCountAt = 41;
constexpr size_t kFirstStringLengthAt = 37;

void PatchU32(std::vector<uint8_t>& bytes, size_t at, uint32_t value) {
  std::memcpy(bytes.data() + at, &value, sizeof(value));
}
void PatchU64(std::vector<uint8_t>& bytes, size_t at, uint64_t value) {
  std::memcpy(bytes.data() + at, &value, sizeof(value));
}

std::vector<float> Ramp(size_t n, float scale) {
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = scale * std::sin(0.37f * static_cast<float>(i) + 1);
  return values;
}

std::vector<uint8_t> Encode(GgmlType type, const std::vector<float>& values) {
  absl::StatusOr<std::vector<uint8_t>> bytes = testing::QuantizeFromF32(type, values);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

absl::StatusOr<std::unique_ptr<GgufFile>> Parse(const GgufWriter& writer) {
  return GgufFile::FromBytes(writer.Bytes());
}

// Expects a parse failure with `code` whose message contains `text`.
void ExpectError(const std::vector<uint8_t>& bytes, absl::StatusCode code,
                 const std::string& text) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::FromBytes(bytes);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), code) << file.status();
  EXPECT_THAT(file.status().message(), HasSubstr(text));
  EXPECT_THAT(file.status().message(), HasSubstr("gguf: "));
}

// A small file with every kind of metadata and a tensor of each dequantizable type; the last
// tensor ends the file.
GgufWriter SmallModelWriter(uint32_t version = 3) {
  GgufWriter w(version);
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 2);
  w.AddFloat32("llama.rope.freq_base", 10000.0f);
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  w.AddStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "hello", ""});
  w.AddFloat32Array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.25f, 0.0f});
  w.AddInt32Array("tokenizer.ggml.token_type", {3, 3, 1, 1});
  w.AddTensor("a.f32", GgmlType::kF32, {5}, Encode(GgmlType::kF32, Ramp(5, 1)));
  w.AddTensor("b.q8_0", GgmlType::kQ8_0, {64, 2}, Encode(GgmlType::kQ8_0, Ramp(128, 2)));
  w.AddTensor("c.q4_1", GgmlType::kQ4_1, {32, 3}, Encode(GgmlType::kQ4_1, Ramp(96, 3)));
  return w;
}

TEST(GgufFileTest, MetadataRoundTripsEveryType) {
  const std::vector<std::pair<std::string, GgufValue>> entries = {
      {"u8", GgufValue(std::in_place_type<uint8_t>, 200)},
      {"i8", GgufValue(std::in_place_type<int8_t>, -100)},
      {"u16", GgufValue(std::in_place_type<uint16_t>, 60000)},
      {"i16", GgufValue(std::in_place_type<int16_t>, -30000)},
      {"u32", GgufValue(std::in_place_type<uint32_t>, 4000000000u)},
      {"i32", GgufValue(std::in_place_type<int32_t>, -2000000000)},
      {"f32", GgufValue(std::in_place_type<float>, 1.5e-5f)},
      {"bool", GgufValue(std::in_place_type<bool>, true)},
      {"string",
       GgufValue(std::in_place_type<std::string>, std::string("h\0llo \xe2\x9c\x93", 10))},
      {"empty string", GgufValue(std::in_place_type<std::string>, "")},
      {"u64", GgufValue(std::in_place_type<uint64_t>, uint64_t{1} << 63)},
      {"i64", GgufValue(std::in_place_type<int64_t>, int64_t{-1} << 62)},
      {"f64", GgufValue(std::in_place_type<double>, 3.141592653589793)},
      {"[u8]", GgufValue(std::vector<uint8_t>{0, 1, 255})},
      {"[i8]", GgufValue(std::vector<int8_t>{-128, 0, 127})},
      {"[u16]", GgufValue(std::vector<uint16_t>{1, 65535})},
      {"[i16]", GgufValue(std::vector<int16_t>{-32768, 32767})},
      {"[u32]", GgufValue(std::vector<uint32_t>{7, 0xffffffffu})},
      {"[i32]", GgufValue(std::vector<int32_t>{-1, 2, -3})},
      {"[f32]", GgufValue(std::vector<float>{0.5f, -0.25f})},
      {"[bool]", GgufValue(std::vector<bool>{true, false, true})},
      {"[string]", GgufValue(std::vector<std::string>{"a", "", "ccc"})},
      {"[u64]", GgufValue(std::vector<uint64_t>{uint64_t{1} << 40})},
      {"[i64]", GgufValue(std::vector<int64_t>{-(int64_t{1} << 40)})},
      {"[f64]", GgufValue(std::vector<double>{1e300, -1e-300})},
      {"[] empty", GgufValue(std::vector<int32_t>{})},
  };
  for (uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    GgufWriter w(version);
    for (const auto& [key, value] : entries) w.Add(key, value);
    absl::StatusOr<std::unique_ptr<GgufFile>> file = Parse(w);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->version(), version);
    EXPECT_EQ((*file)->alignment(), 32u);
    EXPECT_TRUE((*file)->tensors().empty());
    ASSERT_EQ((*file)->metadata_keys().size(), entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& [key, value] = entries[i];
      EXPECT_EQ((*file)->metadata_keys()[i], key);
      const GgufValue* read = (*file)->FindValue(key);
      ASSERT_NE(read, nullptr) << key;
      EXPECT_TRUE(*read == value) << key;
      EXPECT_EQ(GgufValueTypeName(*read), GgufValueTypeName(value));
    }
  }
}

TEST(GgufFileTest, TypeNames) {
  EXPECT_EQ(GgufValueTypeName(GgufValue(std::in_place_type<uint32_t>, 1)), "uint32");
  EXPECT_EQ(GgufValueTypeName(GgufValue(std::vector<std::string>{})), "array<string>");
  EXPECT_EQ(GgufTypeOf(GgufValue(std::vector<double>{})), GgufValueType::kArray);
  EXPECT_EQ(GgufElementTypeOf(GgufValue(std::vector<double>{})), GgufValueType::kFloat64);
  EXPECT_EQ(GgufTypeOf(GgufValue(std::in_place_type<int64_t>, 1)), GgufValueType::kInt64);
  EXPECT_EQ(GgufValueTypeName(static_cast<GgufValueType>(13)), "type#13");
}

TEST(GgufFileTest, ScalarAccessorsConvertWhatFits) {
  GgufWriter w;
  w.Add("u8", GgufValue(std::in_place_type<uint8_t>, 7));
  w.Add("i64", GgufValue(std::in_place_type<int64_t>, 4000000000));
  w.Add("u64 big", GgufValue(std::in_place_type<uint64_t>, uint64_t{1} << 32));
  w.AddInt32("negative", -1);
  w.AddFloat32("f32", 0.125f);
  w.Add("f64", GgufValue(std::in_place_type<double>, 1e-6));
  w.AddBool("flag", false);
  w.AddString("name", "SmolLM2");
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufFile& f = **parsed;

  EXPECT_EQ(*f.GetUint32("u8"), 7u);
  EXPECT_EQ(*f.GetUint32("i64"), 4000000000u);
  EXPECT_EQ(*f.GetFloat32("f32"), 0.125f);
  EXPECT_EQ(*f.GetFloat32("f64"), 1e-6f);
  EXPECT_EQ(*f.GetBool("flag"), false);
  EXPECT_EQ(*f.GetString("name"), "SmolLM2");
  EXPECT_TRUE(f.Has("flag"));
  EXPECT_FALSE(f.Has("nope"));
  EXPECT_EQ(f.FindValue("nope"), nullptr);

  for (const char* key : {"u64 big", "negative"}) {
    absl::StatusOr<uint32_t> v = f.GetUint32(key);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(v.status().message(), HasSubstr("does not fit in uint32"));
    EXPECT_THAT(v.status().message(), HasSubstr(key));
  }
  EXPECT_THAT(f.GetUint32("negative").status().message(), HasSubstr("value -1 (int32)"));
}

TEST(GgufFileTest, WrongTypeAndMissingKeyErrors) {
  GgufWriter w;
  w.AddString("name", "x");
  w.AddUint32("count", 3);
  w.AddInt32Array("ids", {1});
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufFile& f = **parsed;

  auto expect_wrong = [](const absl::Status& status, const std::string& text) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(text));
  };
  expect_wrong(f.GetUint32("name").status(), "key 'name' is string, expected an integer");
  expect_wrong(f.GetFloat32("count").status(), "key 'count' is uint32, expected float32");
  expect_wrong(f.GetBool("count").status(), "key 'count' is uint32, expected bool");
  expect_wrong(f.GetString("ids").status(), "key 'ids' is array<int32>, expected string");
  expect_wrong(f.GetStringArray("ids").status(), "is array<int32>, expected array<string>");
  expect_wrong(f.GetFloat32Array("name").status(), "is string, expected array<float32>");
  expect_wrong(f.GetInt32Array("count").status(), "is uint32, expected an integer array");

  for (const absl::Status& status :
       {f.GetUint32("absent").status(), f.GetFloat32("absent").status(),
        f.GetBool("absent").status(), f.GetString("absent").status(),
        f.GetStringArray("absent").status(), f.GetFloat32Array("absent").status(),
        f.GetInt32Array("absent").status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(status.message(), HasSubstr("missing key 'absent'"));
  }
}

TEST(GgufFileTest, DefaultTakingAccessors) {
  GgufWriter w;
  w.AddUint32("count", 3);
  w.AddString("name", "x");
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufFile& f = **parsed;
  EXPECT_EQ(*f.GetUint32Or("count", 9), 3u);
  EXPECT_EQ(*f.GetUint32Or("absent", 9), 9u);
  EXPECT_EQ(*f.GetFloat32Or("absent", 0.5f), 0.5f);
  EXPECT_EQ(*f.GetBoolOr("absent", true), true);
  EXPECT_EQ(*f.GetStringOr("absent", "dflt"), "dflt");
  EXPECT_EQ(*f.GetStringOr("name", "dflt"), "x");
  // A present key of the wrong type is still an error.
  EXPECT_FALSE(f.GetUint32Or("name", 9).ok());
  EXPECT_FALSE(f.GetFloat32Or("name", 0.5f).ok());
  EXPECT_FALSE(f.GetBoolOr("name", true).ok());
  EXPECT_FALSE(f.GetStringOr("count", "dflt").ok());
}

TEST(GgufFileTest, ArrayAccessors) {
  GgufWriter w;
  w.AddStringArray("tokens", {"<s>", "a b", ""});
  w.AddFloat32Array("scores", {0.5f, -2.0f});
  w.Add("scores64", GgufValue(std::vector<double>{0.25, -8.0}));
  w.AddInt32Array("types", {1, -2, 3});
  w.Add("bytes", GgufValue(std::vector<uint8_t>{0, 255}));
  w.Add("too big", GgufValue(std::vector<int64_t>{1, int64_t{1} << 31}));
  w.Add("negative u", GgufValue(std::vector<uint32_t>{0x80000000u}));
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufFile& f = **parsed;

  absl::StatusOr<std::span<const std::string>> tokens = f.GetStringArray("tokens");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(std::vector<std::string>(tokens->begin(), tokens->end()),
            (std::vector<std::string>{"<s>", "a b", ""}));
  EXPECT_EQ(*f.GetFloat32Array("scores"), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_EQ(*f.GetFloat32Array("scores64"), (std::vector<float>{0.25f, -8.0f}));
  EXPECT_EQ(*f.GetInt32Array("types"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(*f.GetInt32Array("bytes"), (std::vector<int32_t>{0, 255}));
  for (const char* key : {"too big", "negative u"}) {
    absl::StatusOr<std::vector<int32_t>> v = f.GetInt32Array(key);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(v.status().message(), HasSubstr("does not fit in int32"));
  }
  EXPECT_THAT(f.GetInt32Array("too big").status().message(),
              HasSubstr("element 1 value 2147483648"));
}

TEST(GgufFileTest, EveryTensorTypeReadsBack) {
  struct Case {
    GgmlType type;
    std::vector<uint64_t> dims;
  };
  const std::vector<Case> cases = {
      {GgmlType::kF32, {7}},      {GgmlType::kF16, {9, 3}},      {GgmlType::kBF16, {4, 2, 3}},
      {GgmlType::kQ8_0, {64, 3}}, {GgmlType::kQ4_0, {32, 2, 2}}, {GgmlType::kQ4_1, {96, 1, 1, 2}},
  };
  for (uint32_t version : {2u, 3u}) {
    SCOPED_TRACE(version);
    GgufWriter w(version);
    std::vector<std::vector<uint8_t>> encoded;
    for (size_t i = 0; i < cases.size(); ++i) {
      uint64_t n = 1;
      for (uint64_t d : cases[i].dims) n *= d;
      encoded.push_back(Encode(cases[i].type, Ramp(n, static_cast<float>(i + 1))));
      w.AddTensor("t." + GgmlTypeName(cases[i].type), cases[i].type, cases[i].dims, encoded.back());
    }
    absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    const GgufFile& f = **parsed;
    ASSERT_EQ(f.tensors().size(), cases.size());
    EXPECT_EQ(f.data_offset() % 32, 0u);
    for (size_t i = 0; i < cases.size(); ++i) {
      const GgufTensorInfo& info = f.tensors()[i];
      SCOPED_TRACE(info.name);
      EXPECT_EQ(info.name, "t." + GgmlTypeName(cases[i].type));
      EXPECT_EQ(f.FindTensor(info.name), &info);
      EXPECT_EQ(info.type, cases[i].type);
      EXPECT_EQ(info.dims, cases[i].dims);
      EXPECT_EQ(info.num_bytes, encoded[i].size());
      EXPECT_EQ(info.offset % 32, 0u);
      EXPECT_GE(info.offset, f.data_offset());
      const std::span<const uint8_t> bytes = f.TensorBytes(info);
      EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.end()), encoded[i]);

      std::vector<float> expected(info.num_elements);
      ASSERT_TRUE(DequantizeToF32(info.type, encoded[i], expected).ok());
      absl::StatusOr<std::vector<float>> values = f.ReadTensorF32(info);
      ASSERT_TRUE(values.ok()) << values.status();
      EXPECT_EQ(*values, expected);
      std::vector<float> into(info.num_elements);
      ASSERT_TRUE(f.ReadTensorF32(info, into).ok());
      EXPECT_EQ(into, expected);
      std::vector<float> wrong(info.num_elements + 1);
      absl::Status status = f.ReadTensorF32(info, wrong);
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(status.message(), HasSubstr(info.name));
    }
    EXPECT_EQ(f.FindTensor("absent"), nullptr);
  }
}

TEST(GgufFileTest, TensorOfUnsupportedTypeOpensButDoesNotDequantize) {
  GgufWriter w;
  w.AddTensor("q5", GgmlType::kQ5_0, {32, 2}, std::vector<uint8_t>(44, 1));
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufTensorInfo& info = (*parsed)->tensors()[0];
  EXPECT_EQ(info.num_bytes, 44u);
  EXPECT_EQ((*parsed)->TensorBytes(info).size(), 44u);
  absl::StatusOr<std::vector<float>> values = (*parsed)->ReadTensorF32(info);
  EXPECT_EQ(values.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(values.status().message(), HasSubstr("'q5' has unsupported type Q5_0"));
}

TEST(GgufFileTest, ForeignTensorInfoIsRejected) {
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(SmallModelWriter());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  GgufTensorInfo info = (*parsed)->tensors()[0];
  info.offset = (*parsed)->file_size();
  EXPECT_TRUE((*parsed)->TensorBytes(info).empty());
  EXPECT_FALSE((*parsed)->ReadTensorF32(info).ok());
}

TEST(GgufFileTest, CustomAlignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 256u, 4096u}) {
    SCOPED_TRACE(alignment);
    GgufWriter w;
    w.AddUint32("general.alignment", alignment);
    w.AddTensor("a", GgmlType::kF32, {3}, Encode(GgmlType::kF32, Ramp(3, 1)));
    w.AddTensor("b", GgmlType::kF32, {5}, Encode(GgmlType::kF32, Ramp(5, 2)));
    absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    const GgufFile& f = **parsed;
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    EXPECT_EQ(f.tensors()[1].offset % alignment, 0u);
    EXPECT_EQ(*f.ReadTensorF32(f.tensors()[0]), Ramp(3, 1));
    EXPECT_EQ(*f.ReadTensorF32(f.tensors()[1]), Ramp(5, 2));
  }
}

TEST(GgufFileTest, AlignmentAsOtherIntegerTypeIsAccepted) {
  GgufWriter w;
  w.AddUint64("general.alignment", 16);
  w.AddTensor("a", GgmlType::kF32, {3}, Encode(GgmlType::kF32, Ramp(3, 1)));
  // The writer pads to its default 32 here, which is also 16-aligned.
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = Parse(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)->alignment(), 16u);
}

TEST(GgufFileTest, OpenReadsFileFromDisk) {
  const std::string dir = testing::MakeTempDir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/small.gguf";
  ASSERT_TRUE(SmallModelWriter().WriteFile(path).ok());
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->file_size(), std::filesystem::file_size(path));
  EXPECT_EQ(*(*file)->GetString("general.architecture"), "llama");
  const GgufTensorInfo* q = (*file)->FindTensor("c.q4_1");
  ASSERT_NE(q, nullptr);
  absl::StatusOr<std::vector<float>> values = (*file)->ReadTensorF32(*q);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->size(), 96u);
  std::filesystem::remove_all(dir);
}

TEST(GgufFileTest, OpenErrors) {
  const std::string dir = testing::MakeTempDir();
  ASSERT_FALSE(dir.empty());

  absl::StatusOr<std::unique_ptr<GgufFile>> missing = GgufFile::Open(dir + "/absent.gguf");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.gguf"));

  const std::string empty = dir + "/empty.gguf";
  std::ofstream(empty).close();
  absl::StatusOr<std::unique_ptr<GgufFile>> empty_file = GgufFile::Open(empty);
  EXPECT_EQ(empty_file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty_file.status().message(), HasSubstr("is empty"));

  EXPECT_THAT(GgufFile::Open(dir).status().message(), HasSubstr("not a regular file"));

  const std::string corrupt = dir + "/corrupt.gguf";
  std::vector<uint8_t> bytes = SmallModelWriter().Bytes();
  bytes.resize(bytes.size() - 1);
  std::ofstream(corrupt, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  absl::StatusOr<std::unique_ptr<GgufFile>> truncated = GgufFile::Open(corrupt);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.status().message(), HasSubstr(corrupt));
  EXPECT_THAT(truncated.status().message(), HasSubstr("'c.q4_1' data"));
  std::filesystem::remove_all(dir);
}

TEST(GgufFileCorruptTest, BadMagic) {
  std::vector<uint8_t> bytes = SmallModelWriter().Bytes();
  bytes[3] = 'G';
  ExpectError(bytes, absl::StatusCode::kInvalidArgument, "bad magic");
}

TEST(GgufFileCorruptTest, BadVersion) {
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    ExpectError(SmallModelWriter(version).Bytes(), absl::StatusCode::kInvalidArgument,
                "unsupported version " + std::to_string(version) + " (supported: 2, 3)");
  }
  ExpectError(SmallModelWriter(0x03000000).Bytes(), absl::StatusCode::kInvalidArgument,
              "big-endian");
}

TEST(GgufFileCorruptTest, EveryTruncationFails) {
  const std::vector<uint8_t> bytes = SmallModelWriter().Bytes();
  ASSERT_TRUE(GgufFile::FromBytes(bytes).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<std::unique_ptr<GgufFile>> file =
        GgufFile::FromBytes(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    ASSERT_FALSE(file.ok()) << "prefix of " << n << " bytes";
    ASSERT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  }
}

TEST(GgufFileCorruptTest, HugeStringLengths) {
  GgufWriter w;
  w.AddString("s", "hello");
  std::vector<uint8_t> bytes = w.Bytes();
  PatchU64(bytes, kFirstKeyLengthAt, uint64_t{1} << 60);
  ExpectError(bytes, absl::StatusCode::kDataLoss, "string length 1152921504606846976");

  bytes = w.Bytes();
  PatchU64(bytes, kFirstStringLengthAt, ~uint64_t{0});
  ExpectError(bytes, absl::StatusCode::kDataLoss, "metadata 's': string length");

  bytes = w.Bytes();
  PatchU64(bytes, kFirstStringLengthAt, 6);  // one byte more than the file holds
  ExpectError(bytes, absl::StatusCode::kDataLoss, "exceeds the 5 bytes left");
}

TEST(GgufFileCorruptTest, HugeArrayCounts) {
  for (GgufValue value : {GgufValue(std::vector<int32_t>{1, 2, 3}),
                          GgufValue(std::vector<std::string>{"a", "b", "c"}),
                          GgufValue(std::vector<bool>{true, false, true})}) {
    GgufWriter w;
    w.Add("a", value);
    std::vector<uint8_t> bytes = w.Bytes();
    for (uint64_t count : {uint64_t{1} << 60, ~uint64_t{0}, uint64_t{1} << 61 | 1}) {
      PatchU64(bytes, kFirstArrayCountAt, count);
      ExpectError(bytes, absl::StatusCode::kDataLoss, "does not fit in the");
    }
    PatchU64(bytes, kFirstArrayCountAt, 4);  // one more element than present
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::FromBytes(bytes);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
  }
}

TEST(GgufFileCorruptTest, HugeTensorAndMetadataCounts) {
  const std::vector<uint8_t> valid = SmallModelWriter().Bytes();
  for (size_t at : {kTensorCountAt, kKvCountAt}) {
    for (uint64_t count : {uint64_t{1} << 60, ~uint64_t{0}, uint64_t{1000000}}) {
      std::vector<uint8_t> bytes = valid;
      PatchU64(bytes, at, count);
      ExpectError(bytes, absl::StatusCode::kDataLoss, "bytes follow");
    }
  }
  std::vector<uint8_t> bytes = valid;
  PatchU64(bytes, kTensorCountAt, 4);  // one tensor more than described
  EXPECT_FALSE(GgufFile::FromBytes(bytes).ok());
}

TEST(GgufFileCorruptTest, UnknownValueTypes) {
  GgufWriter w;
  w.AddInt32Array("a", {1, 2, 3});
  std::vector<uint8_t> bytes = w.Bytes();
  PatchU32(bytes, kFirstValueTypeAt, 13);
  ExpectError(bytes, absl::StatusCode::kInvalidArgument, "metadata 'a': unknown value type 13");

  bytes = w.Bytes();
  PatchU32(bytes, kFirstArrayElementTypeAt, 0xffffffffu);
  ExpectError(bytes, absl::StatusCode::kInvalidArgument, "unknown array element type 4294967295");

  bytes = w.Bytes();
  PatchU32(bytes, kFirstArrayElementTypeAt, static_cast<uint32_t>(GgufValueType::kArray));
  ExpectError(bytes, absl::StatusCode::kInvalidArgument, "nested arrays are not supported");
}

TEST(GgufFileCorruptTest, BadTensorDims) {
  auto with_tensor = [](std::vector<uint64_t> dims, std::vector<uint8_t> data,
                        GgmlType type = GgmlType::kF32) {
    GgufWriter w;
    w.AddTensor("t", type, std::move(dims), std::move(data));
    return w.Bytes();
  };
  ExpectError(with_tensor({}, {}), absl::StatusCode::kInvalidArgument,
              "tensor 0: 't' has 0 dimensions (expected 1 to 4)");
  ExpectError(with_tensor({1, 1, 1, 1, 1}, std::vector<uint8_t>(4)),
              absl::StatusCode::kInvalidArgument, "'t' has 5 dimensions");
  ExpectError(with_tensor({4, 0}, {}), absl::StatusCode::kInvalidArgument,
              "'t' has a zero dimension");
  ExpectError(with_tensor({uint64_t{1} << 32, uint64_t{1} << 32, uint64_t{1} << 32}, {}),
              absl::StatusCode::kInvalidArgument, "'t' element count overflows");
  ExpectError(with_tensor({uint64_t{1} << 32, uint64_t{1} << 31}, {}),
              absl::StatusCode::kInvalidArgument, "'t' element count overflows");
  ExpectError(with_tensor({uint64_t{1} << 62}, {}), absl::StatusCode::kInvalidArgument,
              "overflow a 64-bit size");
  ExpectError(with_tensor({uint64_t{1} << 32, uint64_t{1} << 30}, {}),
              absl::StatusCode::kInvalidArgument, "'t' byte size overflows");
  ExpectError(with_tensor({16, 2}, std::vector<uint8_t>(18), GgmlType::kQ4_0),
              absl::StatusCode::kInvalidArgument, "not a whole number of 32-element blocks");
}

TEST(GgufFileCorruptTest, UnknownTensorType) {
  for (uint32_t type : {99u, 31u, static_cast<uint32_t>(GgmlType::kQ8_1)}) {
    GgufWriter w;
    w.AddTensor("t", static_cast<GgmlType>(type), {32}, std::vector<uint8_t>(64));
    ExpectError(w.Bytes(), absl::StatusCode::kInvalidArgument,
                "'t': ggml type " + GgmlTypeName(static_cast<GgmlType>(type)) +
                    " has no known storage layout");
  }
}

TEST(GgufFileCorruptTest, MisalignedTensorOffset) {
  GgufWriter w;
  w.AddTensorAt("t", GgmlType::kF32, {2}, std::vector<uint8_t>(8), 4);
  ExpectError(w.Bytes(), absl::StatusCode::kInvalidArgument,
              "'t' data offset 4 is not a multiple of the alignment 32");
}

TEST(GgufFileCorruptTest, TensorDataPastEndOfFile) {
  GgufWriter w;
  w.AddTensor("blk.0.attn_q.weight", GgmlType::kF32, {64}, std::vector<uint8_t>(255));
  ExpectError(w.Bytes(), absl::StatusCode::kDataLoss, "tensor 'blk.0.attn_q.weight' data [");
  ExpectError(w.Bytes(), absl::StatusCode::kDataLoss, ", +256) extends past end of file");

  // An offset so large that adding the data section start overflows.
  GgufWriter tiny;
  tiny.AddTensor("t", GgmlType::kF32, {1}, std::vector<uint8_t>(4));
  std::vector<uint8_t> bytes = tiny.Bytes();
  // Tensor info: name length 8 + "t" + n_dims 4 + dim 8 + type 4, then the offset.
  PatchU64(bytes, kFirstKeyLengthAt + 8 + 1 + 4 + 8 + 4, ~uint64_t{31});
  ExpectError(bytes, absl::StatusCode::kDataLoss, "extends past end of file");
}

TEST(GgufFileCorruptTest, OverlappingTensors) {
  GgufWriter w;
  w.AddTensorAt("a", GgmlType::kF32, {16}, std::vector<uint8_t>(64), 0);
  w.AddTensorAt("b", GgmlType::kF32, {8}, std::vector<uint8_t>(32), 32);
  ExpectError(w.Bytes(), absl::StatusCode::kInvalidArgument, "tensors 'a' and 'b' overlap");
}

TEST(GgufFileCorruptTest, DuplicateKeyAndTensorName) {
  GgufWriter keys;
  keys.AddUint32("k", 1);
  keys.AddString("k", "again");
  ExpectError(keys.Bytes(), absl::StatusCode::kInvalidArgument, "duplicate metadata key 'k'");

  GgufWriter tensors;
  tensors.AddTensor("t", GgmlType::kF32, {1}, std::vector<uint8_t>(4));
  tensors.AddTensor("t", GgmlType::kF32, {1}, std::vector<uint8_t>(4));
  ExpectError(tensors.Bytes(), absl::StatusCode::kInvalidArgument, "duplicate tensor name 't'");
}

TEST(GgufFileCorruptTest, BadAlignment) {
  for (uint32_t alignment : {0u, 48u, 3u}) {
    GgufWriter w;
    w.AddUint32("general.alignment", alignment);
    ExpectError(w.Bytes(), absl::StatusCode::kInvalidArgument,
                "general.alignment " + std::to_string(alignment) + " is not a power of two");
  }
  GgufWriter wrong_type;
  wrong_type.AddString("general.alignment", "32");
  ExpectError(wrong_type.Bytes(), absl::StatusCode::kInvalidArgument,
              "invalid general.alignment (string): must be a uint32 power of two");
  GgufWriter too_big;
  too_big.AddUint64("general.alignment", uint64_t{1} << 32);
  ExpectError(too_big.Bytes(), absl::StatusCode::kInvalidArgument,
              "invalid general.alignment (uint64)");
}

// Random byte damage must give an error or a file whose tensors read (or fail) cleanly.
TEST(GgufFileCorruptTest, RandomCorruptionNeverCrashes) {
  const std::vector<uint8_t> valid = SmallModelWriter().Bytes();
  std::mt19937 rng(42);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::vector<uint8_t> bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      const size_t at = rng() % bytes.size();
      bytes[at] = rng() % 3 == 0 ? 0xff : static_cast<uint8_t>(rng());
    }
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::FromBytes(std::move(bytes));
    if (!file.ok()) continue;
    for (const GgufTensorInfo& info : (*file)->tensors()) {
      if (info.num_elements <= 4096) (void)(*file)->ReadTensorF32(info);
    }
  }
}

TEST(GgufFileRealModelTest, SmolLm2) {
  const std::string path = testing::SmolLm2GgufPath();
  if (path.empty()) GTEST_SKIP() << "SmolLM2 GGUF not present";
  absl::StatusOr<std::unique_ptr<GgufFile>> parsed = GgufFile::Open(path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const GgufFile& f = **parsed;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint32("llama.block_count"), 30u);
  EXPECT_EQ(f.tensors().size(), 272u);

  const GgufTensorInfo* embed = f.FindTensor("token_embd.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->type, GgmlType::kQ8_0);
  EXPECT_EQ(embed->dims, (std::vector<uint64_t>{576, 49152}));

  absl::StatusOr<std::span<const std::string>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 49152u);
  EXPECT_EQ(f.GetStringArray("tokenizer.ggml.merges")->size(), 48900u);
  EXPECT_EQ(f.GetInt32Array("tokenizer.ggml.token_type")->size(), 49152u);

  const GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ4_1);
  EXPECT_EQ(q->dims, (std::vector<uint64_t>{576, 576}));
  absl::StatusOr<std::vector<float>> values = f.ReadTensorF32(*q);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 576u * 576u);
  float max_abs = 0.0f;
  for (float v : *values) {
    ASSERT_TRUE(std::isfinite(v));
    max_abs = std::max(max_abs, std::fabs(v));
  }
  EXPECT_GT(max_abs, 0.0f);
}

// Resident bytes of the mapping that holds `address`, from /proc/self/smaps; -1 if none.
int64_t MappedResidentBytes(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2) {  // a mapping's header line
      inside = at >= begin && at < end;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      return std::stoll(line.substr(4)) * 1024;
    }
  }
  return -1;
}

// A tensor copied out of the mapped file gives its pages back: loading a model does not hold
// the file and its copy at once (the server's peak RSS).
TEST(GgufFileRealModelTest, ReleasedTensorPagesLeaveTheResidentSet) {
  const std::string path = testing::SmolLm2GgufPath();
  if (path.empty()) GTEST_SKIP() << "SmolLM2 GGUF absent";
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufTensorInfo* embd = (*file)->FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  const std::span<const uint8_t> bytes = (*file)->TensorBytes(*embd);
  ASSERT_GT(bytes.size(), size_t{8} << 20);
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes.size(); i += 4096) sum += bytes[i];  // fault every page in
  const uint8_t middle = bytes[bytes.size() / 2];
  const int64_t before = MappedResidentBytes(bytes.data());
  ASSERT_GE(before, static_cast<int64_t>(bytes.size()) - 8192) << sum;
  (*file)->ReleaseTensorPages(*embd);
  const int64_t after = MappedResidentBytes(bytes.data());
  EXPECT_LE(after, before - static_cast<int64_t>(bytes.size()) + 8192);
  EXPECT_EQ(bytes[bytes.size() / 2], middle);  // read from the file again when touched
}

}  // namespace
}  // namespace kvserve
