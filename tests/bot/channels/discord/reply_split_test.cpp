// split_reply: a short text unchanged; long ones cut at paragraphs, lines, words and inside a word;
// code blocks closed and reopened across a cut, and cuts at a block's edges; multi-byte characters
// at a cut; tiny limits; and a property test over generated replies: every part within the limit,
// valid UTF-8 and not blank, and the parts, without the fence lines added and the whitespace
// dropped at the cuts, are the text.
#include "parley/bot/channels/discord/reply_split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/text.h"

namespace reply_split_test {

using parley::invalid_utf8_at;
using parley::utf8_length;
using parley::bot::channels::discord::split_reply;
using Parts = std::vector<std::string>;

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

bool blank(std::string_view text) { return text.find_first_not_of(kWhitespace) == text.npos; }

std::string repeat(std::string_view piece, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) out.append(piece);
  return out;
}

std::string join(const Parts& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.append(separator);
    out.append(parts[i]);
  }
  return out;
}

// `count` words of filler, separated by spaces, exactly `size` characters long.
std::string filler_line(size_t size, size_t seed) {
  std::string line;
  for (size_t word = seed; line.size() < size; ++word) {
    if (!line.empty()) line.push_back(' ');
    line.append("word").append(std::to_string(word % 97));
  }
  line.resize(size);
  if (line.back() == ' ') line.back() = 'x';
  return line;
}

// Fences as the contract defines them, read independently of the splitter: the block open after
// the lines of `text` that start before a position.
class FenceTracker {
 public:
  explicit FenceTracker(std::string_view text) : text_(text) {}

  void advance_to(size_t pos) {
    while (next_line_ < pos && next_line_ < text_.size()) {
      const size_t end = std::min(text_.find('\n', next_line_), text_.size());
      read(text_.substr(next_line_, end - next_line_));
      next_line_ = end + 1;
    }
  }
  bool open() const { return !opener_.empty(); }
  const std::string& opener() const { return opener_; }
  const std::string& closer() const { return closer_; }

 private:
  void read(std::string_view line) {
    const size_t indent = std::min(line.find_first_not_of(' '), line.size());
    const size_t ticks_end = std::min(line.find_first_not_of('`', indent), line.size());
    const size_t ticks = ticks_end - indent;
    if (indent > 3 || ticks < 3) return;
    const std::string_view after = line.substr(ticks_end);
    if (!open()) {
      if (after.find('`') != after.npos) return;
      opener_ = std::string(line.substr(0, line.find_last_not_of(kWhitespace) + 1));
      closer_ = std::string(line.substr(0, ticks_end));
    } else if (ticks >= closer_.size() - closer_.find('`') && blank(after)) {
      opener_.clear();
      closer_.clear();
    }
  }

  std::string_view text_;
  size_t next_line_ = 0;
  std::string opener_;
  std::string closer_;
};

// Walks `text` alongside the parts: each part, without a reopening line and a closing line that
// split_reply added, must be the next piece of the text after whitespace. Whether a part's last
// line was added is ambiguous when the text itself closes a block there, so both readings are
// tried.
class Reassembly {
 public:
  Reassembly(std::string_view text, const Parts& parts, size_t limit)
      : text_(text), parts_(parts), limit_(limit) {}

  bool holds() { return from(0, 0, FenceTracker(text_), false); }
  size_t first_unmatched() const { return deepest_; }

 private:
  // Where `body` ends in the text when it follows text[pos] after whitespace.
  std::optional<size_t> match(size_t pos, std::string_view body) const {
    const size_t text_first = text_.find_first_not_of(kWhitespace, pos);
    const size_t body_first = body.find_first_not_of(kWhitespace);
    if (text_first == text_.npos || body_first == body.npos) return std::nullopt;
    if (body_first > text_first - pos) return std::nullopt;
    const size_t start = text_first - body_first;
    if (text_.substr(start, body.size()) != body) return std::nullopt;
    return start + body.size();
  }

