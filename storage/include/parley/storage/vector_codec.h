// Embedding vectors as memory_vectors and embedding_cache store them: L2-normalised, then int8
// with one scale per vector (value ≈ byte · scale, scale = max|x| / 127). The dot product of
// two quantised vectors approximates the cosine of the originals. Plain values and free
// functions: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::storage {

// Larger vectors are refused: the int32 sum of dot() could overflow (127² · 65536 < 2³¹).
inline constexpr int kMaxVectorDimensions = 65536;

struct QuantizedVector {
  std::vector<int8_t> values;  // one byte per dimension
  float scale = 0;             // value ≈ byte · scale

  [[nodiscard]] int dimensions() const { return static_cast<int>(values.size()); }
};

// L2-normalises `v`, then quantises it. invalid_argument for an empty or too long vector, a
// zero vector (it has no direction) or a non-finite element.
[[nodiscard]] Result<QuantizedVector> quantize(std::span<const float> v);
// The original direction, unit length up to quantisation error.
[[nodiscard]] std::vector<float> dequantize(const QuantizedVector& v);
// ≈ the cosine of the originals: an int32 sum of byte products, times both scales.
// invalid_argument when the dimensions differ.
[[nodiscard]] Result<float> dot(const QuantizedVector& a, const QuantizedVector& b);
// dot() against a stored BLOB, without decoding it; invalid_argument when the lengths differ.
[[nodiscard]] Result<float> dot(const QuantizedVector& a, std::string_view blob, float blob_scale);

// The int32 sum of the byte products of a[0..n) and b[0..n): dot()'s kernel, for a scan over
// vectors held contiguously. REQUIRES: n <= kMaxVectorDimensions (no overflow).
[[nodiscard]] int32_t dot_bytes(const int8_t* a, const int8_t* b, size_t n);

// The BLOB stored: exactly dimensions() bytes, each the two's complement byte. Views `v`.
[[nodiscard]] std::span<const std::byte> encode(const QuantizedVector& v);
// A stored BLOB back; invalid_argument unless it is exactly `dimensions` bytes (0 < dimensions
// <= kMaxVectorDimensions) and the scale is positive and finite.
[[nodiscard]] Result<QuantizedVector> decode(std::string_view blob, double scale, int dimensions);

}  // namespace parley::storage
