// Tests of the unified diff and the content hash.
#include "parley/prompts/text.h"

#include <gtest/gtest.h>

namespace parley::prompts {
namespace text_test {

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
