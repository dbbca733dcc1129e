#include "engine/model/weight_matrix.h"

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dequantize_rows.h"
#include "kernels/cpu/quantize_rows.h"

namespace kvserve {

using kernels::cpu::WeightFormat;

size_t WeightMatrix::row_bytes() const {
  const std::optional<WeightFormat> f = KernelFormat(type);
  return f ? kernels::cpu::RowBytesOf(*f, cols) : 0;
}

std::optional<WeightFormat> KernelFormat(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return WeightFormat::kF32;
    case GgmlType::kF16:
      return WeightFormat::kF16;
    case GgmlType::kBF16:
      return WeightFormat::kBF16;
    case GgmlType::kQ8_0:
      return WeightFormat::kQ8_0;
    case GgmlType::kQ4_0:
      return WeightFormat::kQ4_0;
    case GgmlType::kQ4_1:
      return WeightFormat::kQ4_1;
    case GgmlType::kQ4_K:
      return WeightFormat::kQ4_K;
    case GgmlType::kQ5_K:
      return WeightFormat::kQ5_K;
    case GgmlType::kQ6_K:
      return WeightFormat::kQ6_K;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<WeightMatrix> WrapMatrix(GgmlType type, int64_t rows, int64_t cols,
                                        std::span<const uint8_t> bytes, absl::string_view what) {
  const std::optional<WeightFormat> f = KernelFormat(type);
  if (!f) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": tensor type ", GgmlTypeName(type), " has no CPU kernels"));
  }
  const int block = kernels::cpu::LayoutOf(*f).block_size;
  if (rows < 0 || cols <= 0 || cols % block != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", cols, " columns of ", GgmlTypeName(type),
                     " are not a whole number of ", block, "-element blocks"));
  }
  WeightMatrix m{.type = type, .rows = rows, .cols = cols, .bytes = {}};
  if (bytes.size() != static_cast<size_t>(rows) * m.row_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", bytes.size(), " bytes for ", rows,
                                                   " x ", cols, " ", GgmlTypeName(type)));
  }
  m.bytes.assign(bytes.begin(), bytes.end());
  return m;
}

absl::StatusOr<WeightMatrix> QuantizeMatrix(std::span<const float> values, int64_t rows,
                                            int64_t cols, GgmlType type, absl::string_view what) {
  const std::optional<WeightFormat> f = KernelFormat(type);
  if (!f || !kernels::cpu::CanQuantizeTo(*f)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot quantize to ",
                                                   GgmlTypeName(type),
                                                   " (targets: F32, F16, BF16, Q8_0, Q4_0, Q4_1)"));
  }
  const int block = kernels::cpu::LayoutOf(*f).block_size;
  if (cols <= 0 || cols % block != 0 || values.size() != static_cast<size_t>(rows * cols)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a ", rows, " x ", cols, " matrix cannot be stored as ",
                     GgmlTypeName(type), " (", block, "-element blocks per row)"));
  }
  WeightMatrix m{.type = type, .rows = rows, .cols = cols, .bytes = {}};
  const size_t row_bytes = m.row_bytes();
  m.bytes.resize(static_cast<size_t>(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::cpu::QuantizeRow(*f, values.data() + r * cols, m.bytes.data() + r * row_bytes, cols);
  }
  return m;
}

std::vector<float> DequantizeMatrix(const WeightMatrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));
  if (!out.empty())
    kernels::cpu::DequantizeRows(*KernelFormat(m.type), m.bytes.data(), m.cols, 0, m.rows,
                                 out.data());
  return out;
}

}  // namespace kvserve
