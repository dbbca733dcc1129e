#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/model/ggml_type.h"

namespace kvserve {

// GGUF metadata value type ids.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", ...; "type#<id>" for an unknown id.
std::string GgufValueTypeName(GgufValueType type);

// A metadata value: a scalar, a string, or an array of one of those. Arrays are typed vectors so
// a 49k-entry vocabulary stays compact; arrays of arrays are rejected, as llama.cpp does.
using GgufValue = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, uint64_t, int64_t, double, std::vector<uint8_t>,
                               std::vector<int8_t>, std::vector<uint16_t>, std::vector<int16_t>,
                               std::vector<uint32_t>, std::vector<int32_t>, std::vector<float>,
                               std::vector<bool>, std::vector<std::string>, std::vector<uint64_t>,
                               std::vector<int64_t>, std::vector<double>>;

// kArray for arrays, else the scalar's type.
GgufValueType GgufTypeOf(const GgufValue& value);
// The element type of an array, or the scalar's own type.
GgufValueType GgufElementTypeOf(const GgufValue& value);
// "uint32", "array<string>".
std::string GgufValueTypeName(const GgufValue& value);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // absolute, in the file
  uint64_t num_elements = 0;
  uint64_t num_bytes = 0;
};

// A parsed GGUF v2/v3 file (little endian). Every count, length and offset is checked against
// the file before use, so a truncated or hostile file yields an error, never a crash.
class GgufFile {
 public:
  // Maps `path` read-only for the lifetime of the object.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::vector<uint8_t> bytes);

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // Absolute file offset where tensor data begins.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }

  // Metadata keys in file order.
  const std::vector<std::string>& metadata_keys() const { return keys_; }
  bool Has(std::string_view key) const;
  // Null when absent.
  const GgufValue* FindValue(std::string_view key) const;

  // Typed accessors: NotFound for a missing key; InvalidArgument naming the key and the expected
  // and actual types, or a value that does not fit.
  absl::StatusOr<uint32_t> GetUint32(std::string_view key) const;  // any integer type that fits
  absl::StatusOr<float> GetFloat32(std::string_view key) const;    // float32 or float64
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  // Views into this file's metadata.
  absl::StatusOr<std::span<const std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloat32Array(std::string_view key) const;  // f32 or f64
  absl::StatusOr<std::vector<int32_t>> GetInt32Array(std::string_view key) const;  // ints that fit

  // As above, but `fallback` when the key is absent (a present key of the wrong type is an error).
  absl::StatusOr<uint32_t> GetUint32Or(std::string_view key, uint32_t fallback) const;
  absl::StatusOr<float> GetFloat32Or(std::string_view key, float fallback) const;
  absl::StatusOr<bool> GetBoolOr(std::string_view key, bool fallback) const;
  absl::StatusOr<std::string> GetStringOr(std::string_view key, std::string fallback) const;

  // Tensors in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // Null when absent.
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // The raw bytes of a tensor of this file (empty if `info` does not lie within the file).
  std::span<const uint8_t> TensorBytes(const GgufTensorInfo& info) const;
  // Drops the mapped file pages of a tensor that has been copied out, so loading a model does not
  // hold the file and its copy in memory at once (no-op for FromBytes storage).
  void ReleaseTensorPages(const GgufTensorInfo& info) const;
  // Dequantizes a tensor into `out`, which must hold exactly `info.num_elements` floats.
  absl::Status ReadTensorF32(const GgufTensorInfo& info, std::span<float> out) const;
  absl::StatusOr<std::vector<float>> ReadTensorF32(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  absl::Status Parse();

  std::vector<uint8_t> owned_;  // FromBytes storage
  void* map_ = nullptr;         // Open storage (mmap)
  size_t map_size_ = 0;
  std::span<const uint8_t> bytes_;

  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  absl::flat_hash_map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace kvserve
