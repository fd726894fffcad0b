// journal: the caller's journal (table journal_entries with the FTS5 index journal_fts,
// migration 0011): add an entry (text, optional title, mood/energy/stress 1–10, hours slept,
// tags, and when it happened), search it (ranked, with snippets), list it (the latest, a day,
// the last N days), get one, delete one softly and restore it, and "how was my week?" — the
// last seven days of the caller's zone from the entries and the mood logs of the `mood`
// capability.
//
// Every statement is scoped by the UserScope's user id (the full-text match inside the index
// too, like notes): another user's entry number is answered exactly like one that does not
// exist. Deleted entries stay in the table and the index until restored, and every read but
// `get` and `restore` filters them out. Days are the caller's calendar days ('YYYY-MM-DD' of
// Caller::time_zone when written), so a week is seven of them whatever DST does. Writes go
// through the store's write queue and answer once committed; reads use the read pool.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/trend.h"
#include "builtins/when.h"
#include "parley/base/text.h"

namespace parley::capabilities::builtins {
namespace {
namespace journal_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxBody = 10'000;
constexpr size_t kMaxQuery = 500;
constexpr size_t kMaxTag = 32;
constexpr size_t kMaxTags = 20;
constexpr size_t kMaxWhen = 100;
constexpr int64_t kMaxFound = 10;
constexpr int64_t kLatest = 20;
constexpr int64_t kMaxInRange = 100;
constexpr int64_t kMaxDays = 366;
constexpr int kWeekDays = 7;
constexpr size_t kPreview = 70;

constexpr const char* kJournalUsage =
    "/journal TEXT | /journal add TEXT | /journal search WORDS | /journal list [DAY | N days] | "
    "/journal week | /journal ID | /journal delete ID | /journal restore ID";

struct Entry {
  int64_t id = 0;
  std::string day;
  int64_t at = 0;
  std::string title;
  std::string body;
  std::optional<int64_t> mood;
  std::optional<int64_t> energy;
  std::optional<int64_t> stress;
  std::optional<double> sleep_hours;
  std::string tags = "[]";  // JSON array, as stored
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> deleted_at;
};

// Every entry query selects these, from journal_entries aliased `e`, first.
constexpr const char* kColumns =
    "e.id, e.day, e.at, e.title, e.body, e.mood, e.energy, e.stress, e.sleep_hours, e.tags, "
    "e.created_at, e.updated_at, e.deleted_at";

Entry read_entry(const storage::Statement& st) {
  Entry e;
  e.id = st.column_int64(0);
  e.day = st.column_text(1);
  e.at = st.column_int64(2);
  e.title = st.column_text(3);
  e.body = st.column_text(4);
  e.mood = st.column_opt_int64(5);
  e.energy = st.column_opt_int64(6);
  e.stress = st.column_opt_int64(7);
  if (!st.column_is_null(8)) e.sleep_hours = st.column_double(8);
  e.tags = st.column_text(9);
  e.created_at = st.column_int64(10);
  e.updated_at = st.column_int64(11);
  e.deleted_at = st.column_opt_int64(12);
  return e;
}

json tags_of(const Entry& e) {
  json tags = json::parse(e.tags, nullptr, false);
  return tags.is_array() ? tags : json::array();
}

template <typename T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json to_json(const Entry& e, const Zone& zone) {
  return {{"id", e.id},
          {"day", e.day},
          {"at", iso_utc(e.at)},
          {"at_local", iso_local(zone, e.at)},
          {"title", e.title},
          {"body", e.body},
          {"mood", or_null(e.mood)},
          {"energy", or_null(e.energy)},
          {"stress", or_null(e.stress)},
          {"sleep_hours", or_null(e.sleep_hours)},
          {"tags", tags_of(e)},
          {"created_at", iso_utc(e.created_at)},
          {"updated_at", iso_utc(e.updated_at)},
          {"deleted", e.deleted_at.has_value()}};
}

std::string day_label(std::string_view day) {
  const auto d = parse_day_string(day);
  return d ? human_day(*d) : std::string(day);
}

// "7.5" rather than "7.500000".
std::string number(double v) { return fmt::format("{:g}", std::round(v * 10.0) / 10.0); }

// " (mood 7, energy 5, stress 3, slept 7.5 h) #work #run", or "".
std::string scores_and_tags(const Entry& e) {
  std::vector<std::string> parts;
  if (e.mood) parts.push_back(fmt::format("mood {}", *e.mood));
  if (e.energy) parts.push_back(fmt::format("energy {}", *e.energy));
  if (e.stress) parts.push_back(fmt::format("stress {}", *e.stress));
  if (e.sleep_hours) parts.push_back(fmt::format("slept {} h", number(*e.sleep_hours)));
  std::string out = parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", "));
  for (const auto& tag : tags_of(e)) {
    if (tag.is_string()) out += " #" + tag.get<std::string>();
  }
  return out;
}

