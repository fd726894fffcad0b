// notes: the caller's notes (table notes with the FTS5 index notes_fts, migration 0003): save,
// search, list, delete. Every statement is scoped by the UserScope's user id — the full-text
// match inside the index (like memory recall), and the joined row again — so a note number or a
// search can never reach another user's notes. Writes go through the store's write queue and
// answer once committed; reads use the read pool.
#include <vector>

#include "builtins/builtins_internal.h"
#include "parley/base/text.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxBody = 10'000;
constexpr size_t kMaxNotesQuery = 500;
constexpr int64_t kMaxFound = 10;
constexpr int64_t kMaxNotesListed = 50;
constexpr size_t kPreview = 80;

constexpr const char* kNotesUsage =
    "/notes save TEXT | /notes search WORDS | /notes list | /notes delete ID";

struct Note {
  int64_t id = 0;
  std::string title;
  std::string body;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

json to_json(const Note& n) {
  return {{"id", n.id},
          {"title", n.title},
          {"body", n.body},
          {"created_at", iso_utc(n.created_at)},
          {"updated_at", iso_utc(n.updated_at)}};
}

std::string line_for(const Note& n) {
  if (n.title.empty()) return fmt::format("#{} {}", n.id, preview(n.body, kPreview));
  return fmt::format("#{} {} — {}", n.id, preview(n.title, kPreview), preview(n.body, kPreview));
}

Result<std::vector<Note>> read_notes(const UserScope& scope, const char* sql,
                                     const std::function<void(storage::Statement&)>& bind) {
  std::vector<Note> notes;
  auto conn = scope.store().reads().acquire();
  auto st = conn->cached(sql);
  if (!st) return fail(std::move(st).error());
  bind(**st);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    notes.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_text(2),
                     (*st)->column_int64(3), (*st)->column_int64(4)});
  }
  return notes;
}

