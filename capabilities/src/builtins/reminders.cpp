// reminders: the caller's reminders (table reminders, migrations 0001 and 0004): create, list,
// cancel — and, for the bot loop, the due/fired API of parley/capabilities/reminders.h. Each
// reminder keeps its user, the conversation and channel it was made in, its due time (UTC), its
// text and its state (pending → fired | cancelled, never back). Every statement of the
// capability is scoped by the UserScope's user id: another user's reminder number is answered
// exactly like one that does not exist.
//
// Times are read in the caller's time zone (Caller::time_zone) at the call's clock
// (Services::clock), in the forms builtins/when.h reads.
#include "parley/capabilities/reminders.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/when.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {
namespace builtins {
namespace {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;
using Ms = std::chrono::milliseconds;

constexpr size_t kMaxReminderText = 500;
constexpr size_t kMaxWhen = 100;
constexpr int64_t kMaxRemindersListed = 50;
constexpr size_t kMaxWhenWords = 8;  // the longest time expression /remind looks for
constexpr int64_t kMaxAheadMs = int64_t{10} * 366 * 86'400'000;  // about ten years
constexpr const char* kRemindUsage = "/remind WHEN TEXT";
constexpr const char* kListUsage = "/reminders [cancel ID]";

struct Reminder {
  int64_t id = 0;
  int64_t due_at = 0;
  std::string text;
  std::string state;
  std::optional<int64_t> fired_at;
};

json to_json(const Reminder& r, const Zone& zone) {
  json j{{"id", r.id},
         {"text", r.text},
         {"due_at", iso_utc(r.due_at)},
         {"due_local", iso_local(zone, r.due_at)},
         {"state", r.state}};
  if (r.fired_at) j["fired_at"] = iso_utc(*r.fired_at);
  return j;
}

Unexpected no_such_reminder(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("reminders: you have no reminder #{}", id));
}

class Reminders final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "reminders"; }
  [[nodiscard]] std::string_view description() const override {
    return "Reminds the user of something at a given time.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"alarm", "alert", "notify", "wake me", "don't let me forget", "schedul", "appointment"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"action"}},
            {"properties",
             {{"action", {{"type", "string"}, {"enum", {"create", "list", "cancel"}}}},
              {"when",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxWhen},
                {"description",
                 "user's local time unless a zone is given: in 10m, in 1h30m, in 3 days, "
                 "today 18:30, tomorrow 09:00, 18:30, 2026-11-24 09:00, "
                 "2026-11-24T09:00+01:00 (create)"}}},
              {"text",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxReminderText},
                {"description", "what to remind of (create)"}}},
              {"id",
               {{"type", "integer"},
                {"minimum", 1},
                {"description", "reminder number from list (cancel)"}}}}}};
  }
  [[nodiscard]] json settings_schema() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"max_pending",
               {{"type", "integer"},
                {"minimum", 1},
                {"maximum", 100'000},
                {"default", kDefaultMaxPendingReminders},
                {"description", "pending reminders one user may have at once"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"remind", kRemindUsage,
             "a reminder, e.g. /remind in 10m stretch, /remind tomorrow 09:00 call mom"},
            {"reminders", kListUsage, "your pending reminders; /reminders cancel 3 cancels #3"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    if (command == "reminders") {
      const auto [action, rest] = split_first_word(text);
      if ((action.empty() || action == "list") && rest.empty()) return json{{"action", "list"}};
      if (action == "cancel" && !rest.empty()) {
        auto id = parse_id(rest, "reminders");
        if (!id) return fail(std::move(id).error());
        return json{{"action", "cancel"}, {"id", *id}};
      }
      return fail(ErrorCode::invalid_argument, fmt::format("reminders: usage: {}", kListUsage));
    }
    return parse_remind(trim(text));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const Zone zone = zone_of(ctx.caller.time_zone);
    const auto action = args.at("action").get<std::string>();
    if (action == "list") return done(list(**scope, zone));
    if (action == "create") {
      if (!args.contains("when")) {
        return done(fail(ErrorCode::invalid_argument,
                         fmt::format("reminders: create needs \"when\", e.g. {}", kWhenForms)));
      }
      const auto text = std::string(trim(args.value("text", std::string())));
      if (text.empty()) {
        return done(
            fail(ErrorCode::invalid_argument, "reminders: create needs a non-empty \"text\""));
      }
      const auto when = args.at("when").get<std::string>();
      const int64_t now = clock_of(ctx).now_ms();
      auto future = future_time(when, now, zone, kMaxAheadMs, "reminders");
      if (!future) return done(fail(std::move(future).error()));
      const int64_t due = *future;
      const json settings = with_defaults(settings_schema(), ctx.settings);
      NewReminder r{(*scope)->user_id(),
                    ctx.conversation_id > 0 ? std::optional(ctx.conversation_id) : std::nullopt,
                    ctx.channel,
                    due,
                    text,
                    now,
                    settings.at("max_pending").get<int64_t>()};
      if (ctx.services != nullptr && ctx.services->reminders_reach &&
          !ctx.services->reminders_reach(ctx.channel)) {
        return done(fail(
            ErrorCode::unavailable,
            fmt::format("reminders: the {} channel only answers requests and cannot send a "
                        "message on its own, so a reminder set here would never reach you; set "
                        "it where I can write to you (the console, Discord or email)",
                        ctx.channel)));
      }
      std::string where;
      if (ctx.services != nullptr && !ctx.services->reminders_fire_elsewhere.empty()) {
        where = " It will arrive " + ctx.services->reminders_fire_elsewhere + ".";
      }
      std::function<void()> changed;
      if (ctx.services != nullptr) changed = ctx.services->reminders_changed;
      return create(**scope, std::move(r), zone, std::move(where), std::move(changed),
                    std::move(done));
    }
    if (!args.contains("id")) {
      return done(
          fail(ErrorCode::invalid_argument, "reminders: cancel needs the reminder's \"id\""));
    }
    return cancel(**scope, args.at("id").get<int64_t>(), zone, std::move(done));
  }

 private:
  struct NewReminder {
    int64_t user_id = 0;
    std::optional<int64_t> conversation_id;
    std::string channel;
    int64_t due_at = 0;
    std::string text;
    int64_t created_at = 0;
    int64_t max_pending = 0;
  };

  // "/remind WHEN TEXT": the longest run of leading words that reads as a time is the WHEN.
  static Result<json> parse_remind(std::string_view text) {
    std::vector<size_t> word_ends;
    for (size_t i = 0; i < text.size();) {
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
      if (i == text.size()) break;
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0) ++i;
      word_ends.push_back(i);
    }
    for (size_t n = std::min(word_ends.size(), kMaxWhenWords); n > 0; --n) {
      const std::string_view when = text.substr(0, word_ends[n - 1]);
      if (!parse_when(when, "reminders")) continue;
      const std::string_view rest = trim(text.substr(word_ends[n - 1]));
      if (rest.empty()) {
        return fail(ErrorCode::invalid_argument,
                    fmt::format("reminders: remind you of what? usage: {}, e.g. /remind {} "
                                "stretch",
                                kRemindUsage, when));
      }
      return json{{"action", "create"}, {"when", std::string(when)}, {"text", std::string(rest)}};
    }
    if (text.empty()) {
      return fail(
          ErrorCode::invalid_argument,
          fmt::format("reminders: usage: {}, where WHEN is e.g. {}", kRemindUsage, kWhenForms));
    }
    return fail(ErrorCode::invalid_argument,
                fmt::format("reminders: could not read a time at the start of '{}'; usage: {}, "
                            "where WHEN is e.g. {}",
                            text, kRemindUsage, kWhenForms));
  }

  static Result<json> list(const UserScope& scope, const Zone& zone) {
    static constexpr const char* kSql =
        "SELECT id, due_at, text FROM reminders WHERE user_id = ? AND state = 'pending' "
        "ORDER BY due_at, id LIMIT ?";
    std::vector<Reminder> found;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(kSql);
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), kMaxRemindersListed + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        found.push_back(Reminder{(*st)->column_int64(0), (*st)->column_int64(1),
                                 (*st)->column_text(2), "pending", std::nullopt});
      }
    }
    const bool more = found.size() > static_cast<size_t>(kMaxRemindersListed);
    if (more) found.pop_back();
    json out = json::array();
    std::string text = found.empty()
                           ? std::string("You have no pending reminders.")
                           : fmt::format("Your reminders ({} time), soonest first:", zone.name);
    for (const auto& r : found) {
      out.push_back(to_json(r, zone));
      text += fmt::format("\n#{} {} — {}", r.id, human_time(zone, r.due_at), r.text);
    }
    if (more) text += fmt::format("\n(only the first {} are shown)", kMaxRemindersListed);
    return json{{"reminders", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  // `changed` (may be empty) is told once the reminder is stored: the scheduler looks again.
  void create(const UserScope& scope, NewReminder r, const Zone& zone, std::string where,
              std::function<void()> changed, Done done) const {
    auto rec = std::make_shared<NewReminder>(std::move(r));
    auto id = std::make_shared<int64_t>(0);
    submit_write(
        scope.store(), name(), "reminders create",
        [rec, id](Connection& conn) -> Result<WriteAck> {
          auto made = insert_pending_reminder(
              conn,
              NewPendingReminder{rec->user_id, rec->conversation_id, rec->channel, rec->due_at,
                                 rec->text, rec->created_at},
              rec->max_pending);
          if (!made) return fail(std::move(made).error());
          *id = *made;
          return WriteAck{*id, true};
        },
        [rec, id, zone, where = std::move(where), changed = std::move(changed)] {
          if (changed) changed();
          const Reminder made{*id, rec->due_at, rec->text, "pending", std::nullopt};
          return json{
              {"reminder", to_json(made, zone)},
              {"text", fmt::format("Reminder #{} set for {} ({}): {}{}", made.id,
                                   human_time(zone, made.due_at), zone.name, made.text, where)}};
        },
        std::move(done));
  }

  void cancel(const UserScope& scope, int64_t id, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Reminder>();
    auto already = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "reminders cancel",
        [rec, already, id, user](Connection& conn) -> Result<WriteAck> {
          auto get = conn.cached(
              "SELECT due_at, text, state, fired_at FROM reminders WHERE id = ? AND user_id = ?");
          if (!get) return fail(std::move(get).error());
          (*get)->bind_all(id, user);
          auto row = (*get)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_reminder(id);
          *rec = Reminder{id, (*get)->column_int64(0), (*get)->column_text(1),
                          (*get)->column_text(2), (*get)->column_opt_int64(3)};
          if (rec->state == "fired") {
            return fail(ErrorCode::invalid_argument,
                        fmt::format("reminders: #{} already went off at {}; nothing to cancel", id,
                                    iso_utc(rec->fired_at.value_or(rec->due_at))));
          }
          *already = rec->state == "cancelled";
          if (*already) return WriteAck{id, false};
          auto cancelled = cancel_pending_reminder(conn, user, id);
          if (!cancelled) return fail(std::move(cancelled).error());
          rec->state = "cancelled";
          return WriteAck{id, false};
        },
        [rec, already, zone] {
          return json{
              {"reminder", to_json(*rec, zone)},
              {"text",
               *already ? fmt::format("Reminder #{} was already cancelled: {}", rec->id, rec->text)
                        : fmt::format("Cancelled reminder #{}: {}", rec->id, rec->text)}};
        },
        std::move(done));
  }
};

}  // namespace

