#include "parley/bot/channels/discord/reply_split.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "parley/base/text.h"

namespace parley::bot::channels::discord {

namespace {

constexpr std::string_view kSpace = " \t\r\n\f\v";
constexpr size_t kNone = std::string_view::npos;

bool is_blank(std::string_view text) { return text.find_first_not_of(kSpace) == kNone; }

std::string_view trim_right(std::string_view text) {
  const size_t last = text.find_last_not_of(kSpace);
  return text.substr(0, last == kNone ? 0 : last + 1);
}

// The end of text[0, end) without its trailing whitespace.
size_t trimmed_end(std::string_view text, size_t end) {
  return trim_right(text.substr(0, end)).size();
}

// The line of `text` that starts at `start`, without its "\n".
std::string_view line_at(std::string_view text, size_t start) {
  return text.substr(start, text.find('\n', start) - start);
}

// ---- Code fences

// An open ``` block: the line that reopens it in the next part and the one that closes it.
struct Fence {
  std::string opener;  // the opening line without trailing whitespace: "```cpp"
  std::string closer;  // the opening line's indentation and backticks: "```"
};

// Where the backticks of a fence line end (after at most three spaces and three or more
// backticks); 0 when `line` is no fence line.
size_t fence_marker_end(std::string_view line) {
  const size_t indent = line.find_first_not_of(' ');
  if (indent == kNone || indent > 3) return 0;
  const size_t ticks_end = std::min(line.find_first_not_of('`', indent), line.size());
  return ticks_end - indent >= 3 ? ticks_end : 0;
}

size_t backticks(std::string_view line) { return fence_marker_end(line) - line.find('`'); }

std::optional<Fence> opening_fence(std::string_view line) {
  const size_t marker_end = fence_marker_end(line);
  // An info string has no backtick: "```x```" is inline code.
  if (marker_end == 0 || line.find('`', marker_end) != kNone) return std::nullopt;
  return Fence{std::string(trim_right(line)), std::string(line.substr(0, marker_end))};
}

bool closes(const Fence& fence, std::string_view line) {
  const size_t marker_end = fence_marker_end(line);
  return marker_end != 0 && backticks(line) >= backticks(fence.closer) &&
         is_blank(line.substr(marker_end));
}

// ---- The text still to send

struct Cursor {
  std::string_view rest;       // the text not yet in a part
  bool at_line_start = true;   // rest starts a line of the text (fences are whole lines)
  std::optional<Fence> fence;  // the block open where rest starts
  bool reopen = false;         // the previous part closed `fence`: the next one reopens it
};

// The block open at rest[end] and where the line that opened it starts (kNone when it was open
// before rest). A line that starts before `end` counts whole.
struct FenceScan {
  std::optional<Fence> fence;
  size_t opener_start = kNone;
};

// Where the line after the one holding text[i] starts; text.size() when there is none.
size_t next_line_start(std::string_view text, size_t i) {
  const size_t newline = text.find('\n', i);
  return newline == kNone ? text.size() : newline + 1;
}

FenceScan scan_fences(const Cursor& cursor, size_t end) {
  FenceScan scan{cursor.fence, kNone};
  // Lines are found within rest[0, end) and read whole only where they start, so a long line
  // costs nothing for each part it spans.
  const std::string_view before_end = cursor.rest.substr(0, end);
  size_t start = cursor.at_line_start ? 0 : next_line_start(before_end, 0);
  for (; start < before_end.size(); start = next_line_start(before_end, start)) {
    const std::string_view line = line_at(cursor.rest, start);
    if (scan.fence && closes(*scan.fence, line)) {
      scan = {};
    } else if (!scan.fence) {
      if (auto opened = opening_fence(line)) scan = {std::move(opened), start};
    }
  }
  return scan;
}

// Whether a block can be closed and reopened within `limit`: its two lines and one character.
bool fence_lines_fit(const Fence& fence, size_t limit) {
  return utf8_length(fence.opener) + utf8_length(fence.closer) + 3 <= limit;
}

// ---- Cuts

// A cut: the part takes rest[0, end); the next part starts at rest[next]; what lies between is
// whitespace, dropped.
struct Cut {
  size_t end = 0;
  size_t next = 0;
};

// Past the whitespace that starts at `i`, but not past the indentation of the line after it.
size_t skip_separator(std::string_view rest, size_t i) {
  const size_t end = std::min(rest.find_first_not_of(kSpace, i), rest.size());
  const size_t newline = rest.substr(i, end - i).rfind('\n');
  return newline == kNone ? end : i + newline + 1;
}

Cut cut_at_separator(std::string_view rest, size_t i) {
  return {trimmed_end(rest, i), skip_separator(rest, i)};
}

bool paragraph_break_at(std::string_view rest, size_t i) {
  if (rest[i] != '\n') return false;
  const size_t next = rest.find_first_not_of(" \t\r", i + 1);
  return next == kNone || rest[next] == '\n';
}

bool line_break_at(std::string_view rest, size_t i) { return rest[i] == '\n'; }

bool space_at(std::string_view rest, size_t i) { return rest[i] == ' ' || rest[i] == '\t'; }

using BreakTest = bool (*)(std::string_view, size_t);
constexpr std::array<BreakTest, 3> kBreaksByPreference = {paragraph_break_at, line_break_at,
                                                          space_at};

// UTF-8 encodings of code points that belong with the one before them: a lead and the range of
// the byte after it.
struct Encodings {
  std::string_view lead;
  unsigned char low;
  unsigned char high;
};
constexpr std::array<Encodings, 12> kAttaching = {{
    {"\xCC", 0x80, 0xBF},          // U+0300–U+033F combining diacritical marks
    {"\xCD", 0x80, 0xAF},          // U+0340–U+036F
    {"\xE1\xAA", 0xB0, 0xBF},      // U+1AB0–U+1ABF combining marks, extended
    {"\xE1\xAB", 0x80, 0xBF},      // U+1AC0–U+1AFF
    {"\xE1\xB7", 0x80, 0xBF},      // U+1DC0–U+1DFF combining marks, supplement
    {"\xE2\x80", 0x8D, 0x8D},      // U+200D zero-width joiner
    {"\xE2\x83", 0x90, 0xBF},      // U+20D0–U+20FF combining marks for symbols (keycaps)
    {"\xEF\xB8", 0x80, 0x8F},      // U+FE00–U+FE0F variation selectors (emoji presentation)
    {"\xEF\xB8", 0xA0, 0xAF},      // U+FE20–U+FE2F combining half marks
    {"\xF0\x9F\x8F", 0xBB, 0xBF},  // U+1F3FB–U+1F3FF emoji skin tones
    {"\xF3\xA0\x80", 0xA0, 0xBF},  // U+E0020–U+E003F tags (subdivision flags)
    {"\xF3\xA0\x81", 0x80, 0xBF},  // U+E0040–U+E007F
}};

constexpr std::string_view kZeroWidthJoiner = "\xE2\x80\x8D";

bool attaches_to_previous(std::string_view code_point) {
  return std::any_of(kAttaching.begin(), kAttaching.end(), [&](const Encodings& e) {
    if (code_point.size() <= e.lead.size() || !code_point.starts_with(e.lead)) return false;
    const auto next = static_cast<unsigned char>(code_point[e.lead.size()]);
    return next >= e.low && next <= e.high;
  });
}

// Whether a cut at rest[i] (a code point boundary) would split a visible character.
bool inside_grapheme(std::string_view rest, size_t i) {
  return attaches_to_previous(rest.substr(i)) || rest.substr(0, i).ends_with(kZeroWidthJoiner);
}

size_t previous_code_point(std::string_view rest, size_t i) {
  do {
    --i;
  } while (i > 0 && is_utf8_continuation(rest[i]));
  return i;
}

// A cut between two code points at the end of the window, after rest[floor]. Only the first
// line of rest can get here (a line break after anything but whitespace would have been a better
// cut), so it splits a fence line only when that line alone is longer than the window.
Cut hard_cut(std::string_view rest, size_t floor, size_t window) {
  size_t i = window;
  while (i > floor && inside_grapheme(rest, i)) i = previous_code_point(rest, i);
  if (i <= floor) i = window;  // one grapheme fills the window: split it
  return {trimmed_end(rest, i), i};
}

// The best cut that leaves rest[0, end) at most `budget` code points and keeps rest[floor] in
// it. REQUIRES: rest is longer than `budget`; rest[floor] is not whitespace and rest[0, floor]
// fits in `budget`.
Cut find_cut(std::string_view rest, size_t budget, size_t floor) {
  const size_t window = utf8_first_chars(rest, budget).size();
  // The separator is dropped, so it may start just past the window.
  const size_t last = std::min(window, rest.size() - 1);
  for (const BreakTest breaks_at : kBreaksByPreference) {
    for (size_t i = last; i > floor; --i) {
      if (breaks_at(rest, i)) return cut_at_separator(rest, i);
    }
  }
  return hard_cut(rest, floor, window);
}

// A cut right after the opening line of a block it would close would send an empty block: cut
// before that line instead or, when the block starts the part, after its first character.
Cut keep_opening_line_with_block(const Cursor& cursor, Cut cut, size_t budget, size_t limit) {
  const FenceScan scan = scan_fences(cursor, cut.end);
  if (!scan.fence || scan.opener_start == kNone || !fence_lines_fit(*scan.fence, limit)) {
    return cut;
  }
  const size_t opener_end = scan.opener_start + scan.fence->opener.size();
  if (cut.end > opener_end) return cut;
  if (const size_t end = trimmed_end(cursor.rest, scan.opener_start); end > 0) {
    return {end, scan.opener_start};
  }
  const size_t content = cursor.rest.find_first_not_of(kSpace, opener_end);
  if (content == kNone || utf8_length(cursor.rest.substr(0, content)) >= budget) return cut;
  return find_cut(cursor.rest, budget, content);
}

// A cut right before the block's closing line would start the next part with an empty reopened
// block: take the closing line into this part when it fits.
std::optional<Cut> take_closing_line(std::string_view rest, Cut cut, const Fence& fence,
                                     size_t budget) {
  if (rest[cut.next - 1] != '\n') return std::nullopt;
  const std::string_view line = line_at(rest, cut.next);
  if (!closes(fence, line)) return std::nullopt;
  const size_t end = cut.next + trim_right(line).size();
  if (utf8_length(rest.substr(0, end)) > budget) return std::nullopt;
  return Cut{end, skip_separator(rest, cut.next + line.size())};
}

// A cut, and the closing fence line the part must end with ("" for none).
struct Plan {
  Cut cut;
  std::string closer;
};

// Where to end a part of at most `budget` code points after its reopening line. A cut inside a
// block needs room for "\n```": when that does not fit, cut again in a window that keeps it.
Plan plan_part(const Cursor& cursor, size_t budget, size_t limit) {
  const size_t indent = cursor.rest.find_first_not_of(kSpace);
  size_t reserved = 0;
  for (;;) {
    const size_t room = budget - reserved;
    const Cut cut =
        keep_opening_line_with_block(cursor, find_cut(cursor.rest, room, indent), room, limit);
    const std::optional<Fence> open = scan_fences(cursor, cut.end).fence;
    if (!open || !fence_lines_fit(*open, limit)) return {cut, ""};
    if (auto with_closer = take_closing_line(cursor.rest, cut, *open, budget)) {
      return {*with_closer, ""};
    }
    const size_t needed = 1 + utf8_length(open->closer);
    if (utf8_length(cursor.rest.substr(0, cut.end)) + needed <= budget) return {cut, open->closer};
    // No room beside the leading whitespace (only when the limit is tiny): leave it open.
    if (needed <= reserved || indent + needed >= budget) return {cut, ""};
    reserved = needed;
  }
}

// Leading whitespace that leaves no room for a character (an indentation of `budget` or more) is
// dropped: it cannot start a part.
void drop_overlong_indent(Cursor& cursor, size_t budget) {
  const size_t first = cursor.rest.find_first_not_of(kSpace);
  if (first < budget) return;
  cursor.rest.remove_prefix(first);
  cursor.at_line_start = false;
}

void advance(Cursor& cursor, const Plan& plan) {
  cursor.fence = scan_fences(cursor, plan.cut.next).fence;
  cursor.reopen = !plan.closer.empty();
  cursor.at_line_start = cursor.rest[plan.cut.next - 1] == '\n';
  cursor.rest.remove_prefix(plan.cut.next);
}

// The next part. REQUIRES: cursor.rest is not blank.
std::string take_part(Cursor& cursor, size_t limit) {
  std::string part = cursor.reopen ? cursor.fence->opener + "\n" : std::string();
  const size_t budget = limit - utf8_length(part);
  drop_overlong_indent(cursor, budget);
  if (utf8_first_chars(cursor.rest, budget).size() == cursor.rest.size()) {  // the rest fits
    part.append(cursor.rest);
    cursor.rest = {};
    return part;
  }
  const Plan plan = plan_part(cursor, budget, limit);
  part.append(cursor.rest.substr(0, plan.cut.end));
  if (!plan.closer.empty()) part.append("\n").append(plan.closer);
  advance(cursor, plan);
  return part;
}

// Where text starts once the blank lines before it are dropped.
size_t after_leading_blank_lines(std::string_view text) {
  const size_t first = std::min(text.find_first_not_of(kSpace), text.size());
  const size_t newline = text.substr(0, first).rfind('\n');
  return newline == kNone ? 0 : newline + 1;
}

}  // namespace

std::vector<std::string> split_reply(std::string_view text, size_t limit) {
  std::string valid = valid_utf8(text);
  if (limit == 0 || is_blank(valid)) return {};
  if (utf8_length(valid) <= limit) return {std::move(valid)};
  Cursor cursor;
  cursor.rest = std::string_view(valid).substr(after_leading_blank_lines(valid));
  std::vector<std::string> parts;
  while (!is_blank(cursor.rest)) parts.push_back(take_part(cursor, limit));
  return parts;
}

}  // namespace parley::bot::channels::discord
