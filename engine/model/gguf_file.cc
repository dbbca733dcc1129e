#include "engine/model/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/model/ggml_dequantize.h"

namespace kvserve {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF v2/v3 files are little endian");
static_assert(std::variant_size_v<GgufValue> == 24, "12 scalar kinds, then arrays of each");

constexpr char kAlignmentKey[] = "general.alignment";
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// Smallest encodings, used to bound counts by the bytes left before reserving anything:
// metadata entry = key length (8) + value type (4) + 1-byte value; tensor info = name length (8) +
// n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinMetadataEntryBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 32;

// Counts are bounded by the bytes left, but containers of strings or tensor infos take several
// times their encoded size: reserve at most this much up front and let real entries grow the rest.
uint64_t InitialCapacity(uint64_t count) { return std::min<uint64_t>(count, 4096); }

// Scalar types in variant-index order (GgufValue index i and i + 12 hold this type).
constexpr GgufValueType kScalarTypes[12] = {
    GgufValueType::kUint8,   GgufValueType::kInt8,   GgufValueType::kUint16,
    GgufValueType::kInt16,   GgufValueType::kUint32, GgufValueType::kInt32,
    GgufValueType::kFloat32, GgufValueType::kBool,   GgufValueType::kString,
    GgufValueType::kUint64,  GgufValueType::kInt64,  GgufValueType::kFloat64,
};

// Debian's Abseil has its own string_view: convert at the boundary.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status WithContext(const absl::Status& status, std::string_view context) {
  return absl::Status(status.code(), absl::StrCat(AsAbsl(context), ": ", status.message()));
}

// Bounds-checked little-endian reads over the file bytes.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  template <typename T>
  absl::Status Read(T& out) {
    if (sizeof(T) > left()) return EndOfFile(sizeof(T));
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string& out) {
    uint64_t length = 0;
    KVSERVE_RETURN_IF_ERROR(Read(length));
    if (length > left()) {
      return absl::DataLossError(absl::StrCat("string length ", length, " at offset ", pos_ - 8,
                                              " exceeds the ", left(), " bytes left"));
    }
    out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return absl::OkStatus();
  }

  // Copies `n` trivially copyable elements; the caller has checked they fit in left().
  template <typename T>
  void CopyArray(std::vector<T>& out, uint64_t n) {
    out.resize(n);
    if (n != 0) std::memcpy(out.data(), bytes_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
  }

  absl::Status EndOfFile(uint64_t need) const {
    return absl::DataLossError(absl::StrCat("unexpected end of file at offset ", pos_, " (need ",
                                            need, " bytes, ", left(), " left)"));
  }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

bool IsKnownValueType(uint32_t type) {
  return type <= static_cast<uint32_t>(GgufValueType::kFloat64);
}

// Encoded size of a scalar type; 8 (the length prefix) for strings.
uint64_t MinEncodedSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    default:
      return 8;
  }
}

template <typename T>
absl::Status ReadScalar(Cursor& cursor, GgufValue& out) {
  T value{};
  KVSERVE_RETURN_IF_ERROR(cursor.Read(value));
  out = value;
  return absl::OkStatus();
}

absl::Status ReadScalarValue(Cursor& cursor, GgufValueType type, GgufValue& out) {
  switch (type) {
    case GgufValueType::kUint8:
      return ReadScalar<uint8_t>(cursor, out);
    case GgufValueType::kInt8:
      return ReadScalar<int8_t>(cursor, out);
    case GgufValueType::kUint16:
      return ReadScalar<uint16_t>(cursor, out);
    case GgufValueType::kInt16:
      return ReadScalar<int16_t>(cursor, out);
    case GgufValueType::kUint32:
      return ReadScalar<uint32_t>(cursor, out);
    case GgufValueType::kInt32:
      return ReadScalar<int32_t>(cursor, out);
    case GgufValueType::kFloat32:
      return ReadScalar<float>(cursor, out);
    case GgufValueType::kUint64:
      return ReadScalar<uint64_t>(cursor, out);
    case GgufValueType::kInt64:
      return ReadScalar<int64_t>(cursor, out);
    case GgufValueType::kFloat64:
      return ReadScalar<double>(cursor, out);
    case GgufValueType::kBool: {
      uint8_t byte = 0;
      KVSERVE_RETURN_IF_ERROR(cursor.Read(byte));
      out = byte != 0;
      return absl::OkStatus();
    }
    case GgufValueType::kString: {
      std::string text;
      KVSERVE_RETURN_IF_ERROR(cursor.ReadString(text));
      out = std::move(text);
      return absl::OkStatus();
    }
    case GgufValueType::kArray:
      break;
  }
  return absl::InternalError("not a scalar type");
}

