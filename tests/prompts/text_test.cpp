// Tests of UTF-8 validation, the unified diff and the content hash.
#include "parley/prompts/text.h"

#include <gtest/gtest.h>

namespace parley::prompts {
namespace text_test {

TEST(Utf8, AcceptsValidText) {
  EXPECT_FALSE(invalid_utf8_at(""));
  EXPECT_FALSE(invalid_utf8_at("plain ascii\n"));
  EXPECT_FALSE(invalid_utf8_at("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
}

TEST(Utf8, RejectsInvalidSequencesAtTheirOffset) {
  EXPECT_EQ(invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(invalid_utf8_at("caf\xc3"), 3u);           // truncated
  EXPECT_EQ(invalid_utf8_at("x\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(invalid_utf8_at("\xed\xa0\x80"), 0u);      // surrogate U+D800
  EXPECT_EQ(invalid_utf8_at("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(invalid_utf8_at("ok \xe2\x82 no"), 3u);    // bad continuation
}

TEST(Diff, EqualTextsHaveNoDiff) { EXPECT_EQ(unified_diff("a\nb\n", "a\nb\n", "x", "y"), ""); }

TEST(Diff, UnifiedFormatWithContext) {
  const std::string a = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";
  const std::string b = "one\ntwo\nthree\nFOUR\nfive\nsix\nseven\neight\n";
  const std::string d = unified_diff(a, b, "p v1", "p v2");
  EXPECT_EQ(d.rfind("--- p v1\n+++ p v2\n@@ ", 0), 0u) << d;
  EXPECT_NE(d.find("\n-four\n"), std::string::npos) << d;
  EXPECT_NE(d.find("\n+FOUR\n"), std::string::npos) << d;
  EXPECT_NE(d.find("\n+eight\n"), std::string::npos) << d;
  EXPECT_NE(d.find("\n one\n"), std::string::npos) << "context lines start with a space: " << d;
}

TEST(Diff, MissingFinalNewlineIsShown) {
  const std::string d = unified_diff("a\n", "a", "x", "y");
  EXPECT_NE(d.find("no newline"), std::string::npos) << d;
}

TEST(Hash, StableAndDistinct) {
  EXPECT_EQ(content_hash("abc"), content_hash("abc"));
  EXPECT_NE(content_hash("abc"), content_hash("abd"));
  EXPECT_EQ(content_hash("").size(), 16u);
}

}  // namespace text_test
}  // namespace parley::prompts