std::unique_ptr<Capability> make_reminders() { return std::make_unique<Reminders>(); }

}  // namespace builtins

// Shared with the capabilities that set reminders when asked.

Result<int64_t> insert_pending_reminder(storage::Connection& conn, const NewPendingReminder& r,
                                        int64_t max_pending) {
  auto count =
      conn.cached("SELECT count(*) FROM reminders WHERE user_id = ? AND state = 'pending'");
  if (!count) return fail(std::move(count).error());
  (*count)->bind_all(r.user_id);
  auto row = (*count)->step();
  if (!row) return fail(std::move(row).error());
  if ((*count)->column_int64(0) >= max_pending) {
    return fail(ErrorCode::resource_exhausted,
                fmt::format("reminders: you already have {} pending reminders; cancel some first",
                            (*count)->column_int64(0)));
  }
  auto st = conn.cached(
      "INSERT INTO reminders(user_id, conversation_id, channel, due_at, text, state, "
      "created_at) VALUES (?,?,?,?,?,'pending',?)");
  if (!st) return fail(std::move(st).error());
  PARLEY_TRY((*st)
                 ->bind_all(r.user_id, r.conversation_id, r.channel, r.due_at, r.text, r.created_at)
                 .run());
  return conn.last_insert_rowid();
}

Result<bool> cancel_pending_reminder(storage::Connection& conn, int64_t user_id, int64_t id) {
  auto set = conn.cached(
      "UPDATE reminders SET state = 'cancelled' WHERE id = ? AND user_id = ? AND state = "
      "'pending'");
  if (!set) return fail(std::move(set).error());
  PARLEY_TRY((*set)->bind_all(id, user_id).run());
  return conn.changes() == 1;
}