  bool from(size_t index, size_t pos, FenceTracker fences, bool reopened) {
    deepest_ = std::max(deepest_, index);
    fences.advance_to(pos);
    if (index == parts_.size()) return blank(text_.substr(pos));
    std::string_view body = parts_[index];
    if (reopened) {
      const std::string line = fences.opener() + "\n";
      if (!fences.open() || !body.starts_with(line)) return false;
      body.remove_prefix(line.size());
    }
    if (auto end = match(pos, body)) {
      FenceTracker after = fences;
      after.advance_to(*end);
      // A cut inside a block must close it when the fence lines fit with room to spare (the
      // contract lets a block stay open only when they, a character and the indentation that
      // starts the part do not fit).
      const bool left_open =
          after.open() && !blank(text_.substr(*end)) &&
          utf8_length(after.opener()) + utf8_length(after.closer()) + 20 <= limit_;
      if (!left_open && from(index + 1, *end, after, false)) return true;
    }
    const size_t last_line = body.rfind('\n');
    if (last_line == body.npos) return false;
    if (auto end = match(pos, body.substr(0, last_line))) {
      FenceTracker after = fences;
      after.advance_to(*end);
      if (after.open() && body.substr(last_line + 1) == after.closer()) {
        return from(index + 1, *end, after, true);
      }
    }
    return false;
  }

  std::string_view text_;
  const Parts& parts_;
  size_t limit_;
  size_t deepest_ = 0;
};

// Everything the contract promises of split_reply(text, limit).
::testing::AssertionResult splits_well(std::string_view text, size_t limit) {
  const Parts parts = split_reply(text, limit);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (blank(parts[i])) return ::testing::AssertionFailure() << "part " << i << " is blank";
    if (invalid_utf8_at(parts[i])) {
      return ::testing::AssertionFailure() << "part " << i << " is not valid UTF-8";
    }
    if (utf8_length(parts[i]) > limit) {
      return ::testing::AssertionFailure()
             << "part " << i << " has " << utf8_length(parts[i]) << " characters";
    }
  }
  if (blank(text) != parts.empty()) {
    return ::testing::AssertionFailure() << parts.size() << " parts for a text that is "
                                         << (blank(text) ? "" : "not ") << "blank";
  }
  Reassembly reassembly(text, parts, limit);
  if (!reassembly.holds()) {
    const size_t i = reassembly.first_unmatched();
    return ::testing::AssertionFailure()
           << "the parts are not the text; part " << i << " of " << parts.size() << ": \""
           << (i < parts.size() ? parts[i] : "(end)") << "\"";
  }
  return ::testing::AssertionSuccess();
}

// Lines starting with ``` in `part`.
size_t fence_lines(std::string_view part) {
  size_t count = 0;
  for (size_t start = 0; start <= part.size();) {
    const size_t end = std::min(part.find('\n', start), part.size());
    if (part.substr(start, end - start).starts_with("```")) ++count;
    start = end + 1;
  }
  return count;
}

TEST(ReplySplit, ShortTextIsOnePartUnchanged) {
  EXPECT_EQ(split_reply("\n  Hello, **world**!  \n"), Parts{"\n  Hello, **world**!  \n"});
  const std::string full = repeat("a", 2000);
  EXPECT_EQ(split_reply(full), Parts{full});
  const std::string emoji = repeat("😀", 2000);  // 8,000 bytes but 2,000 characters
  EXPECT_EQ(split_reply(emoji), Parts{emoji});
  EXPECT_EQ(split_reply("abc", 3), Parts{"abc"});
  EXPECT_EQ(split_reply(""), Parts{});
  EXPECT_EQ(split_reply(" \n\n\t "), Parts{});
  EXPECT_EQ(split_reply("abc", 0), Parts{});
}

TEST(ReplySplit, ProseIsCutAtParagraphs) {
  // 17 paragraphs of 300 characters, each two lines: 6 fit in a part (1,810 characters).
  Parts paragraphs;
  for (size_t i = 0; i < 17; ++i) {
    paragraphs.push_back(filler_line(150, i) + "\n" + filler_line(149, i + 50));
  }
  const std::string text = join(paragraphs, "\n\n");
  ASSERT_GT(text.size(), 5000u);

  const Parts parts = split_reply(text);

  const auto paragraphs_from = [&](size_t first, size_t count) {
    return join(Parts(paragraphs.begin() + static_cast<std::ptrdiff_t>(first),
                      paragraphs.begin() + static_cast<std::ptrdiff_t>(first + count)),
                "\n\n");
  };
  EXPECT_EQ(parts, (Parts{paragraphs_from(0, 6), paragraphs_from(6, 6), paragraphs_from(12, 5)}));
}

TEST(ReplySplit, LinesAreCutAtLineBreaksWhenNoParagraphBreakFits) {
  // 50 lines of 99 characters: 20 fit in a part (1,999 characters).
  Parts lines;
  for (size_t i = 0; i < 50; ++i) lines.push_back(filler_line(99, i));
  const std::string text = join(lines, "\n");

  const Parts parts = split_reply(text);

  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], join(Parts(lines.begin(), lines.begin() + 20), "\n"));
  EXPECT_EQ(parts[1], join(Parts(lines.begin() + 20, lines.begin() + 40), "\n"));
  EXPECT_EQ(parts[2], join(Parts(lines.begin() + 40, lines.end()), "\n"));
}