template <typename T>
GgufValue CopyArray(Cursor& cursor, uint64_t count) {
  std::vector<T> values;
  cursor.CopyArray(values, count);
  return values;
}

absl::Status ReadArrayValue(Cursor& cursor, GgufValue& out) {
  uint32_t raw_type = 0;
  uint64_t count = 0;
  KVSERVE_RETURN_IF_ERROR(cursor.Read(raw_type));
  if (!IsKnownValueType(raw_type)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown array element type ", raw_type));
  }
  const auto type = static_cast<GgufValueType>(raw_type);
  if (type == GgufValueType::kArray) {
    return absl::InvalidArgumentError("nested arrays are not supported");
  }
  KVSERVE_RETURN_IF_ERROR(cursor.Read(count));
  if (count > cursor.left() / MinEncodedSize(type)) {
    return absl::DataLossError(absl::StrCat("array of ", count, " ", GgufValueTypeName(type),
                                            " elements does not fit in the ", cursor.left(),
                                            " bytes left"));
  }
  switch (type) {
    case GgufValueType::kUint8:
      out = CopyArray<uint8_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kInt8:
      out = CopyArray<int8_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kUint16:
      out = CopyArray<uint16_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kInt16:
      out = CopyArray<int16_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kUint32:
      out = CopyArray<uint32_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kInt32:
      out = CopyArray<int32_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kFloat32:
      out = CopyArray<float>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kUint64:
      out = CopyArray<uint64_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kInt64:
      out = CopyArray<int64_t>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kFloat64:
      out = CopyArray<double>(cursor, count);
      return absl::OkStatus();
    case GgufValueType::kBool: {
      std::vector<uint8_t> bytes;
      cursor.CopyArray(bytes, count);
      std::vector<bool> values(count);
      for (uint64_t i = 0; i < count; ++i) values[i] = bytes[i] != 0;
      out = std::move(values);
      return absl::OkStatus();
    }
    case GgufValueType::kString: {
      std::vector<std::string> values;
      values.reserve(InitialCapacity(count));
      for (uint64_t i = 0; i < count; ++i) {
        if (absl::Status s = cursor.ReadString(values.emplace_back()); !s.ok()) {
          return WithContext(s, absl::StrCat("element ", i));
        }
      }
      out = std::move(values);
      return absl::OkStatus();
    }
    case GgufValueType::kArray:
      break;
  }
  return absl::InternalError("unreachable array element type");
}

absl::Status ReadValue(Cursor& cursor, GgufValue& out) {
  uint32_t raw_type = 0;
  KVSERVE_RETURN_IF_ERROR(cursor.Read(raw_type));
  if (!IsKnownValueType(raw_type)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown value type ", raw_type));
  }
  const auto type = static_cast<GgufValueType>(raw_type);
  return type == GgufValueType::kArray ? ReadArrayValue(cursor, out)
                                       : ReadScalarValue(cursor, type, out);
}

bool AddOverflows(uint64_t a, uint64_t b, uint64_t& sum) {
  return __builtin_add_overflow(a, b, &sum);
}
bool MulOverflows(uint64_t a, uint64_t b, uint64_t& product) {
  return __builtin_mul_overflow(a, b, &product);
}