// "#5 Mon 23 Nov — Long day: the body…"
std::string line_for(const Entry& e) {
  const std::string what = e.title.empty() ? preview(e.body, kPreview)
                                           : fmt::format("{}: {}", preview(e.title, kPreview),
                                                         preview(e.body, kPreview));
  return fmt::format("#{} {} — {}{}", e.id, day_label(e.day), what, scores_and_tags(e));
}

Unexpected no_such_entry(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("journal: you have no entry #{}", id));
}

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, "journal: " + std::move(message));
}

Result<std::vector<Entry>> read_entries(const UserScope& scope, const std::string& sql,
                                        const std::function<void(storage::Statement&)>& bind) {
  std::vector<Entry> entries;
  auto conn = scope.store().reads().acquire();
  auto st = conn->cached(sql);
  if (!st) return fail(std::move(st).error());
  bind(**st);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    entries.push_back(read_entry(**st));
  }
  return entries;
}

// The entry `id` of `user` in the writer's transaction, deleted or not.
Result<std::optional<Entry>> entry_in(Connection& conn, int64_t id, int64_t user) {
  auto st =
      conn.cached(fmt::format("SELECT {} FROM journal_entries e WHERE e.id = ? AND "
                              "e.user_id = ?",
                              kColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id, user);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<Entry>{};
  return std::optional<Entry>{read_entry(**st)};
}

struct Found {
  Entry entry;
  std::string snippet;
};

class Journal final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "journal"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's journal (diary): entries with optional mood/energy/stress and sleep; "
           "search, list, delete/restore, and how the last week went.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"diary", "dear diary", "how was my week", "how has my week", "gratitude"};
  }
  [[nodiscard]] json parameters() const override {
    const json score = {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}};
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action",
           {{"type", "string"},
            {"enum", {"add", "search", "list", "get", "delete", "restore", "week"}}}},
          {"body",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxBody},
            {"description", "the entry's text (add)"}}},
          {"title", {{"type", "string"}, {"maxLength", kMaxTitle}}},
          {"mood", score},
          {"energy", score},
          {"stress", score},
          {"sleep_hours", {{"type", "number"}, {"minimum", 0}, {"maximum", 24}}},
          {"tags",
           {{"type", "array"},
            {"maxItems", kMaxTags},
            {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxTag}}}}},
          {"when",
           {{"type", "string"},
            {"maxLength", kMaxWhen},
            {"description", "add: a past day or time in the user's zone (default now)"}}},
          {"query",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxQuery},
            {"description", "words to find (search)"}}},
          {"id", {{"type", "integer"}, {"minimum", 1}, {"description", "get, delete, restore"}}},
          {"day",
           {{"type", "string"},
            {"maxLength", kMaxWhen},
            {"description", "list: one day (yesterday, 2026-11-20, monday)"}}},
          {"days",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", kMaxDays},
            {"description", "list: the last N days"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"journal", kJournalUsage, "your journal, e.g. /journal a long walk by the river"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (action.empty()) return json{{"action", "list"}};
    if (action == "add") {
      if (!rest.empty()) return add_command(rest);
    } else if (action == "search" || action == "find") {
      if (!rest.empty()) return json{{"action", "search"}, {"query", std::string(rest)}};
    } else if (action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
      if (auto n = days_in(rest)) return json{{"action", "list"}, {"days", *n}};
      // Only the syntax matters here: the day is read again at the call, with its clock and zone.
      if (parse_day(rest, 0, zone_of("UTC"), "journal")) {
        return json{{"action", "list"}, {"day", std::string(rest)}};
      }
      return add_command(text);  // "list of things I am grateful for: …" is an entry
    } else if (action == "week") {
      if (rest.empty()) return json{{"action", "week"}};
      return add_command(text);
    } else if (action == "delete" || action == "restore") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "journal");
        if (!id) return fail(std::move(id).error());
        return json{{"action", std::string(action)}, {"id", *id}};
      }
    } else if (auto id = parse_id(action, "journal"); id && rest.empty()) {
      return json{{"action", "get"}, {"id", *id}};
    } else {
      return add_command(text);
    }
    return fail(ErrorCode::invalid_argument, fmt::format("journal: usage: {}", kJournalUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    const Zone zone = zone_of(ctx.caller.time_zone);
    const int64_t now = clock_of(ctx).now_ms();
    const auto check = [&](std::initializer_list<std::string_view> fields) {
      return takes_only(args, action, fields, "journal");
    };
    if (action == "add") {
      if (auto st =
              check({"body", "title", "mood", "energy", "stress", "sleep_hours", "tags", "when"});
          !st.ok()) {
        return done(fail(std::move(st).error()));
      }
      auto entry = entry_from(args, now, zone);
      if (!entry) return done(fail(std::move(entry).error()));
      return add(**scope, std::move(*entry), zone, std::move(done));
    }
    if (action == "search") {
      if (auto st = check({"query"}); !st.ok()) return done(fail(std::move(st).error()));
      if (!args.contains("query")) return done(bad("search needs \"query\", the words to find"));
      return done(search(**scope, args.at("query").get<std::string>(), zone));
    }
    if (action == "list") {
      if (auto st = check({"day", "days"}); !st.ok()) return done(fail(std::move(st).error()));
      return done(list(**scope, args, now, zone));
    }
    if (action == "week") {
      if (auto st = check({}); !st.ok()) return done(fail(std::move(st).error()));
      return done(week(**scope, now, zone));
    }
    if (auto st = check({"id"}); !st.ok()) return done(fail(std::move(st).error()));
    if (!args.contains("id")) {
      return done(bad(fmt::format("{} needs the entry's \"id\"", action)));
    }
    const auto id = args.at("id").get<int64_t>();
    if (action == "get") return done(get(**scope, id, zone));
    return set_deleted(**scope, id, action == "delete", now, zone, std::move(done));
  }

 private:
  // "/journal TEXT": the text is the body; its #words are tags too.
  static Result<json> add_command(std::string_view body) {
    json args{{"action", "add"}, {"body", std::string(body)}};
    json tags = json::array();
    for (size_t i = body.find('#'); i != std::string_view::npos; i = body.find('#', i + 1)) {
      if (i > 0 && body[i - 1] != ' ' && body[i - 1] != '\n') continue;
      size_t end = i + 1;
      while (end < body.size() && (std::isalnum(static_cast<unsigned char>(body[end])) != 0 ||
                                   body[end] == '-' || body[end] == '_')) {
        ++end;
      }
      const std::string_view tag = body.substr(i + 1, end - i - 1);
      if (tag.empty() || tag.size() > kMaxTag ||
          std::isalpha(static_cast<unsigned char>(tag.front())) == 0) {
        continue;
      }
      if (tags.size() < kMaxTags) tags.push_back(std::string(tag));
    }
    if (!tags.empty()) args["tags"] = std::move(tags);
    return args;
  }

  // "7", "7 days", "7d": a number of days for list.
  static std::optional<int64_t> days_in(std::string_view text) {
    std::string_view digits = text;
    for (std::string_view suffix : {" days", " day", "days", "d"}) {
      if (digits.ends_with(suffix)) {
        digits.remove_suffix(suffix.size());
        break;
      }
    }
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || n < 1 ||
        n > kMaxDays) {
      return std::nullopt;
    }
    return n;
  }

  static Result<Entry> entry_from(const json& args, int64_t now, const Zone& zone) {
    Entry e;
    e.body = std::string(trim(args.value("body", std::string())));
    if (e.body.empty()) return bad("add needs a non-empty \"body\", the entry's text");
    e.title = std::string(trim(args.value("title", std::string())));
    for (const auto& [field, slot] : {std::pair{"mood", &e.mood}, std::pair{"energy", &e.energy},
                                      std::pair{"stress", &e.stress}}) {
      if (args.contains(field)) *slot = args.at(field).get<int64_t>();
    }
    if (args.contains("sleep_hours")) e.sleep_hours = args.at("sleep_hours").get<double>();
    if (args.contains("tags")) {
      auto tags = read_tags(args.at("tags"), "journal");
      if (!tags) return fail(std::move(tags).error());
      e.tags = json(*tags).dump();
    }
    auto moment = read_moment(args.value("when", std::string()), now, zone, "journal");
    if (!moment) return fail(std::move(moment).error());
    e.at = moment->at;
    e.day = day_string(moment->day);
    e.created_at = e.updated_at = now;
    return e;
  }

  void add(const UserScope& scope, Entry entry, const Zone& zone, Done done) const {
    auto rec = std::make_shared<Entry>(std::move(entry));
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "journal add",
        [rec, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO journal_entries(user_id, day, at, title, body, mood, energy, stress, "
              "sleep_hours, tags, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, rec->day, rec->at, rec->title, rec->body, rec->mood,
                                    rec->energy, rec->stress, rec->sleep_hours, rec->tags,
                                    rec->created_at, rec->updated_at)
                         .run());
          rec->id = conn.last_insert_rowid();
          return WriteAck{rec->id, true};
        },
        [rec, zone] {
          return json{{"entry", to_json(*rec, zone)},
                      {"text", fmt::format("Saved journal entry #{} for {}{}.", rec->id,
                                           day_label(rec->day), scores_and_tags(*rec))}};
        },
        std::move(done));
  }

  // Entries holding every word, best first (bm25, a title word counting ten times a body word);
  // when none does, those holding any of them. bm25's word weights come from the whole index
  // (every user's entries): they order the caller's hits, and nothing else of them shows.
  static Result<json> search(const UserScope& scope, std::string_view query, const Zone& zone) {
    const auto words = quoted_words(query);
    if (words.empty()) return bad("search needs at least one word (letters or digits)");
    const std::string sql = fmt::format(
        "SELECT {}, snippet(journal_fts, 2, '[', ']', '…', 12) "
        "FROM journal_fts JOIN journal_entries e ON e.id = journal_fts.rowid "
        "WHERE journal_fts MATCH ? AND e.user_id = ? AND e.deleted_at IS NULL "
        "ORDER BY bm25(journal_fts, 0.0, 10.0, 1.0), e.at DESC, e.id DESC LIMIT ?",
        kColumns);
    bool all_words = true;
    std::vector<Found> found;
    for (const bool all : {true, false}) {
      if (!all && words.size() == 1) break;
      all_words = all;
      const auto match = user_match(scope.user_id(), words, all);
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(sql);
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(match, scope.user_id(), kMaxFound);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        found.push_back({read_entry(**st), (*st)->column_text(13)});
      }
      if (!found.empty()) break;
    }
    json out = json::array();
    std::string text = found.empty()
                           ? fmt::format("No journal entry matches \"{}\".", trim(query))
                           : fmt::format("Journal entries matching {} of \"{}\", best first:",
                                         all_words ? "all words" : "some words", trim(query));
    for (const auto& f : found) {
      json item = to_json(f.entry, zone);
      item["snippet"] = f.snippet;
      out.push_back(std::move(item));
      const std::string title =
          f.entry.title.empty() ? "" : fmt::format("{}: ", preview(f.entry.title, kPreview));
      text += fmt::format("\n#{} {} — {}{}", f.entry.id, day_label(f.entry.day), title,
                          preview(f.snippet, 2 * kPreview));
    }
    return json{{"entries", std::move(out)},
                {"matched", all_words ? "all" : "any"},
                {"text", std::move(text)}};
  }

  static Result<json> list(const UserScope& scope, const json& args, int64_t now,
                           const Zone& zone) {
    if (args.contains("day") && args.contains("days")) {
      return bad("list takes \"day\" or \"days\", not both");
    }
    const date::local_days today = local_day(zone, now);
    std::optional<std::pair<date::local_days, date::local_days>> range;
    std::string heading = "Your journal, newest first:";
    if (args.contains("day")) {
      auto day = parse_day(args.at("day").get<std::string>(), now, zone, "journal");
      if (!day) return fail(std::move(day).error());
      range.emplace(*day, *day);
      heading = fmt::format("Your journal on {}:", human_day(*day));
    } else if (args.contains("days")) {
      const auto n = args.at("days").get<int64_t>();
      range.emplace(today - date::days{static_cast<int>(n - 1)}, today);
      heading = n == 1 ? "Your journal today:"
                       : fmt::format("Your journal over the last {} days, newest first:", n);
    }
    const int64_t limit = range ? kMaxInRange : kLatest;
    const std::string where =
        range ? " AND e.day BETWEEN ? AND ?" : "";  // days compare as 'YYYY-MM-DD' strings
    auto entries = read_entries(
        scope,
        fmt::format("SELECT {} FROM journal_entries e WHERE e.user_id = ? AND e.deleted_at IS "
                    "NULL{} ORDER BY e.at DESC, e.id DESC LIMIT ?",
                    kColumns, where),
        [&](storage::Statement& st) {
          if (range) {
            st.bind_all(scope.user_id(), day_string(range->first), day_string(range->second),
                        limit + 1);
          } else {
            st.bind_all(scope.user_id(), limit + 1);
          }
        });
    if (!entries) return fail(std::move(entries).error());
    const bool more = entries->size() > static_cast<size_t>(limit);
    if (more) entries->pop_back();
    json out = json::array();
    std::string text = entries->empty() ? (range ? std::string("No journal entries then.")
                                                 : std::string("Your journal is empty."))
                                        : heading;
    for (const auto& e : *entries) {
      out.push_back(to_json(e, zone));
      text += "\n" + line_for(e);
    }
    if (more) text += fmt::format("\n(only the newest {} are shown)", limit);
    json result{{"entries", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
    if (range) {
      result["from"] = day_string(range->first);
      result["to"] = day_string(range->second);
    }
    return result;
  }

  static Result<json> get(const UserScope& scope, int64_t id, const Zone& zone) {
    auto entries = read_entries(
        scope,
        fmt::format("SELECT {} FROM journal_entries e WHERE e.id = ? AND e.user_id = ?", kColumns),
        [&](storage::Statement& st) { st.bind_all(id, scope.user_id()); });
    if (!entries) return fail(std::move(entries).error());
    if (entries->empty()) return no_such_entry(id);
    const Entry& e = entries->front();
    if (e.deleted_at) {
      return fail(
          ErrorCode::not_found,
          fmt::format("journal: entry #{} is deleted; /journal restore {} brings it back", id, id));
    }
    std::string text = fmt::format("Journal entry #{}, {} {}{}", e.id, human_time(zone, e.at),
                                   zone.name, scores_and_tags(e));
    if (!e.title.empty()) text += "\n" + e.title;
    text += "\n" + e.body;
    return json{{"entry", to_json(e, zone)}, {"text", std::move(text)}};
  }

  // delete (`deleted`) sets deleted_at; restore clears it. Doing either twice answers so.
  void set_deleted(const UserScope& scope, int64_t id, bool deleted, int64_t now, const Zone& zone,
                   Done done) const {
    auto rec = std::make_shared<Entry>();
    auto already = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), deleted ? "journal delete" : "journal restore",
        [rec, already, id, user, deleted, now](Connection& conn) -> Result<WriteAck> {
          auto entry = entry_in(conn, id, user);
          if (!entry) return fail(std::move(entry).error());
          if (!*entry) return no_such_entry(id);
          *rec = **entry;
          *already = rec->deleted_at.has_value() == deleted;
          if (*already) return WriteAck{id, false};
          auto st =
              conn.cached("UPDATE journal_entries SET deleted_at = ? WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          const std::optional<int64_t> deleted_at =
              deleted ? std::optional<int64_t>(now) : std::nullopt;
          PARLEY_TRY((*st)->bind_all(deleted_at, id, user).run());
          rec->deleted_at = deleted_at;
          return WriteAck{id, false};
        },
        [rec, already, deleted, zone] {
          const std::string what =
              fmt::format("#{} ({}: {})", rec->id, day_label(rec->day),
                          preview(rec->title.empty() ? rec->body : rec->title, kPreview));
          std::string text;
          if (deleted) {
            text = fmt::format("{} journal entry {}. To bring it back: /journal restore {}",
                               *already ? "Already deleted:" : "Deleted", what, rec->id);
          } else {
            text = *already ? fmt::format("Journal entry {} is not deleted.", what)
                            : fmt::format("Restored journal entry {}.", what);
          }
          json out{{"entry", to_json(*rec, zone)}, {"text", std::move(text)}};
          if (deleted) out["restore"] = {{"action", "restore"}, {"id", rec->id}};
          return out;
        },
        std::move(done));
  }

  // The last seven days of the caller's zone, today included: each day's entries and its mood
  // (every mood score that day, from mood logs and entries), the averages of the days' values
  // (each day counts once) and a sparkline of the daily mood.
  static Result<json> week(const UserScope& scope, int64_t now, const Zone& zone) {
    const date::local_days last = local_day(zone, now);
    const date::local_days first = last - date::days{kWeekDays - 1};
    struct Day {
      std::vector<Entry> entries;
      std::vector<std::optional<double>> mood, energy, stress, sleep;
      int64_t mood_logs = 0;
    };
    std::vector<Day> days(kWeekDays);
    const auto slot = [&](std::string_view day) -> Day* {
      const auto d = parse_day_string(day);
      if (!d || *d < first || *d > last) return nullptr;
      return &days[static_cast<size_t>((*d - first).count())];
    };
    auto entries = read_entries(
        scope,
        fmt::format("SELECT {} FROM journal_entries e WHERE e.user_id = ? AND e.deleted_at IS "
                    "NULL AND e.day BETWEEN ? AND ? ORDER BY e.at, e.id",
                    kColumns),
        [&](storage::Statement& st) {
          st.bind_all(scope.user_id(), day_string(first), day_string(last));
        });
    if (!entries) return fail(std::move(entries).error());
    for (auto& e : *entries) {
      Day* d = slot(e.day);
      if (d == nullptr) continue;
      const auto push = [](std::vector<std::optional<double>>& to, std::optional<int64_t> v) {
        if (v) to.emplace_back(static_cast<double>(*v));
      };
      push(d->mood, e.mood);
      push(d->energy, e.energy);
      push(d->stress, e.stress);
      if (e.sleep_hours) d->sleep.emplace_back(*e.sleep_hours);
      d->entries.push_back(std::move(e));
    }
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(
          "SELECT day, mood, energy, stress FROM mood_logs WHERE user_id = ? "
          "AND day BETWEEN ? AND ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), day_string(first), day_string(last));
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        Day* d = slot((*st)->column_text(0));
        if (d == nullptr) continue;
        ++d->mood_logs;
        d->mood.emplace_back(static_cast<double>((*st)->column_int64(1)));
        if (auto v = (*st)->column_opt_int64(2)) d->energy.emplace_back(static_cast<double>(*v));
        if (auto v = (*st)->column_opt_int64(3)) d->stress.emplace_back(static_cast<double>(*v));
      }
    }

    std::vector<std::optional<double>> daily_mood, daily_energy, daily_stress, daily_sleep;
    json out_days = json::array();
    std::string lines;
    size_t entry_count = 0;
    for (int i = 0; i < kWeekDays; ++i) {
      const Day& d = days[static_cast<size_t>(i)];
      const date::local_days day = first + date::days{i};
      daily_mood.push_back(mean_of(d.mood));
      daily_energy.push_back(mean_of(d.energy));
      daily_stress.push_back(mean_of(d.stress));
      daily_sleep.push_back(mean_of(d.sleep));
      json listed = json::array();
      std::vector<std::string> titles;
      for (const auto& e : d.entries) {
        const std::string what = e.title.empty() ? preview(e.body, 40) : preview(e.title, 40);
        listed.push_back({{"id", e.id}, {"title", e.title}, {"preview", preview(e.body, 80)}});
        titles.push_back(fmt::format("#{} {}", e.id, what));
      }
      entry_count += d.entries.size();
      out_days.push_back({{"day", day_string(day)},
                          {"mood", or_null(daily_mood.back())},
                          {"mood_scores", d.mood.size()},
                          {"mood_logs", d.mood_logs},
                          {"energy", or_null(daily_energy.back())},
                          {"stress", or_null(daily_stress.back())},
                          {"sleep_hours", or_null(daily_sleep.back())},
                          {"entries", std::move(listed)}});
      const std::string mood =
          daily_mood.back() ? fmt::format("mood {:.1f}", *daily_mood.back()) : "no mood";
      lines += fmt::format("\n{} {} {}{}{}", human_day(day), sparkline({daily_mood.back()}, 1, 10),
                           mood, titles.empty() ? "" : " — ", fmt::join(titles, "; "));
    }
    const auto mood = mean_of(daily_mood);
    const auto energy = mean_of(daily_energy);
    const auto stress = mean_of(daily_stress);
    const auto sleep = mean_of(daily_sleep);
    const std::string spark = sparkline(daily_mood, 1, 10);
    std::vector<std::string> averages;
    if (mood) averages.push_back(fmt::format("mood {:.1f}", *mood));
    if (energy) averages.push_back(fmt::format("energy {:.1f}", *energy));
    if (stress) averages.push_back(fmt::format("stress {:.1f}", *stress));
    if (sleep) averages.push_back(fmt::format("sleep {:.1f} h", *sleep));
    std::string text =
        fmt::format("Your week, {} – {} ({}):", human_day(first), human_day(last), zone.name);
    if (entry_count == 0 && !mood) {
      text += "\nNo journal entries and no mood logs these seven days.";
    } else {
      text += lines;
      text += fmt::format("\nMood {} (1–10)", spark);
      if (!averages.empty()) text += fmt::format("\nAverages: {}", fmt::join(averages, ", "));
      text += fmt::format("\n{} journal {}", entry_count, entry_count == 1 ? "entry" : "entries");
    }
    return json{{"from", day_string(first)},
                {"to", day_string(last)},
                {"zone", zone.name},
                {"days", std::move(out_days)},
                {"average",
                 {{"mood", or_null(mood)},
                  {"energy", or_null(energy)},
                  {"stress", or_null(stress)},
                  {"sleep_hours", or_null(sleep)}}},
                {"entries", entry_count},
                {"sparkline", spark},
                {"text", std::move(text)}};
  }
};

}  // namespace journal_detail
}  // namespace

std::unique_ptr<Capability> make_journal() { return std::make_unique<journal_detail::Journal>(); }

}  // namespace parley::capabilities::builtins