class Notes final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "notes"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's notes: saved texts found again by their words.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"note",         "jot",           "write down", "wrote down",
            "written down", "write it down", "save this"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"action"}},
            {"properties",
             {{"action", {{"type", "string"}, {"enum", {"save", "search", "list", "delete"}}}},
              {"title",
               {{"type", "string"}, {"maxLength", kMaxTitle}, {"description", "optional (save)"}}},
              {"body",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxBody},
                {"description", "the text (save)"}}},
              {"query",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxNotesQuery},
                {"description", "words to find (search)"}}},
              {"id",
               {{"type", "integer"},
                {"minimum", 1},
                {"description", "note number from list or search (delete)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {
        {"notes", kNotesUsage, "your notes, e.g. /notes save the wifi password is on the router"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (action.empty() || action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
    } else if (action == "save") {
      if (!rest.empty()) return json{{"action", "save"}, {"body", std::string(rest)}};
    } else if (action == "search") {
      if (!rest.empty()) return json{{"action", "search"}, {"query", std::string(rest)}};
    } else if (action == "delete") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "notes");
        if (!id) return fail(std::move(id).error());
        return json{{"action", "delete"}, {"id", *id}};
      }
    }
    return fail(ErrorCode::invalid_argument, fmt::format("notes: usage: {}", kNotesUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    if (action == "list") return done(list(**scope));
    if (action == "search") return done(search(**scope, args.value("query", std::string())));
    if (action == "save") {
      Note note;
      note.title = std::string(trim(args.value("title", std::string())));
      note.body = std::string(trim(args.value("body", std::string())));
      if (note.body.empty()) {
        return done(fail(ErrorCode::invalid_argument, "notes: save needs a non-empty \"body\""));
      }
      note.created_at = note.updated_at = clock_of(ctx).now_ms();
      return save(**scope, std::move(note), std::move(done));
    }
    if (!args.contains("id")) {
      return done(fail(ErrorCode::invalid_argument, "notes: delete needs the note's \"id\""));
    }
    return remove(**scope, args.at("id").get<int64_t>(), std::move(done));
  }

 private:
  static Result<json> list(const UserScope& scope) {
    auto notes = read_notes(
        scope,
        "SELECT id, title, body, created_at, updated_at FROM notes WHERE user_id = ? "
        "ORDER BY updated_at DESC, id DESC LIMIT ?",
        [&](storage::Statement& st) { st.bind_all(scope.user_id(), kMaxNotesListed + 1); });
    if (!notes) return fail(std::move(notes).error());
    const bool more = notes->size() > static_cast<size_t>(kMaxNotesListed);
    if (more) notes->pop_back();
    json out = json::array();
    std::string text = notes->empty() ? "You have no notes." : "Your notes, newest first:";
    for (const auto& n : *notes) {
      out.push_back(to_json(n));
      text += "\n" + line_for(n);
    }
    if (more) text += fmt::format("\n(only the newest {} are shown)", kMaxNotesListed);
    return json{{"notes", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  // Notes holding every word, newest first; when none does, those holding any of them. Ranking
  // by recency rather than bm25(): FTS5's bm25 weighs words by their frequency over every
  // user's notes.
  static Result<json> search(const UserScope& scope, std::string_view query) {
    const auto words = quoted_words(query);
    if (words.empty()) {
      return fail(ErrorCode::invalid_argument,
                  "notes: search needs at least one word (letters or digits)");
    }
    static constexpr const char* kSql =
        "SELECT n.id, n.title, n.body, n.created_at, n.updated_at "
        "FROM notes_fts JOIN notes n ON n.id = notes_fts.rowid "
        "WHERE notes_fts MATCH ? AND n.user_id = ? "
        "ORDER BY n.updated_at DESC, n.id DESC LIMIT ?";
    bool all_words = true;
    Result<std::vector<Note>> found = std::vector<Note>{};
    for (const bool all : {true, false}) {
      if (!all && words.size() == 1) break;
      all_words = all;
      const auto match = user_match(scope.user_id(), words, all);
      found = read_notes(scope, kSql, [&](storage::Statement& st) {
        st.bind_all(match, scope.user_id(), kMaxFound);
      });
      if (!found) return fail(std::move(found).error());
      if (!found->empty()) break;
    }
    json out = json::array();
    std::string text;
    if (found->empty()) {
      text = fmt::format("No note matches \"{}\".", trim(query));
    } else {
      text = fmt::format("{} matching {} of \"{}\":", found->size() == 1 ? "Note" : "Notes",
                         all_words ? "all words" : "some words", trim(query));
    }
    for (const auto& n : *found) {
      out.push_back(to_json(n));
      text += "\n" + line_for(n);
    }
    return json{{"notes", std::move(out)},
                {"matched", all_words ? "all" : "any"},
                {"text", std::move(text)}};
  }

  void save(const UserScope& scope, Note note, Done done) const {
    auto rec = std::make_shared<Note>(std::move(note));
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "notes save",
        [rec, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO notes(user_id, title, body, created_at, updated_at) "
              "VALUES (?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY(
              (*st)->bind_all(user, rec->title, rec->body, rec->created_at, rec->updated_at).run());
          rec->id = conn.last_insert_rowid();
          return WriteAck{rec->id, true};
        },
        [rec] {
          return json{{"note", to_json(*rec)}, {"text", fmt::format("Saved note #{}.", rec->id)}};
        },
        std::move(done));
  }

  void remove(const UserScope& scope, int64_t id, Done done) const {
    auto rec = std::make_shared<Note>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "notes delete",
        [rec, id, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "DELETE FROM notes WHERE id = ? AND user_id = ? "
              "RETURNING title, body, created_at, updated_at");
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(id, user);
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) {
            // The same answer whether the id is free or another user's.
            return fail(ErrorCode::not_found, fmt::format("notes: you have no note #{}", id));
          }
          *rec = Note{id, (*st)->column_text(0), (*st)->column_text(1), (*st)->column_int64(2),
                      (*st)->column_int64(3)};
          return WriteAck{id, false};
        },
        [rec] {
          return json{{"note", to_json(*rec)},
                      {"text", fmt::format("Deleted note #{}: {}", rec->id,
                                           preview(rec->title.empty() ? rec->body : rec->title,
                                                   kPreview))}};
        },
        std::move(done));
  }
};

}  // namespace

std::unique_ptr<Capability> make_notes() { return std::make_unique<Notes>(); }

}  // namespace parley::capabilities::builtins
