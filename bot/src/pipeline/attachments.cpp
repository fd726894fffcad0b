#include "parley/bot/pipeline/attachments.h"

#include <fmt/format.h>

#include "parley/base/base64.h"
#include "parley/base/text.h"

namespace parley::bot::pipeline {

using nlohmann::json;

namespace {

// "type/subtype" of the characters RFC 6838 allows, lower-cased; empty when it is not one.
std::string media_type_of(std::string_view t) {
  std::string out;
  size_t slashes = 0;
  for (char c : t) {
    const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (l == '/') {
      ++slashes;
    } else if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '.' || l == '+' ||
                 l == '-' || l == '_')) {
      return {};
    }
    out += l;
  }
  if (slashes != 1 || out.front() == '/' || out.back() == '/' || out.size() > 100) return {};
  return out;
}

}  // namespace

std::string safe_filename(std::string_view name) {
  if (const size_t slash = name.find_last_of("/\\"); slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  std::string out;
  for (char c : valid_utf8(name)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '"' || c == '\\' || c == '/') continue;
    out += c;
  }
  size_t lead = 0;
  while (lead < out.size() && (out[lead] == '.' || out[lead] == ' ')) ++lead;
  out.erase(0, lead);
  if (out.size() > 100) out = std::string(utf8_first_chars(out, 100));
  while (out.size() > 100) out = std::string(utf8_first_chars(out, utf8_length(out) - 1));
  return out.empty() ? "file" : out;
}

void take_attachments(json& result, TakenFiles& into) {
  if (!result.is_object()) return;
  const auto it = result.find("attachments");
  if (it == result.end()) return;
  json described = json::array();
  size_t total = 0;
  for (const auto& f : into.files) total += f.content.size();
  auto refuse = [&](const std::string& name, const std::string& why) {
    into.problems.push_back(fmt::format("{}: {}", name, why));
    described.push_back(json{{"filename", name}, {"not_sent", why}});
  };
  const json files = it->is_array() ? *it : json::array();
  for (const auto& f : files) {
    if (!f.is_object()) continue;
    const std::string name = safe_filename(f.contains("filename") && f["filename"].is_string()
                                               ? f["filename"].get<std::string>()
                                               : std::string("file"));
    std::string type = f.contains("media_type") && f["media_type"].is_string()
                           ? media_type_of(f["media_type"].get<std::string>())
                           : std::string();
    if (type.empty()) type = "application/octet-stream";
    std::string content;
    if (f.contains("text") && f["text"].is_string()) {
      content = f["text"].get<std::string>();
    } else if (f.contains("base64") && f["base64"].is_string()) {
      auto bytes = base64_decode(f["base64"].get<std::string>());
      if (!bytes) {
        refuse(name, "its content is not valid base64");
        continue;
      }
      content = std::move(*bytes);
    } else {
      refuse(name, "it has no content");
      continue;
    }
    if (into.files.size() >= kMaxReplyFiles) {
      refuse(name, fmt::format("a reply carries at most {} files", kMaxReplyFiles));
      continue;
    }
    if (total + content.size() > kMaxReplyFileBytes) {
      refuse(name,
             fmt::format("a reply's files may hold {} MiB at most", kMaxReplyFileBytes >> 20));
      continue;
    }
    total += content.size();
    described.push_back(json{{"filename", name},
                             {"media_type", type},
                             {"bytes", content.size()},
                             {"delivery", "sent to the user with the reply"}});
    into.files.push_back(storage::OutboxFile{name, std::move(type), std::move(content), ""});
  }
  *it = std::move(described);
}

std::string file_problems_note(const TakenFiles& taken) {
  if (taken.problems.empty()) return {};
  return fmt::format("\n(Not sent: {}.)", fmt::join(taken.problems, "; "));
}

}  // namespace parley::bot::pipeline
