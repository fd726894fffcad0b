// The fake embedder: deterministic, unit length, at any dimension count; similar texts close,
// unrelated ones apart; case and punctuation ignored; tokens counted as words.
#include "fakes/fake_embedder.h"

#include <gtest/gtest.h>

#include <cmath>

namespace parley::fakes {
namespace fake_embedder_test {

double norm(const std::vector<float>& v) { return std::sqrt(dot(v, v)); }

TEST(FakeEmbedder, IsDeterministicAndUnitLengthAtAnyDimensionCount) {
  for (const int dims : {1, 8, 64, 512, 1536}) {
    SCOPED_TRACE(dims);
    const auto a = fake_embedding("Remember that Alice likes green tea", dims);
    EXPECT_EQ(a.size(), static_cast<size_t>(dims));
    EXPECT_EQ(a, fake_embedding("Remember that Alice likes green tea", dims));
    EXPECT_NEAR(norm(a), 1.0, 1e-5);
  }
  EXPECT_EQ(fake_embedding("x").size(), static_cast<size_t>(kFakeEmbeddingDims));
}

TEST(FakeEmbedder, OneWordSpreadsOverSeveralComponents) {
  const auto v = fake_embedding("pizza", 64);
  int nonzero = 0;
  for (const float x : v) nonzero += x != 0 ? 1 : 0;
  EXPECT_GE(nonzero, 3) << "one word and its five trigrams spread over several components";
}

TEST(FakeEmbedder, IgnoresCaseAndPunctuation) {
  EXPECT_EQ(fake_embedding("Green TEA, please!"), fake_embedding("green tea please"));
}

TEST(FakeEmbedder, SimilarTextsAreCloseAndUnrelatedOnesApart) {
  const auto q = fake_embedding("what pizza does Bob like");
  const auto fact = fake_embedding("Bob likes pizza with anchovies");
  const auto plural = fake_embedding("pizzas");
  const auto singular = fake_embedding("pizza");
  const auto other = fake_embedding("the dentist appointment moved to Thursday");
  EXPECT_GT(dot(q, fact), 0.4);
  EXPECT_LT(std::abs(dot(q, other)), 0.2);
  EXPECT_GT(dot(q, fact), dot(q, other) + 0.3);
  // Four shared trigrams of weight 0.5, different words: 1 / sqrt(2.25 × 2.5) ≈ 0.42.
  EXPECT_NEAR(dot(plural, singular), 0.42, 0.05) << "shared trigrams";
  EXPECT_NEAR(dot(q, q), 1.0, 1e-5);
}

TEST(FakeEmbedder, ATextWithoutWordsIsStillAUnitVector) {
  const auto v = fake_embedding("?!  ...", 16);
  EXPECT_FLOAT_EQ(v[0], 1.0F);
  EXPECT_NEAR(norm(v), 1.0, 1e-6);
}

TEST(FakeEmbedder, NonAsciiLettersStayInsideTheirWord) {
  EXPECT_NE(fake_embedding("café"), fake_embedding("caf"));
  EXPECT_GT(dot(fake_embedding("crème brûlée"), fake_embedding("crème brûlée recipe")), 0.5);
}

TEST(FakeEmbedder, TokensAreWords) {
  EXPECT_EQ(fake_embedding_tokens("the cat sat on the mat"), 6);
  EXPECT_EQ(fake_embedding_tokens("well-known, isn't it?"), 5);
  EXPECT_EQ(fake_embedding_tokens("..."), 1) << "at least one";
}

}  // namespace fake_embedder_test
}  // namespace parley::fakes