absl::Status ReadTensorInfo(Cursor& cursor, uint32_t alignment, GgufTensorInfo& info) {
  uint32_t n_dims = 0;
  uint32_t raw_type = 0;
  if (absl::Status s = cursor.ReadString(info.name); !s.ok()) return WithContext(s, "name");
  const std::string context = absl::StrCat("'", info.name, "'");
  if (absl::Status s = cursor.Read(n_dims); !s.ok()) return WithContext(s, context);
  if (n_dims == 0 || n_dims > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, " has ", n_dims, " dimensions (expected 1 to ", kMaxDims, ")"));
  }
  info.dims.resize(n_dims);
  info.num_elements = 1;
  for (uint64_t& dim : info.dims) {
    if (absl::Status s = cursor.Read(dim); !s.ok()) return WithContext(s, context);
    if (dim == 0) return absl::InvalidArgumentError(absl::StrCat(context, " has a zero dimension"));
    if (MulOverflows(info.num_elements, dim, info.num_elements) ||
        info.num_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(context, " element count overflows"));
    }
  }
  if (absl::Status s = cursor.Read(raw_type); !s.ok()) return WithContext(s, context);
  info.type = static_cast<GgmlType>(raw_type);
  absl::StatusOr<uint64_t> row_bytes = RowBytes(info.type, info.dims[0]);
  if (!row_bytes.ok()) return WithContext(row_bytes.status(), context);
  if (MulOverflows(*row_bytes, info.num_elements / info.dims[0], info.num_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(context, " byte size overflows"));
  }
  if (absl::Status s = cursor.Read(info.offset); !s.ok()) return WithContext(s, context);
  if (info.offset % alignment != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, " data offset ", info.offset, " is not a multiple of the alignment ", alignment));
  }
  return absl::OkStatus();
}

// Integers as 64-bit, so that int8/uint8 print as numbers.
template <typename T>
auto Widen(T v) {
  return static_cast<std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>(v);
}

template <typename T>
constexpr bool kIsInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <typename T>
constexpr bool kIsIntegerVector = false;
template <typename T>
constexpr bool kIsIntegerVector<std::vector<T>> = kIsInteger<T>;

absl::Status WrongType(std::string_view key, const GgufValue& value, std::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat("gguf: key '", AsAbsl(key), "' is ",
                                                 GgufValueTypeName(value), ", expected ",
                                                 AsAbsl(expected)));
}

absl::Status Missing(std::string_view key) {
  return absl::NotFoundError(absl::StrCat("gguf: missing key '", AsAbsl(key), "'"));
}

}  // namespace

std::string GgufValueTypeName(GgufValueType type) {
  static constexpr const char* kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                           "int32",  "float32", "bool",   "string", "array",
                                           "uint64", "int64",   "float64"};
  const auto id = static_cast<uint32_t>(type);
  return IsKnownValueType(id) ? std::string(kNames[id]) : absl::StrCat("type#", id);
}

GgufValueType GgufTypeOf(const GgufValue& value) {
  return value.index() >= 12 ? GgufValueType::kArray : kScalarTypes[value.index()];
}

GgufValueType GgufElementTypeOf(const GgufValue& value) { return kScalarTypes[value.index() % 12]; }

std::string GgufValueTypeName(const GgufValue& value) {
  const std::string element = GgufValueTypeName(GgufElementTypeOf(value));
  return GgufTypeOf(value) == GgufValueType::kArray ? absl::StrCat("array<", element, ">")
                                                    : element;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat("gguf: cannot open '", path, "': ", std::strerror(error)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("gguf: '", path, "' is not a regular file"));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("gguf: '", path, "' is empty"));
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int error = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat("gguf: cannot map '", path, "': ", std::strerror(error)));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->map_ = map;
  file->map_size_ = size;
  file->bytes_ = std::span<const uint8_t>(static_cast<const uint8_t*>(map), size);
  if (absl::Status s = file->Parse(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("gguf: ", path, ": ", s.message()));
  }
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::vector<uint8_t> bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->owned_ = std::move(bytes);
  file->bytes_ = file->owned_;
  if (absl::Status s = file->Parse(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("gguf: ", s.message()));
  }
  return file;
}

GgufFile::~GgufFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