TEST(ReplySplit, ALineIsCutBetweenWordsWhenNoLineBreakFits) {
  // 600 words of 8 characters on one line: 222 fit in a part (1,997 characters).
  Parts words;
  for (size_t i = 0; i < 600; ++i) words.push_back("word" + std::to_string(1000 + i));
  const std::string text = join(words, " ");

  const Parts parts = split_reply(text);

  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], join(Parts(words.begin(), words.begin() + 222), " "));
  EXPECT_EQ(parts[1], join(Parts(words.begin() + 222, words.begin() + 444), " "));
  EXPECT_EQ(parts[2], join(Parts(words.begin() + 444, words.end()), " "));
}

TEST(ReplySplit, WhitespaceAtACutIsDroppedButNotTheNextLinesIndentation) {
  const std::string first = filler_line(1990, 8);
  const std::string second = "    indented " + filler_line(100, 9);
  EXPECT_EQ(split_reply("\n \n" + first + "   \n\n\n" + second), (Parts{first, second}));
}

TEST(ReplySplit, AWordLongerThanTheLimitIsCutHard) {
  const std::string word = repeat("abcdefghi", 500);  // 4,500 characters, no space

  const Parts parts = split_reply(word);

  EXPECT_EQ(parts, (Parts{word.substr(0, 2000), word.substr(2000, 2000), word.substr(4000)}));
}

TEST(ReplySplit, ACodeBlockAcrossACutIsClosedAndReopenedWithItsLanguage) {
  Parts code;  // 80 lines of 45 characters: 3,600
  for (size_t i = 0; i < 80; ++i) {
    code.push_back("int line_" + std::to_string(10 + i) + " = 0;  // " + filler_line(24, i));
  }
  const std::string text =
      "Here is the code:\n\n```cpp\n" + join(code, "\n") + "\n```\n\nThat is all.";

  const Parts parts = split_reply(text);

  // The paragraph break before the block is the last that fits; in the block, the last line.
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "Here is the code:");
  // "```cpp\n" (7) + 43 lines (43 * 46 - 1) + "\n```" (4) = 1,988; a 44th line would not fit.
  EXPECT_EQ(parts[1], "```cpp\n" + join(Parts(code.begin(), code.begin() + 43), "\n") + "\n```");
  EXPECT_EQ(parts[2], "```cpp\n" + join(Parts(code.begin() + 43, code.end()), "\n") +
                          "\n```\n\nThat is all.");
  EXPECT_TRUE(splits_well(text, 2000));

  // Without a line break in the block, a cut between words still closes and reopens it.
  const std::string one_line = "```python\n" + filler_line(3000, 0) + "\n```";
  const Parts cut_line = split_reply(one_line);
  ASSERT_EQ(cut_line.size(), 2u);
  EXPECT_TRUE(cut_line[0].starts_with("```python\nword0 word1"));
  EXPECT_TRUE(cut_line[0].ends_with("\n```"));
  EXPECT_TRUE(cut_line[1].starts_with("```python\n"));
  EXPECT_TRUE(cut_line[1].ends_with("\n```"));
  EXPECT_LE(utf8_length(cut_line[0]), 2000u);
  EXPECT_GE(utf8_length(cut_line[0]), 1990u);
  EXPECT_TRUE(splits_well(one_line, 2000));
}

TEST(ReplySplit, ABlockLeftOpenAtTheEndStaysOpenInTheLastPart) {
  const std::string text = "```python\n" + join(Parts(100, "print('hello, world')  # 31 c"), "\n");

  const Parts parts = split_reply(text, 500);

  ASSERT_GE(parts.size(), 6u);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    EXPECT_TRUE(parts[i].ends_with("\n```")) << i;
    EXPECT_EQ(fence_lines(parts[i]), 2u) << i;
  }
  EXPECT_TRUE(parts.back().starts_with("```python\nprint("));
  EXPECT_EQ(fence_lines(parts.back()), 1u);
  EXPECT_TRUE(splits_well(text, 500));
}

