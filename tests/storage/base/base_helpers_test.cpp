// The small helpers every layer shares (parley/base): UTF-8 checks, HTML escaping, UTC time
// text, dollars from nano-dollars, base64, the words of a full-text search.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/base64.h"
#include "parley/base/text.h"
#include "parley/base/time_format.h"
#include "parley/base/usd.h"

namespace parley {
namespace base_helpers_test {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesWhatItEncodesAndRefusesTheRest) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (size_t n = 0; n <= bytes.size(); n += 37) {
    const auto back = base64_decode(base64_encode(bytes.substr(0, n)));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes.substr(0, n));
  }
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_FALSE(base64_decode("Zm8"));   // not a multiple of four
  EXPECT_FALSE(base64_decode("Zm=8"));  // padding in the middle
  EXPECT_FALSE(base64_decode("Z=8="));
  EXPECT_FALSE(base64_decode("Zm9v\n"));
  EXPECT_FALSE(base64_decode("Zm9-"));  // the URL alphabet is not this one
  EXPECT_FALSE(base64_decode("Zg==Zg=="));
}

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
  EXPECT_EQ(invalid_utf8_at("\x80"), 0u);              // a stray continuation byte
}

TEST(Utf8, ValidUtf8ReplacesEachBadByteWithTheReplacementCharacter) {
  EXPECT_EQ(valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(valid_utf8("a\xff"
                       "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(valid_utf8("x\xc0\xaf"), "x\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: both bytes
  EXPECT_EQ(valid_utf8("end\xe2\x82"), "end\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_FALSE(invalid_utf8_at(valid_utf8("\xed\xa0\x80\xf4\x90\x80\x80\xfe")));
}

TEST(Utf8, LengthsAndPrefixesCountCharacters) {
  EXPECT_EQ(utf8_length("caf\xc3\xa9"), 4u);
  EXPECT_EQ(utf8_length("\xf0\x9f\x98\x80!"), 2u);
  EXPECT_EQ(utf8_first_chars("caf\xc3\xa9 au lait", 4), "caf\xc3\xa9");
  EXPECT_EQ(utf8_first_chars("ab", 5), "ab");
  // A byte limit that falls inside é keeps the text before it.
  EXPECT_EQ(utf8_prefix("caf\xc3\xa9", 4), "caf");
  EXPECT_EQ(utf8_prefix("caf\xc3\xa9", 5), "caf\xc3\xa9");
  EXPECT_EQ(utf8_prefix("abc", 10), "abc");
}

TEST(Html, EscapesTheFiveCharactersAndRepairsUtf8) {
  EXPECT_EQ(html_escape(R"(<a href="x">Tom & Jerry's</a>)"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(html_escape("caf\xc3\xa9\xff"), "caf\xc3\xa9\xEF\xBF\xBD");
}

TEST(HtmlEscape, EscapesMarkupAndReplacesInvalidUtf8) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(html_escape("Zoë 日本 🙂"), "Zoë 日本 🙂");
  EXPECT_EQ(html_escape("a\xff"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(html_escape("\xC3"), "\xEF\xBF\xBD");                  // truncated sequence
  EXPECT_EQ(html_escape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(html_escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(SearchWords, KeepsLettersDigitsUnderscoresAndUtf8DropsEverythingElse) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(search_words("wifi password?"), (V{"wifi", "password"}));
  EXPECT_EQ(search_words("\"quoted\" OR (NEAR) -x* snake_case 42"),
            (V{"quoted", "OR", "NEAR", "x", "snake_case", "42"}));
  EXPECT_EQ(search_words("café naïve 東京"), (V{"café", "naïve", "東京"}));
  EXPECT_TRUE(search_words("").empty());
  EXPECT_TRUE(search_words(" ,.!?\"'()*").empty());
}

TEST(TimeFormat, UtcTextOfEpochMilliseconds) {
  EXPECT_EQ(iso_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso_utc(1'764'935'318'999), "2025-12-05T11:48:38Z");
  EXPECT_EQ(iso_utc(-1), "1969-12-31T23:59:59Z");  // floors toward the past
  EXPECT_EQ(utc_day(1'700'000'000'000), "2023-11-14");
  EXPECT_EQ(utc_day(1'704'067'199'999), "2023-12-31");
  EXPECT_EQ(utc_day(1'704'067'200'000), "2024-01-01");
  EXPECT_EQ(utc_day(-1), "1969-12-31");
  EXPECT_EQ(utc_minute(1'764'935'318'999), "2025-12-05 11:48");
}

TEST(TimeFormat, ParsesIsoDatesTimesAndOffsetsAndRefusesTheRest) {
  EXPECT_EQ(parse_iso_utc("2025-12-05"), 1'764'892'800'000);
  EXPECT_EQ(parse_iso_utc("2025-12-05T11:48:38Z"), 1'764'935'318'000);
  EXPECT_EQ(parse_iso_utc("2025-12-05T11:48:38.999Z"), 1'764'935'318'999);
  EXPECT_EQ(parse_iso_utc("2025-12-05T11:48:38.9Z"), 1'764'935'318'900);
  EXPECT_EQ(parse_iso_utc("2025-12-05 11:48"), 1'764'935'280'000);
  EXPECT_EQ(parse_iso_utc("2025-12-05T12:48:38+01:00"), 1'764'935'318'000);
  EXPECT_EQ(parse_iso_utc("2025-12-05T06:18:38-0530"), 1'764'935'318'000);
  EXPECT_EQ(parse_iso_utc("1969-12-31"), -86'400'000);
  for (const char* bad :
       {"", "2025-13-01", "2025-02-30", "2025-12-5", "2025-12-05T24:00", "2025-12-05T11:48:38ZZ",
        "2025-12-05T11:48+1", "yesterday", "2025-12-05T11:48:38.Z", "2025-12-05x"}) {
    EXPECT_FALSE(parse_iso_utc(bad).has_value()) << bad;
  }
}

constexpr int64_t kUsd = 1'000'000'000;

TEST(Usd, ShortFormFourDecimalsBelowADollarTwoAbove) {
  EXPECT_EQ(format_usd(0), "$0.0000");
  EXPECT_EQ(format_usd(12'340'000), "$0.0123");
  EXPECT_EQ(format_usd(12'350'000), "$0.0124");  // half up
  EXPECT_EQ(format_usd(12 * kUsd + 345'000'000), "$12.35");
  EXPECT_EQ(format_usd(-2 * kUsd), "-$2.00");
  EXPECT_EQ(format_usd(-1), "$0.0000");  // no "-$0.0000"
}

TEST(Usd, FixedDecimalsAndExact) {
  EXPECT_EQ(usd_fixed(1'234'500, 6), "$0.001235");
  EXPECT_EQ(usd_fixed(1'234'499, 6), "$0.001234");
  EXPECT_EQ(usd_fixed(5 * kUsd, 0), "$5");
  EXPECT_EQ(usd_fixed(1, 9), "$0.000000001");
  EXPECT_EQ(usd_fixed(INT64_MIN, 2), "-$9223372036.85");
  EXPECT_EQ(exact_usd(1'234'500), "0.001234500");
  EXPECT_EQ(exact_usd(-3 * kUsd), "-3.000000000");
  EXPECT_EQ(exact_usd(INT64_MIN), "-9223372036.854775808");
  EXPECT_DOUBLE_EQ(to_usd(1'500'000'000), 1.5);
}

}  // namespace base_helpers_test
}  // namespace parley
