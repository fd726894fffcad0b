// Private to the built-in capabilities: one factory per built-in (registered by builtins.cpp)
// and the few helpers they share — the clock and store a call may use, command-text parsing,
// timestamps for answers, and writes through the store's write queue that answer asynchronously.
//
// Thread safety: the factories and helpers are safe from any thread.
#pragma once

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/base/text.h"
#include "parley/base/time_format.h"
#include "parley/base/usd.h"
#include "parley/capabilities/capability.h"
#include "parley/storage/store.h"

namespace parley::capabilities::builtins {

std::unique_ptr<Capability> make_calc();
std::unique_ptr<Capability> make_time();
std::unique_ptr<Capability> make_todo();
std::unique_ptr<Capability> make_notes();
std::unique_ptr<Capability> make_memory();
std::unique_ptr<Capability> make_reminders();
std::unique_ptr<Capability> make_web_fetch();
std::unique_ptr<Capability> make_usage();
std::unique_ptr<Capability> make_credits();
std::unique_ptr<Capability> make_alerts();
std::unique_ptr<Capability> make_account();
std::unique_ptr<Capability> make_expenses();
std::unique_ptr<Capability> make_lists();
std::unique_ptr<Capability> make_habits();
std::unique_ptr<Capability> make_goals();
std::unique_ptr<Capability> make_journal();
std::unique_ptr<Capability> make_mood();
std::unique_ptr<Capability> make_decisions();
std::unique_ptr<Capability> make_events();

// The wall clock of this call: the injected one, else the system clock.
inline const Clock& clock_of(const InvokeContext& ctx) {
  if (ctx.services != nullptr && ctx.services->clock != nullptr) return *ctx.services->clock;
  return SystemClock::instance();
}

// The caller's storage scope, or unavailable when this call has none.
inline Result<const UserScope*> scope_of(const InvokeContext& ctx, std::string_view capability) {
  if (ctx.data == nullptr) {
    return fail(ErrorCode::unavailable,
                fmt::format("{}: no storage is available here", capability));
  }
  return ctx.data;
}

using parley::trim;  // parley/base/text.h

// "add buy milk" → {"add", "buy milk"}; both parts trimmed.
inline std::pair<std::string_view, std::string_view> split_first_word(std::string_view text) {
  text = trim(text);
  const auto end = text.find_first_of(" \t\r\n\f\v");
  if (end == std::string_view::npos) return {text, {}};
  return {text.substr(0, end), trim(text.substr(end))};
}

// An item number from command text: "3" or "#3", at least 1.
inline Result<int64_t> parse_id(std::string_view text, std::string_view capability) {
  std::string_view digits = trim(text);
  if (!digits.empty() && digits.front() == '#') digits.remove_prefix(1);
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || id < 1) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("{}: '{}' is not an item number (expected e.g. 3 or #3)", capability,
                            trim(text)));
  }
  return id;
}

// At most `max` bytes of `s`, trimmed, on one line, cut on a UTF-8 character boundary.
inline std::string preview(std::string_view s, size_t max) {
  std::string out;
  for (char c : trim(s)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (out.size() <= max) return out;
  return std::string(utf8_prefix(out, max)) + "…";
}

// The words of `query`, each quoted: FTS5 never parses user text as query syntax (only word bytes
// are kept, so no quote can appear inside).
inline std::vector<std::string> quoted_words(std::string_view query) {
  std::vector<std::string> words;
  for (const auto word : search_words(query)) words.push_back(fmt::format("\"{}\"", word));
  return words;
}

// An FTS5 match over an index of columns (user_id, title, body), scoped to one user inside the
// index and the words matching title and body only: all of them, or any.
inline std::string user_match(int64_t user_id, const std::vector<std::string>& words,
                              bool all_words) {
  return fmt::format("user_id : \"{}\" AND {{title body}} : ({})", user_id,
                     fmt::join(words, all_words ? " AND " : " OR "));
}

// Fields other than "action" that `action` does not take are invalid_argument naming them,
// prefixed with `capability`.
inline Status takes_only(const nlohmann::json& args, std::string_view action,
                         std::initializer_list<std::string_view> fields,
                         std::string_view capability) {
  for (const auto& [key, value] : args.items()) {
    if (key == "action" || std::find(fields.begin(), fields.end(), key) != fields.end()) continue;
    return fail(
        ErrorCode::invalid_argument,
        fmt::format("{}: {} does not take \"{}\" ({})", capability, action, key,
                    fields.size() == 0 ? std::string("it takes nothing else")
                                       : fmt::format("it takes: {}", fmt::join(fields, ", "))));
  }
  return {};
}

// Submits a write to the store's write queue and answers through `done` once it is committed:
// with `answer()` (which reads what `apply` left behind), or with the job's error, prefixed with
// the capability's name unless `apply` already named it. `done` runs on the queue's completion
// thread, or at once on this one when the queue refuses the job.
inline void submit_write(storage::Store& store, std::string_view capability, std::string what,
                         std::function<Result<storage::WriteAck>(storage::Connection&)> apply,
                         std::function<nlohmann::json()> answer, Done done) {
  storage::WriteJob job;
  job.what = std::move(what);
  job.apply = std::move(apply);
  job.done = [prefix = fmt::format("{}: ", capability), answer = std::move(answer),
              done = std::move(done)](Result<storage::WriteAck> r) {
    if (!r) {
      Error e = std::move(r).error();
      if (!e.message.starts_with(prefix)) e.message = prefix + e.message;
      done(fail(std::move(e)));
      return;
    }
    try {
      done(answer());
    } catch (const std::exception& e) {
      done(fail(ErrorCode::internal, prefix + "failed after the write: " + e.what()));
    }
  };
  store.writes().submit(std::move(job));
}

}  // namespace parley::capabilities::builtins