// The bot's side: due, next, fired.

Result<std::vector<DueReminder>> due_reminders(storage::Store& store, int64_t now_ms, size_t limit,
                                               int64_t late_after_ms) {
  static constexpr const char* kSql =
      "SELECT id, user_id, conversation_id, channel, text, due_at FROM reminders "
      "WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?";
  std::vector<DueReminder> out;
  if (limit == 0) return out;
  auto conn = store.reads().acquire();
  auto st = conn->cached(kSql);
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(now_ms, static_cast<int64_t>(std::min<size_t>(limit, size_t{1} << 30)));
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    DueReminder r;
    r.id = (*st)->column_int64(0);
    r.user_id = (*st)->column_int64(1);
    r.conversation_id = (*st)->column_opt_int64(2).value_or(0);
    r.channel = (*st)->column_text(3);
    r.text = (*st)->column_text(4);
    r.due_at = (*st)->column_int64(5);
    r.late = now_ms - r.due_at > late_after_ms;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<int64_t>> next_due_ms(storage::Store& store) {
  auto conn = store.reads().acquire();
  auto st = conn->cached("SELECT min(due_at) FROM reminders WHERE state = 'pending'");
  if (!st) return fail(std::move(st).error());
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  return (*st)->column_opt_int64(0);
}

Status mark_fired(storage::Store& store, int64_t id, int64_t now_ms) {
  storage::WriteJob job;
  job.what = "fire reminder";
  job.apply = [id, now_ms](storage::Connection& conn) -> Result<storage::WriteAck> {
    auto set = conn.cached(
        "UPDATE reminders SET state = 'fired', fired_at = ? WHERE id = ? AND state = 'pending'");
    if (!set) return fail(std::move(set).error());
    PARLEY_TRY((*set)->bind_all(now_ms, id).run());
    if (conn.changes() == 1) return storage::WriteAck{id, false};
    // Not pending: say why, so that the caller knows not to deliver it.
    auto get = conn.cached("SELECT state FROM reminders WHERE id = ?");
    if (!get) return fail(std::move(get).error());
    (*get)->bind_all(id);
    auto row = (*get)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) return fail(ErrorCode::not_found, fmt::format("no reminder #{}", id));
    if ((*get)->column_text(0) == "cancelled") {
      return fail(ErrorCode::cancelled, fmt::format("reminder #{} was cancelled", id));
    }
    return fail(ErrorCode::already_exists, fmt::format("reminder #{} has already fired", id));
  };
  auto ack = store.writes().submit_for_future(std::move(job)).get();
  if (!ack) return fail(std::move(ack).error());
  return {};
}

}  // namespace parley::capabilities
