// html_to_text as a unit of its own (web_fetch_test.cpp covers the reduction through the
// capability): the title apart, a charset given or read from <meta>, a given charset that wins
// over the <meta> (text already converted to UTF-8 stays as it is), an unknown charset, empty
// and unparseable input.
#include "parley/capabilities/html_text.h"

#include <gtest/gtest.h>

#include <optional>

#include "parley/base/text.h"

namespace parley::capabilities {
namespace html_text_test {

TEST(HtmlTextTest, TitleAndTextApart) {
  const auto r = html_to_text(
      "<html><head><title> A  title </title></head><body><h1>Head</h1><p>one<br>two</p>"
      "<ol><li>x</li></ol></body></html>",
      "utf-8");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->title, "A title");
  EXPECT_EQ(r->text, "Head\n\none\ntwo\n\n- x");
}

TEST(HtmlTextTest, CharsetGivenOrFromTheMetaTag) {
  EXPECT_EQ(html_to_text("<p>caf\xE9</p>", "iso-8859-1")->text, "café");
  EXPECT_EQ(html_to_text("<meta charset=\"iso-8859-1\"><p>caf\xE9</p>", "")->text, "café");
  // UTF-8 already (the email channel converts first): the <meta> must not convert it again.
  EXPECT_EQ(html_to_text("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
                         "charset=iso-8859-1\"></head><body>caf\xC3\xA9</body></html>",
                         "utf-8")
                ->text,
            "café");
  EXPECT_EQ(html_to_text("<p>plain</p>", "x-no-such-charset")->text, "plain");
}

TEST(HtmlTextTest, EmptyAndBrokenInput) {
  EXPECT_EQ(html_to_text("", "")->text, "");
  EXPECT_EQ(html_to_text("\xFF\xFE\x00\x01", "utf-8")->title, "");
  const auto broken = html_to_text("<p>a<b>b</p><<<>>>&&&;<p>c", "");
  ASSERT_TRUE(broken.ok());
  EXPECT_EQ(invalid_utf8_at(broken->text), std::nullopt);
}

}  // namespace html_text_test
}  // namespace parley::capabilities
