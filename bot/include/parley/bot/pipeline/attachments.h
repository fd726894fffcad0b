// Files a capability result carries — "attachments": [{filename, media_type, text | base64}]:
// an export, a calendar, a chart — travel with the reply (stored with its outbox entry, sent by
// the channel), never to the model: it reads only what each file is.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "parley/storage/outbox_file.h"

namespace parley::bot::pipeline {

// What one reply may carry: Discord takes 10 files and 25 MiB per message, and a mail server
// commonly refuses messages over 10–25 MB; base64 (email) adds a third.
inline constexpr size_t kMaxReplyFiles = 10;
inline constexpr size_t kMaxReplyFileBytes = size_t{8} << 20;  // all of a reply's files together

struct TakenFiles {
  std::vector<storage::OutboxFile> files;
  std::vector<std::string> problems;  // "x.png: not valid base64": for the user, one each
};

// Takes the files out of `result` (when it is an object with "attachments") and adds them to
// `into`, which may already hold files of the same reply (the limits count them). In the result
// each file is replaced by what it is — {filename, media_type, bytes, "delivery": "sent to the
// user with the reply"} — or, when it cannot go, {filename, "not_sent": why}.
void take_attachments(nlohmann::json& result, TakenFiles& into);

// `name` as a plain file name: the last path component, without control characters, quotes,
// backslashes or leading dots, at most 100 bytes of valid UTF-8; "file" when nothing is left.
std::string safe_filename(std::string_view name);

// The note a reply gets for files that could not go: "" when there is none.
std::string file_problems_note(const TakenFiles& taken);

}  // namespace parley::bot::pipeline
