// Splitting a long reply into Discord messages. A pure function of its arguments: no state, no
// I/O, safe to call from any thread.
//
// Discord refuses a message longer than 2,000 characters, counted in Unicode code points.
// split_reply() cuts a reply into parts of at most `limit` code points, each cut at the last place
// that fits, in this order of preference:
//   1. a paragraph break (a blank line),
//   2. a line break,
//   3. a space or tab,
//   4. anywhere between two code points: never inside a UTF-8 sequence, and where the window
//      allows not before a combining mark, a variation selector, an emoji skin tone or a tag, nor
//      on either side of a zero-width joiner (the common ways a visible character spans several
//      code points).
//
// Contract:
// - A text within the limit is one part, unchanged. A blank text (empty or whitespace only) has
//   no parts; so has any text when `limit` is 0.
// - The whitespace at a cut (the blank lines, the line break or the spaces) is dropped, but not
//   the indentation of the line that starts the next part. Blank lines before the first part of a
//   text longer than the limit are dropped too. No part is empty or whitespace only.
// - Code fences: a line of up to three spaces, three or more backticks and an info string
//   without backticks ("```cpp") opens a block; a line of at least as many backticks and nothing
//   else closes it. A cut inside a block closes it: the part ends with "\n" and a closing line
//   ("```") and the next part starts by reopening it with the same opening line ("```cpp\n").
//   Those lines count toward the limit. A block still open at the end of the text stays open in
//   the last part. The splitter does not cut right after an opening line or right before a
//   closing one when it can help it, which would send an empty block.
// - Without the fence lines it added and the whitespace it dropped, the parts in order are the
//   text.
// - Every part is valid UTF-8: invalid sequences in `text` are first replaced by U+FFFD.
// - Tiny limits: a block is closed and reopened only when its two fence lines and one more
//   character fit in `limit` (15 for "```python"). Below that the parts still respect the limit,
//   but a block they split is not closed and reopened: its pieces show as plain text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace parley::bot::channels::discord {

// The longest message Discord accepts, in code points.
inline constexpr size_t kMessageLimit = 2000;

// `text` as Discord messages of at most `limit` code points each, in order (see above).
[[nodiscard]] std::vector<std::string> split_reply(std::string_view text,
                                                   size_t limit = kMessageLimit);

}  // namespace parley::bot::channels::discord