TEST(ReplySplit, CutsAtTheEdgesOfABlockAddNoFenceLines) {
  const std::string after = "\nAfter the block. " + filler_line(300, 7);

  // The block ends exactly at the limit.
  const std::string block = "```\n" + filler_line(1992, 1) + "\n```";
  ASSERT_EQ(block.size(), 2000u);
  EXPECT_EQ(split_reply(block + after), (Parts{block, after.substr(1)}));

  // The block starts right after the limit.
  const std::string prose = filler_line(2000, 2);
  const std::string js = "```js\nlet x = 1;\n```";
  EXPECT_EQ(split_reply(prose + "\n" + js), (Parts{prose, js}));

  // Only the opening line fits, with room for a closing line after it (1,988 + 4): the block is
  // not sent empty but moves whole to the next part.
  const std::string lead = filler_line(1980, 3);
  const std::string cpp = "```cpp\n" + repeat("x", 60) + "\n```";
  EXPECT_EQ(split_reply(lead + "\n" + cpp), (Parts{lead, cpp}));

  // The best cut is the blank line before the closing line: the part takes the closing line
  // rather than leave the next part an empty block.
  const std::string code = "```cpp\n" + filler_line(1987, 5) + "\n\n```";
  ASSERT_EQ(code.size(), 1999u);
  EXPECT_EQ(split_reply(code + after), (Parts{code, after.substr(1)}));
}

TEST(ReplySplit, MultiByteCharactersAreNeverSplit) {
  const std::string e_acute = repeat("é", 2001);  // two bytes each
  EXPECT_EQ(split_reply(e_acute), (Parts{repeat("é", 2000), "é"}));

  const std::string emoji = "a" + repeat("😀", 2000);  // four bytes each
  EXPECT_EQ(split_reply(emoji), (Parts{"a" + repeat("😀", 1999), "😀"}));

  const std::string cjk = repeat("漢字", 2250);  // three bytes each
  EXPECT_EQ(split_reply(cjk),
            (Parts{repeat("漢字", 1000), repeat("漢字", 1000), repeat("漢字", 250)}));

  for (const size_t limit : {1u, 2u, 3u, 7u}) {
    for (const std::string& part : split_reply("日本語のテキスト😀é", limit)) {
      EXPECT_FALSE(invalid_utf8_at(part)) << limit;
      EXPECT_LE(utf8_length(part), limit);
    }
  }
}

TEST(ReplySplit, ACutAvoidsSplittingACharacterMadeOfSeveralCodePoints) {
  // "e" + U+0301 COMBINING ACUTE ACCENT: the window ends between the two.
  const std::string combining = "x" + repeat("e\u0301", 1500);
  EXPECT_EQ(split_reply(combining), (Parts{"x" + repeat("e\u0301", 999), repeat("e\u0301", 501)}));

  // A family: man, ZWJ, woman, ZWJ, girl (five code points); the window ends after the woman.
  const std::string family = "\U0001F468\u200D\U0001F469\u200D\U0001F467";
  EXPECT_EQ(split_reply("a" + repeat(family, 500)),
            (Parts{"a" + repeat(family, 399), repeat(family, 101)}));

  // A thumbs-up and its skin tone.
  const std::string thumbs = "\U0001F44D\U0001F3FD";
  EXPECT_EQ(split_reply("a" + repeat(thumbs, 1000)), (Parts{"a" + repeat(thumbs, 999), thumbs}));

  // One "character" longer than the limit is still cut.
  const std::string zalgo = "a" + repeat("\u0301", 2500);
  const Parts parts = split_reply(zalgo);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0] + parts[1], zalgo);
}

TEST(ReplySplit, InvalidUtf8IsReplacedSoEveryPartIsValid) {
  const std::string text = repeat("ab\xFF", 1000);

  const Parts parts = split_reply(text);

  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0] + parts[1], repeat("ab\uFFFD", 1000));
}

TEST(ReplySplit, TinyLimitsStillTerminateAndRespectTheLimit) {
  const std::string text =
      "Intro line.\n\n```python\ndef f(x):\n    return x * 2\n```\n\n漢字 😀 done " +
      repeat("z", 40);
  for (size_t limit = 1; limit <= 40; ++limit) {
    EXPECT_TRUE(splits_well(text, limit)) << "limit " << limit;
  }
  // One code point per part.
  const Parts ones = split_reply("ab 😀\n```\nc", 1);
  EXPECT_EQ(ones, (Parts{"a", "b", "😀", "`", "`", "`", "c"}));
  // 15 holds "```python\n", one character and "\n```": the block is closed and reopened.
  const Parts fifteen = split_reply("```python\nabcdefgh", 15);
  EXPECT_EQ(fifteen, (Parts{"```python\na\n```", "```python\nb\n```", "```python\nc\n```",
                            "```python\ndefgh"}));
  // 14 does not: the block is cut without fence lines.
  EXPECT_EQ(split_reply("```python\nabcdefgh", 14), (Parts{"```python", "abcdefgh"}));
}