absl::Status GgufFile::Parse() {
  Cursor cursor(bytes_);
  char magic[4] = {};
  if (absl::Status s = cursor.Read(magic); !s.ok()) {
    return absl::DataLossError(
        absl::StrCat("file of ", bytes_.size(), " bytes is too short for a GGUF header"));
  }
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return absl::InvalidArgumentError("bad magic (not a GGUF file)");
  }
  if (absl::Status s = cursor.Read(version_); !s.ok()) return WithContext(s, "version");
  if (version_ != 2 && version_ != 3) {
    const bool big_endian = __builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3;
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported version ", version_, " (supported: 2, 3)",
                     big_endian ? "; big-endian GGUF files are not supported" : ""));
  }
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  if (absl::Status s = cursor.Read(tensor_count); !s.ok()) return WithContext(s, "tensor count");
  if (absl::Status s = cursor.Read(kv_count); !s.ok()) return WithContext(s, "metadata count");
  if (kv_count > cursor.left() / kMinMetadataEntryBytes ||
      tensor_count > cursor.left() / kMinTensorInfoBytes) {
    return absl::DataLossError(absl::StrCat("header claims ", kv_count, " metadata entries and ",
                                            tensor_count, " tensors but only ", cursor.left(),
                                            " bytes follow"));
  }

  keys_.reserve(InitialCapacity(kv_count));
  metadata_.reserve(InitialCapacity(kv_count));
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    if (absl::Status s = cursor.ReadString(key); !s.ok()) {
      return WithContext(s, absl::StrCat("key of metadata entry ", i));
    }
    if (metadata_.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate metadata key '", key, "'"));
    }
    GgufValue value;
    if (absl::Status s = ReadValue(cursor, value); !s.ok()) {
      return WithContext(s, absl::StrCat("metadata '", key, "'"));
    }
    metadata_.emplace(key, std::move(value));
    keys_.push_back(std::move(key));
  }

  absl::StatusOr<uint32_t> alignment = GetUint32Or(kAlignmentKey, kDefaultAlignment);
  if (!alignment.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", kAlignmentKey, " (",
                                                   GgufValueTypeName(*FindValue(kAlignmentKey)),
                                                   "): must be a uint32 power of two"));
  }
  if (!std::has_single_bit(*alignment)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kAlignmentKey, " ", *alignment, " is not a power of two"));
  }
  alignment_ = *alignment;

  tensors_.reserve(InitialCapacity(tensor_count));
  tensor_index_.reserve(InitialCapacity(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo& info = tensors_.emplace_back();
    if (absl::Status s = ReadTensorInfo(cursor, alignment_, info); !s.ok()) {
      return WithContext(s, absl::StrCat("tensor ", i));
    }
    if (!tensor_index_.emplace(info.name, i).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", info.name, "'"));
    }
  }

  data_offset_ = cursor.pos() + (alignment_ - cursor.pos() % alignment_) % alignment_;
  for (GgufTensorInfo& info : tensors_) {
    const uint64_t relative = info.offset;
    uint64_t end = 0;
    if (AddOverflows(data_offset_, relative, info.offset) ||
        AddOverflows(info.offset, info.num_bytes, end) || end > bytes_.size()) {
      return absl::DataLossError(
          absl::StrCat("tensor '", info.name, "' data [", data_offset_, " + ", relative, ", +",
                       info.num_bytes, ") extends past end of file (", bytes_.size(), " bytes)"));
    }
  }

  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensorInfo& prev = tensors_[order[i - 1]];
    const GgufTensorInfo& next = tensors_[order[i]];
    if (prev.offset + prev.num_bytes > next.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensors '", prev.name, "' and '", next.name, "' overlap"));
    }
  }
  return absl::OkStatus();
}

bool GgufFile::Has(std::string_view key) const { return metadata_.contains(AsAbsl(key)); }

