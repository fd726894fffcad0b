// Tests of the vector codec: quantisation keeps a vector's direction, dot ≈ cosine, and what is
// not a direction (zero, mismatched lengths, a bad BLOB) is refused.
#include "parley/storage/vector_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace parley::storage {
namespace vector_codec_test {

std::vector<float> random_vector(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> d(0.0F, 1.0F);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0;
  double aa = 0;
  double bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

TEST(VectorCodec, RoundTripKeepsTheDirection) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    const auto v = random_vector(rng, 512);
    auto q = quantize(v);
    ASSERT_TRUE(q.ok()) << q.error().describe();
    EXPECT_EQ(q->dimensions(), 512);
    EXPECT_GT(cosine(v, dequantize(*q)), 0.999);
    const auto blob = encode(*q);
    ASSERT_EQ(blob.size(), 512u);
    auto back = decode(std::string(reinterpret_cast<const char*>(blob.data()), blob.size()),
                       static_cast<double>(q->scale), 512);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->values, q->values);
    EXPECT_FLOAT_EQ(back->scale, q->scale);
  }
}

TEST(VectorCodec, DotIsTheCosineOfTheOriginals) {
  std::mt19937 rng(11);
  for (int i = 0; i < 20; ++i) {
    const auto a = random_vector(rng, 512);
    auto b = random_vector(rng, 512);
    // Correlated pairs too, so cosines near 1 are checked as well as near 0.
    if (i % 2 == 0) {
      for (size_t k = 0; k < b.size(); ++k) b[k] = a[k] + 0.3F * b[k];
    }
    auto qa = quantize(a);
    auto qb = quantize(b);
    ASSERT_TRUE(qa.ok() && qb.ok());
    auto d = dot(*qa, *qb);
    ASSERT_TRUE(d.ok());
    EXPECT_NEAR(*d, cosine(a, b), 0.01);
    const auto blob = encode(*qb);
    auto d_blob = dot(
        *qa, std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()), qb->scale);
    ASSERT_TRUE(d_blob.ok());
    EXPECT_FLOAT_EQ(*d_blob, *d);
  }
  auto self = quantize(std::vector<float>{3, 4});
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(*dot(*self, *self), 1.0, 0.01) << "normalised before quantising";
}

TEST(VectorCodec, ZeroEmptyAndNonFiniteVectorsAreRefused) {
  EXPECT_EQ(quantize(std::vector<float>(8, 0.0F)).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(quantize(std::vector<float>{}).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(quantize(std::vector<float>{1.0F, NAN}).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(quantize(std::vector<float>{1.0F, INFINITY}).error().code, ErrorCode::invalid_argument);
}

TEST(VectorCodec, LengthMismatchIsRefused) {
  auto a = quantize(std::vector<float>{1, 0, 0});
  auto b = quantize(std::vector<float>{1, 0});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(dot(*a, *b).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(dot(*a, std::string_view("\x01\x02", 2), 0.1F).error().code,
            ErrorCode::invalid_argument);
  EXPECT_EQ(decode(std::string_view("\x01\x02", 2), 0.1, 3).error().code,
            ErrorCode::invalid_argument);
  EXPECT_EQ(decode(std::string_view("\x01\x02", 2), 0.0, 2).error().code,
            ErrorCode::invalid_argument);
  EXPECT_TRUE(decode(std::string_view("\x01\x02", 2), 0.1, 2).ok());
}

}  // namespace vector_codec_test
}  // namespace parley::storage
