#include "tests/support/gguf_writer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "tests/support/byte_sink.h"

namespace kvserve::testing {
namespace {

constexpr uint64_t kDefaultAlignment = 32;

void PutString(std::vector<uint8_t>& out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
void PutScalar(std::vector<uint8_t>& out, const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    PutString(out, value);
  } else if constexpr (std::is_same_v<T, bool>) {
    Put<uint8_t>(out, value ? 1 : 0);
  } else {
    Put<T>(out, value);
  }
}

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// The value type (and for arrays element type, count) followed by the encoded value.
void PutValue(std::vector<uint8_t>& out, const GgufValue& value) {
  Put<uint32_t>(out, static_cast<uint32_t>(GgufTypeOf(value)));
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (IsVector<T>::value) {
          Put<uint32_t>(out, static_cast<uint32_t>(GgufElementTypeOf(value)));
          Put<uint64_t>(out, v.size());
          for (const auto& element : v) PutScalar<typename T::value_type>(out, element);
        } else {
          PutScalar<T>(out, v);
        }
      },
      value);
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace

void GgufWriter::Add(std::string key, GgufValue value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                           std::vector<uint8_t> data) {
  tensors_.push_back({std::move(name), type, std::move(dims), std::move(data), std::nullopt});
}

void GgufWriter::AddTensorAt(std::string name, GgmlType type, std::vector<uint64_t> dims,
                             std::vector<uint8_t> data, uint64_t offset) {
  tensors_.push_back({std::move(name), type, std::move(dims), std::move(data), offset});
}

uint64_t GgufWriter::Alignment() const {
  for (const auto& [key, value] : metadata_) {
    const uint32_t* alignment = std::get_if<uint32_t>(&value);
    if (key == "general.alignment" && alignment != nullptr && *alignment != 0) return *alignment;
  }
  return kDefaultAlignment;
}

std::vector<uint8_t> GgufWriter::Bytes() const {
  const uint64_t alignment = Alignment();
  std::vector<uint64_t> offsets;
  uint64_t data_end = 0;
  for (const Tensor& t : tensors_) {
    const uint64_t offset = t.offset.value_or(AlignUp(data_end, alignment));
    offsets.push_back(offset);
    data_end = std::max(data_end, offset + t.data.size());
  }

  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  Put<uint32_t>(out, version_);
  Put<uint64_t>(out, tensors_.size());
  Put<uint64_t>(out, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    PutString(out, key);
    PutValue(out, value);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t dim : t.dims) Put<uint64_t>(out, dim);
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, offsets[i]);
  }
  if (tensors_.empty()) return out;

  const size_t data_start = AlignUp(out.size(), alignment);
  out.resize(data_start + data_end, 0);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    std::copy(tensors_[i].data.begin(), tensors_[i].data.end(),
              out.begin() + data_start + offsets[i]);
  }
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  const std::vector<uint8_t> bytes = Bytes();
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

}  // namespace kvserve::testing
