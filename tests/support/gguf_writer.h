#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/ggml_type.h"
#include "engine/model/gguf_file.h"

namespace kvserve::testing {

// Builds GGUF files for tests. It writes what it is given without validation (duplicate keys,
// odd dims, short tensor data), so tests can also build malformed files. Tensor data is padded
// to the alignment, taken from a uint32 "general.alignment" entry when nonzero, else 32.
class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  // Metadata entries, written in the order added.
  void Add(std::string key, GgufValue value);
  void AddUint32(std::string key, uint32_t value) { Add(std::move(key), value); }
  void AddInt32(std::string key, int32_t value) { Add(std::move(key), value); }
  void AddUint64(std::string key, uint64_t value) { Add(std::move(key), value); }
  void AddFloat32(std::string key, float value) { Add(std::move(key), value); }
  void AddBool(std::string key, bool value) { Add(std::move(key), value); }
  void AddString(std::string key, std::string value) { Add(std::move(key), std::move(value)); }
  void AddStringArray(std::string key, std::vector<std::string> values) {
    Add(std::move(key), std::move(values));
  }
  void AddFloat32Array(std::string key, std::vector<float> values) {
    Add(std::move(key), std::move(values));
  }
  void AddInt32Array(std::string key, std::vector<int32_t> values) {
    Add(std::move(key), std::move(values));
  }

  // A tensor placed after the previous one, at the next aligned offset of the data section.
  // `dims` are in ggml order (dims[0] is the row length); `data` is its raw encoding.
  void AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                 std::vector<uint8_t> data);
  // A tensor at an explicit offset relative to the data section (misaligned or overlapping
  // placements allowed); later tensors follow the furthest end so far.
  void AddTensorAt(std::string name, GgmlType type, std::vector<uint64_t> dims,
                   std::vector<uint8_t> data, uint64_t offset);

  // The encoded file. Trailing padding after the last tensor is omitted.
  std::vector<uint8_t> Bytes() const;
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;
  };

  uint64_t Alignment() const;

  uint32_t version_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace kvserve::testing