// ---- Generated replies

class ReplyGenerator {
 public:
  explicit ReplyGenerator(unsigned seed) : rng_(seed) {}

  size_t limit() {
    static constexpr std::array<size_t, 14> kLimits = {1,  2,  3,  5,  8,   13,  15,
                                                       16, 24, 40, 64, 100, 500, 2000};
    return pick(0, 3) == 0 ? pick(1, 300) : kLimits[pick(0, kLimits.size() - 1)];
  }

  // A reply of about `size` bytes: prose, long tokens, code blocks, emoji and CJK.
  std::string reply(size_t size) {
    std::string out = pick(0, 9) == 0 ? "\n\n  " : "";
    while (out.size() < size) {
      switch (pick(0, 5)) {
        case 0:
        case 1: out += prose(size); break;
        case 2: out += token(pick(1, std::min<size_t>(3000, size))); break;
        case 3:
        case 4: out += code_block(size, true); break;
        default: out += wide_text(size); break;
      }
      out += pick_of(std::array<std::string_view, 6>{"\n\n", "\n", "\n\n\n", " \n\n", " ", ""});
    }
    if (pick(0, 9) == 0) out += code_block(size, false);
    if (pick(0, 9) == 0) out += "\n\n ";
    return out;
  }

 private:
  size_t pick(size_t low, size_t high) {
    return std::uniform_int_distribution<size_t>(low, high)(rng_);
  }
  template <typename Array>
  std::string_view pick_of(const Array& choices) {
    return choices[pick(0, choices.size() - 1)];
  }

  std::string_view word() {
    static constexpr std::array<std::string_view, 20> kWords = {
        "the",
        "bot",
        "replies",
        "with",
        "a",
        "long",
        "über",
        "naïve",
        "café",
        "漢字",
        "日本語",
        "x",
        "😀",
        "\U0001F44D\U0001F3FD",
        "\U0001F468\u200D\U0001F469\u200D\U0001F467",
        "e\u0301",
        "\U0001F1EB\U0001F1F7",
        "résumé",
        "reasonably",
        "parley"};
    return pick_of(kWords);
  }

  std::string words(size_t count) {
    std::string out;
    for (size_t i = 0; i < count; ++i) {
      if (i > 0) out += pick(0, 15) == 0 ? "\n" : pick(0, 20) == 0 ? "  " : " ";
      out += word();
    }
    return out;
  }

  std::string prose(size_t size) { return words(pick(1, std::max<size_t>(2, size / 8))); }

  std::string token(size_t length) {
    std::string out;
    for (size_t i = 0; i < length; ++i) {
      out +=
          pick(0, 30) == 0 ? std::string_view("é") : std::string_view("abcdefgh").substr(i % 8, 1);
    }
    return out;
  }

  std::string wide_text(size_t size) {
    std::string out;
    const size_t count = pick(1, std::max<size_t>(2, size / 6));
    for (size_t i = 0; i < count; ++i) {
      out += pick_of(std::array<std::string_view, 6>{"漢", "字", "😀", "かな", "한국어", "。"});
    }
    return out;
  }

  std::string code_block(size_t size, bool closed) {
    static constexpr std::array<std::string_view, 6> kOpeners = {
        "```", "```python", "```cpp", "  ```js", "````md", "```c++ linenums"};
    const std::string_view opener = pick_of(kOpeners);
    std::string out = std::string(opener) + (pick(0, 5) == 0 ? "  \n" : "\n");
    const size_t lines = pick(1, std::max<size_t>(2, size / 30));
    for (size_t i = 0; i < lines; ++i) {
      if (pick(0, 8) == 0) out += "\n";  // a blank line in the code
      out += std::string(pick(0, 8), ' ');
      out += pick(0, 20) == 0 ? token(pick(1, std::min<size_t>(300, size))) : words(pick(1, 8));
      out += "\n";
    }
    if (closed) out += std::string(opener.substr(0, opener.find_last_of('`') + 1)) + "\n";
    return out;
  }

  std::mt19937 rng_;
};

TEST(ReplySplit, GeneratedRepliesSplitIntoTheirPartsWithinTheLimit) {
  ReplyGenerator generate(20240611);
  for (int i = 0; i < 400; ++i) {
    const size_t limit = generate.limit();
    const std::string text = generate.reply(std::clamp<size_t>(limit * 15, 150, 12000));
    ASSERT_TRUE(splits_well(text, limit)) << "case " << i << ", limit " << limit << ":\n" << text;
  }
}

}  // namespace reply_split_test