const GgufValue* GgufFile::FindValue(std::string_view key) const {
  auto it = metadata_.find(AsAbsl(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

absl::StatusOr<uint32_t> GgufFile::GetUint32(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  return std::visit(
      [&](const auto& v) -> absl::StatusOr<uint32_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (kIsInteger<T>) {
          if (std::in_range<uint32_t>(v)) return static_cast<uint32_t>(v);
          return absl::InvalidArgumentError(absl::StrCat("gguf: key '", AsAbsl(key), "' value ",
                                                         Widen(v), " (", GgufValueTypeName(*value),
                                                         ") does not fit in uint32"));
        } else {
          return WrongType(key, *value, "an integer");
        }
      },
      *value);
}

absl::StatusOr<float> GgufFile::GetFloat32(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  if (const float* f = std::get_if<float>(value)) return *f;
  if (const double* d = std::get_if<double>(value)) return static_cast<float>(*d);
  return WrongType(key, *value, "float32");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  if (const bool* b = std::get_if<bool>(value)) return *b;
  return WrongType(key, *value, "bool");
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  if (const std::string* s = std::get_if<std::string>(value)) return *s;
  return WrongType(key, *value, "string");
}

absl::StatusOr<std::span<const std::string>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  if (const auto* a = std::get_if<std::vector<std::string>>(value)) return std::span(*a);
  return WrongType(key, *value, "array<string>");
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloat32Array(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  if (const auto* a = std::get_if<std::vector<float>>(value)) return *a;
  if (const auto* a = std::get_if<std::vector<double>>(value)) {
    return std::vector<float>(a->begin(), a->end());
  }
  return WrongType(key, *value, "array<float32>");
}

absl::StatusOr<std::vector<int32_t>> GgufFile::GetInt32Array(std::string_view key) const {
  const GgufValue* value = FindValue(key);
  if (value == nullptr) return Missing(key);
  return std::visit(
      [&](const auto& v) -> absl::StatusOr<std::vector<int32_t>> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (kIsIntegerVector<T>) {
          std::vector<int32_t> out(v.size());
          for (size_t i = 0; i < v.size(); ++i) {
            if (!std::in_range<int32_t>(v[i])) {
              return absl::InvalidArgumentError(
                  absl::StrCat("gguf: key '", AsAbsl(key), "' element ", i, " value ", Widen(v[i]),
                               " does not fit in int32"));
            }
            out[i] = static_cast<int32_t>(v[i]);
          }
          return out;
        } else {
          return WrongType(key, *value, "an integer array");
        }
      },
      *value);
}

absl::StatusOr<uint32_t> GgufFile::GetUint32Or(std::string_view key, uint32_t fallback) const {
  return Has(key) ? GetUint32(key) : fallback;
}

absl::StatusOr<float> GgufFile::GetFloat32Or(std::string_view key, float fallback) const {
  return Has(key) ? GetFloat32(key) : fallback;
}

absl::StatusOr<bool> GgufFile::GetBoolOr(std::string_view key, bool fallback) const {
  return Has(key) ? GetBool(key) : fallback;
}

absl::StatusOr<std::string> GgufFile::GetStringOr(std::string_view key,
                                                  std::string fallback) const {
  return Has(key) ? GetString(key) : std::move(fallback);
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(AsAbsl(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> GgufFile::TensorBytes(const GgufTensorInfo& info) const {
  if (info.offset > bytes_.size() || info.num_bytes > bytes_.size() - info.offset) return {};
  return bytes_.subspan(info.offset, info.num_bytes);
}

void GgufFile::ReleaseTensorPages(const GgufTensorInfo& info) const {
  const std::span<const uint8_t> bytes = TensorBytes(info);
  if (map_ == nullptr || bytes.empty()) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto map_begin = reinterpret_cast<uintptr_t>(map_);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(bytes.data()) / page * page;
  const uintptr_t end =
      std::min(map_begin + (map_size_ + page - 1) / page * page,
               (reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size() + page - 1) / page * page);
  // A read-only private file mapping: dropped pages are read from the file again if touched
  // (a neighbour's edge page), so this only lowers the resident set.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::Status GgufFile::ReadTensorF32(const GgufTensorInfo& info, std::span<float> out) const {
  if (out.size() != info.num_elements) {
    return absl::InvalidArgumentError(absl::StrCat("gguf: tensor '", info.name, "' has ",
                                                   info.num_elements, " elements, output holds ",
                                                   out.size()));
  }
  const std::span<const uint8_t> bytes = TensorBytes(info);
  if (bytes.size() != info.num_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("gguf: tensor '", info.name, "' does not lie within this file"));
  }
  if (absl::Status s = DequantizeToF32(info.type, bytes, out); !s.ok()) {
    return WithContext(s, absl::StrCat("gguf: tensor '", info.name, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> GgufFile::ReadTensorF32(const GgufTensorInfo& info) const {
  if (!CanDequantize(info.type)) {
    return absl::UnimplementedError(absl::StrCat(
        "gguf: tensor '", info.name, "' has unsupported type ", GgmlTypeName(info.type)));
  }
  std::vector<float> out(info.num_elements);
  KVSERVE_RETURN_IF_ERROR(ReadTensorF32(info, out));
  return out;
}

}  // namespace kvserve
