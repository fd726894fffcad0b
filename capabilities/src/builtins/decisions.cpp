// decisions: the caller's decisions (table decisions with the FTS5 index decisions_fts,
// migration 0011): what was decided, the alternatives, the reasons, the confidence and the
// expected outcome; later what actually happened and how satisfied the user is with it. Search
// answers "what did I decide about X, and how did it go?". Every statement is scoped by the
// UserScope's user id — the full-text match inside the index (like notes), and the joined row
// again — so a decision number or a search can never reach another user's decisions. Days are
// the caller's calendar days (builtins/when.h). Writes go through the store's write queue and
// answer once committed; reads use the read pool.
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/when.h"
#include "parley/base/text.h"

namespace parley::capabilities::builtins {
namespace {
namespace decisions_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr size_t kMaxTitle = 300;
constexpr size_t kMaxAlternative = 200;
constexpr size_t kMaxAlternatives = 10;
constexpr size_t kMaxReasons = 2000;
constexpr size_t kMaxExpected = 1000;
constexpr size_t kMaxOutcome = 2000;
constexpr size_t kMaxQuery = 300;
constexpr size_t kMaxDay = 40;
constexpr int64_t kMaxListed = 50;
constexpr int64_t kMaxFound = 10;

constexpr const char* kDecideUsage = "/decide TEXT";
constexpr const char* kDecisionsUsage =
    "/decisions [pending] | /decisions search WORDS | /decisions outcome ID SATISFACTION TEXT | "
    "/decisions ID | /decisions remove ID";

struct Decision {
  int64_t id = 0;
  std::string day;
  std::string title;
  std::vector<std::string> alternatives;
  std::string reasons;
  std::optional<int64_t> confidence;
  std::string expected;
  std::optional<std::string> outcome;
  std::optional<int64_t> satisfaction;
  std::optional<int64_t> outcome_at;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// The columns read_decision() reads, in its order.
constexpr const char* kColumns =
    "d.id, d.day, d.title, d.alternatives, d.reasons, d.confidence, d.expected, d.outcome, "
    "d.satisfaction, d.outcome_at, d.created_at, d.updated_at";

std::vector<std::string> alternatives_from(const std::string& stored) {
  std::vector<std::string> out;
  const json j = json::parse(stored, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& a : j) {
    if (a.is_string()) out.push_back(a.get<std::string>());
  }
  return out;
}

Decision read_decision(const storage::Statement& st) {
  Decision d;
  d.id = st.column_int64(0);
  d.day = st.column_text(1);
  d.title = st.column_text(2);
  d.alternatives = alternatives_from(st.column_text(3));
  d.reasons = st.column_text(4);
  d.confidence = st.column_opt_int64(5);
  d.expected = st.column_text(6);
  if (!st.column_is_null(7)) d.outcome = st.column_text(7);
  d.satisfaction = st.column_opt_int64(8);
  d.outcome_at = st.column_opt_int64(9);
  d.created_at = st.column_int64(10);
  d.updated_at = st.column_int64(11);
  return d;
}

json to_json(const Decision& d) {
  return {{"id", d.id},
          {"day", d.day},
          {"title", d.title},
          {"alternatives", d.alternatives},
          {"reasons", d.reasons},
          {"confidence", d.confidence ? json(*d.confidence) : json(nullptr)},
          {"expected", d.expected},
          {"outcome", d.outcome ? json(*d.outcome) : json(nullptr)},
          {"satisfaction", d.satisfaction ? json(*d.satisfaction) : json(nullptr)},
          {"outcome_at", d.outcome_at ? json(iso_utc(*d.outcome_at)) : json(nullptr)},
          {"created_at", iso_utc(d.created_at)},
          {"updated_at", iso_utc(d.updated_at)}};
}

// One line: "#3 2026-11-23 Take the job (confidence 7/10)".
std::string headline(const Decision& d) {
  std::string line = fmt::format("#{} {} {}", d.id, d.day, d.title);
  if (d.confidence) line += fmt::format(" (confidence {}/10)", *d.confidence);
  return line;
}

// The line, then the alternatives, reasons, expected and actual outcome, indented.
std::string details(const Decision& d) {
  std::string text = headline(d);
  if (!d.alternatives.empty()) {
    text += fmt::format("\n  instead of: {}", fmt::join(d.alternatives, "; "));
  }
  if (!d.reasons.empty()) text += "\n  why: " + d.reasons;
  if (!d.expected.empty()) text += "\n  expected: " + d.expected;
  if (d.outcome) {
    text += "\n  outcome: " + *d.outcome;
    if (d.satisfaction) text += fmt::format(" (satisfaction {}/10)", *d.satisfaction);
  } else {
    text += "\n  outcome not recorded yet";
  }
  return text;
}

Unexpected no_such_decision(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("decisions: you have no decision #{}", id));
}

Unexpected decisions_invalid(std::string message) {
  return fail(ErrorCode::invalid_argument, "decisions: " + std::move(message));
}

Result<std::vector<Decision>> read_decisions(const UserScope& scope, const std::string& sql,
                                             const std::function<void(storage::Statement&)>& bind) {
  std::vector<Decision> found;
  auto conn = scope.store().reads().acquire();
  auto st = conn->cached(sql);
  if (!st) return fail(std::move(st).error());
  bind(**st);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    found.push_back(read_decision(**st));
  }
  return found;
}

// The decision `id` of `user` inside a write job, or not_found.
Result<Decision> read_in_write(Connection& conn, int64_t id, int64_t user) {
  auto st = conn.cached(
      fmt::format("SELECT {} FROM decisions d WHERE d.id = ? AND d.user_id = ?", kColumns));
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(id, user);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return no_such_decision(id);
  return read_decision(**st);
}

// "8" or "8/10" → 8; anything else nullopt (the range is the schema's to check).
std::optional<int64_t> satisfaction_word(std::string_view word) {
  if (word.ends_with("/10")) word.remove_suffix(3);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (word.empty() || ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
  return value;
}

class Decisions final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "decisions"; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's decisions: what they decided and why, and later how it turned out.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"decid", "decision", "chose", "choice", "regret"};
  }
  [[nodiscard]] json parameters() const override {
    const auto text = [](size_t max, const char* description) {
      return json{
          {"type", "string"}, {"minLength", 1}, {"maxLength", max}, {"description", description}};
    };
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action",
           {{"type", "string"},
            {"enum", {"add", "outcome", "search", "list", "get", "remove"}},
            {"description",
             "add a decision; record its outcome later; search by words (\"what did I decide "
             "about X and how did it go?\"); list the latest; get or remove one by id"}}},
          {"title", text(kMaxTitle, "the decision, e.g. 'take the job at Acme' (add)")},
          {"alternatives",
           {{"type", "array"},
            {"maxItems", kMaxAlternatives},
            {"items", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxAlternative}}},
            {"description", "the options not taken (add)"}}},
          {"reasons", text(kMaxReasons, "why (add)")},
          {"confidence",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", 10},
            {"description", "how sure, 1-10 (add)"}}},
          {"expected", text(kMaxExpected, "the outcome expected (add)")},
          {"day",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxDay},
            {"description", "when it was decided: today (default), yesterday, 2026-12-06 (add)"}}},
          {"outcome", text(kMaxOutcome, "what actually happened (outcome)")},
          {"satisfaction",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", 10},
            {"description", "how happy with the result, 1-10 (outcome)"}}},
          {"query", text(kMaxQuery, "words to find (search)")},
          {"pending",
           {{"type", "boolean"},
            {"default", false},
            {"description", "only decisions without an outcome, oldest first (list)"}}},
          {"id",
           {{"type", "integer"},
            {"minimum", 1},
            {"description", "decision number (outcome, get, remove)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"decide", kDecideUsage, "record a decision, e.g. /decide take the job at Acme"},
            {"decisions", kDecisionsUsage,
             "your decisions and how they went, e.g. /decisions search job"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    if (command == "decide") {
      const auto title = trim(text);
      if (title.empty()) {
        return decisions_invalid(fmt::format("decide what? usage: {}", kDecideUsage));
      }
      return json{{"action", "add"}, {"title", std::string(title)}};
    }
    const auto [action, rest] = split_first_word(text);
    if (action.empty() || action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
      if (rest == "pending") return json{{"action", "list"}, {"pending", true}};
    } else if (action == "pending") {
      if (rest.empty()) return json{{"action", "list"}, {"pending", true}};
    } else if (action == "search") {
      if (!rest.empty()) return json{{"action", "search"}, {"query", std::string(rest)}};
    } else if (action == "outcome") {
      return parse_outcome(rest);
    } else if (action == "remove" || action == "get") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "decisions");
        if (!id) return fail(std::move(id).error());
        return json{{"action", std::string(action)}, {"id", *id}};
      }
    } else if (rest.empty() && (std::isdigit(static_cast<unsigned char>(action.front())) != 0 ||
                                action.front() == '#')) {
      auto id = parse_id(action, "decisions");
      if (!id) return fail(std::move(id).error());
      return json{{"action", "get"}, {"id", *id}};
    }
    return decisions_invalid(fmt::format("usage: {}", kDecisionsUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    const int64_t now = clock_of(ctx).now_ms();
    if (action == "list") return done(list(**scope, args.value("pending", false)));
    if (action == "search") {
      if (!args.contains("query")) return done(decisions_invalid("search needs \"query\""));
      return done(search(**scope, args.at("query").get<std::string>()));
    }
    if (action == "add") {
      auto d = decision_from(args, now, zone_of(ctx.caller.time_zone));
      if (!d) return done(fail(std::move(d).error()));
      return add(**scope, std::move(*d), std::move(done));
    }
    if (!args.contains("id")) {
      return done(decisions_invalid(fmt::format("{} needs the decision's \"id\"", action)));
    }
    const auto id = args.at("id").get<int64_t>();
    if (action == "get") return done(get(**scope, id));
    if (action == "remove") return remove(**scope, id, std::move(done));
    // outcome
    std::optional<std::string> outcome;
    if (args.contains("outcome")) {
      outcome = std::string(trim(args.at("outcome").get<std::string>()));
      if (outcome->empty()) return done(decisions_invalid("\"outcome\" is empty"));
    }
    std::optional<int64_t> satisfaction;
    if (args.contains("satisfaction")) satisfaction = args.at("satisfaction").get<int64_t>();
    if (!outcome && !satisfaction) {
      return done(decisions_invalid(
          "outcome needs \"outcome\" (what happened) and/or \"satisfaction\" (1-10)"));
    }
    return record_outcome(**scope, id, std::move(outcome), satisfaction, now, std::move(done));
  }

 private:
  // "/decisions outcome ID SATISFACTION TEXT"
  static Result<json> parse_outcome(std::string_view rest) {
    const auto usage = [] {
      return decisions_invalid(
          "usage: /decisions outcome ID SATISFACTION TEXT, e.g. /decisions outcome 3 8 it went "
          "well (satisfaction 1-10)");
    };
    const auto [id_word, after_id] = split_first_word(rest);
    if (id_word.empty()) return usage();
    auto id = parse_id(id_word, "decisions");
    if (!id) return fail(std::move(id).error());
    const auto [score_word, outcome] = split_first_word(after_id);
    if (score_word.empty()) return usage();
    const auto satisfaction = satisfaction_word(score_word);
    if (!satisfaction) {
      return decisions_invalid(
          fmt::format("'{}' is not a satisfaction (a number 1-10); usage: /decisions outcome ID "
                      "SATISFACTION TEXT",
                      score_word));
    }
    json args{{"action", "outcome"}, {"id", *id}, {"satisfaction", *satisfaction}};
    if (!outcome.empty()) args["outcome"] = std::string(outcome);
    return args;
  }

  // A new decision from the arguments of add, checked.
  static Result<Decision> decision_from(const json& args, int64_t now, const Zone& zone) {
    Decision d;
    d.title = std::string(trim(args.value("title", std::string())));
    if (d.title.empty()) return decisions_invalid("add needs a non-empty \"title\" (the decision)");
    if (args.contains("alternatives")) {
      size_t i = 0;
      for (const auto& a : args.at("alternatives")) {
        auto alt = std::string(trim(a.get<std::string>()));
        if (alt.empty()) return decisions_invalid(fmt::format("alternatives[{}] is empty", i));
        d.alternatives.push_back(std::move(alt));
        ++i;
      }
    }
    d.reasons = std::string(trim(args.value("reasons", std::string())));
    d.expected = std::string(trim(args.value("expected", std::string())));
    if (args.contains("confidence")) d.confidence = args.at("confidence").get<int64_t>();
    auto day = parse_day(args.value("day", std::string("today")), now, zone, "decisions");
    if (!day) {
      // "decisions: could not read the day …" → "decisions: day: could not read the day …"
      Error e = std::move(day).error();
      e.message.insert(std::string_view("decisions: ").size(), "day: ");
      return fail(std::move(e));
    }
    d.day = day_string(*day);
    d.created_at = d.updated_at = now;
    return d;
  }

  static Result<json> list(const UserScope& scope, bool pending) {
    const std::string sql =
        pending ? fmt::format(
                      "SELECT {} FROM decisions d WHERE d.user_id = ? AND d.outcome IS NULL "
                      "ORDER BY d.day, d.id LIMIT ?",
                      kColumns)
                : fmt::format(
                      "SELECT {} FROM decisions d WHERE d.user_id = ? "
                      "ORDER BY d.day DESC, d.id DESC LIMIT ?",
                      kColumns);
    auto found = read_decisions(
        scope, sql, [&](storage::Statement& st) { st.bind_all(scope.user_id(), kMaxListed + 1); });
    if (!found) return fail(std::move(found).error());
    const bool more = found->size() > static_cast<size_t>(kMaxListed);
    if (more) found->pop_back();
    json out = json::array();
    std::string text;
    if (found->empty()) {
      text =
          pending ? "No decision is waiting for its outcome." : "You have recorded no decisions.";
    } else {
      text = pending ? "Decisions waiting for their outcome, oldest first:"
                     : "Your decisions, latest first:";
    }
    for (const auto& d : *found) {
      out.push_back(to_json(d));
      text += "\n" + headline(d);
      if (!pending) {
        if (d.satisfaction) {
          text += fmt::format(" — satisfaction {}/10", *d.satisfaction);
        } else if (!d.outcome) {
          text += " — outcome not recorded yet";
        }
      }
    }
    if (more) text += fmt::format("\n(only the first {} are shown)", kMaxListed);
    return json{{"decisions", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  // Decisions holding every word, then (when none does) any of them, best match first: bm25
  // with the decision itself weighted above the rest.
  static Result<json> search(const UserScope& scope, std::string_view query) {
    const auto words = quoted_words(query);
    if (words.empty()) {
      return decisions_invalid("search needs at least one word (letters or digits)");
    }
    const std::string sql = fmt::format(
        "SELECT {} FROM decisions_fts JOIN decisions d ON d.id = decisions_fts.rowid "
        "WHERE decisions_fts MATCH ? AND d.user_id = ? "
        "ORDER BY bm25(decisions_fts, 0.0, 4.0, 1.0), d.day DESC, d.id DESC LIMIT ?",
        kColumns);
    bool all_words = true;
    Result<std::vector<Decision>> found = std::vector<Decision>{};
    for (const bool all : {true, false}) {
      if (!all && words.size() == 1) break;
      all_words = all;
      // Scoped to one user inside the index; the words match the decision and its story.
      const auto match = user_match(scope.user_id(), words, all);
      found = read_decisions(scope, sql, [&](storage::Statement& st) {
        st.bind_all(match, scope.user_id(), kMaxFound);
      });
      if (!found) return fail(std::move(found).error());
      if (!found->empty()) break;
    }
    json out = json::array();
    std::string text = found->empty()
                           ? fmt::format("No decision matches \"{}\".", trim(query))
                           : fmt::format("Decisions matching {} of \"{}\", best first:",
                                         all_words ? "all words" : "some words", trim(query));
    for (const auto& d : *found) {
      out.push_back(to_json(d));
      text += "\n" + details(d);
    }
    return json{{"decisions", std::move(out)},
                {"matched", all_words ? "all" : "any"},
                {"text", std::move(text)}};
  }

  static Result<json> get(const UserScope& scope, int64_t id) {
    auto found = read_decisions(
        scope, fmt::format("SELECT {} FROM decisions d WHERE d.id = ? AND d.user_id = ?", kColumns),
        [&](storage::Statement& st) { st.bind_all(id, scope.user_id()); });
    if (!found) return fail(std::move(found).error());
    if (found->empty()) return no_such_decision(id);
    const auto& d = found->front();
    return json{{"decision", to_json(d)}, {"text", details(d)}};
  }

  void add(const UserScope& scope, Decision d, Done done) const {
    auto rec = std::make_shared<Decision>(std::move(d));
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "decisions add",
        [rec, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "INSERT INTO decisions(user_id, day, title, alternatives, reasons, confidence, "
              "expected, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(user, rec->day, rec->title, json(rec->alternatives).dump(),
                                    rec->reasons, rec->confidence, rec->expected, rec->created_at,
                                    rec->updated_at)
                         .run());
          rec->id = conn.last_insert_rowid();
          return WriteAck{rec->id, true};
        },
        [rec] {
          return json{{"decision", to_json(*rec)},
                      {"text", fmt::format("Recorded decision {}", headline(*rec))}};
        },
        std::move(done));
  }

  void record_outcome(const UserScope& scope, int64_t id, std::optional<std::string> outcome,
                      std::optional<int64_t> satisfaction, int64_t now, Done done) const {
    auto rec = std::make_shared<Decision>();
    auto first = std::make_shared<bool>(true);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "decisions outcome",
        [rec, first, id, user, outcome = std::move(outcome), satisfaction,
         now](Connection& conn) -> Result<WriteAck> {
          auto before = read_in_write(conn, id, user);
          if (!before) return fail(std::move(before).error());
          *first = !before->outcome;
          if (!outcome && !before->outcome) {
            return decisions_invalid(fmt::format(
                "#{} has no outcome yet: say what happened (\"outcome\") with the satisfaction",
                id));
          }
          auto st = conn.cached(
              "UPDATE decisions SET outcome = coalesce(?, outcome), "
              "satisfaction = coalesce(?, satisfaction), outcome_at = ?, updated_at = ? "
              "WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all(outcome, satisfaction, now, now, id, user).run());
          auto after = read_in_write(conn, id, user);
          if (!after) return fail(std::move(after).error());
          *rec = std::move(*after);
          return WriteAck{id, false};
        },
        [rec, first] {
          return json{
              {"decision", to_json(*rec)},
              {"text", fmt::format("{} how it went for #{}:\n{}", *first ? "Recorded" : "Updated",
                                   rec->id, details(*rec))}};
        },
        std::move(done));
  }

  void remove(const UserScope& scope, int64_t id, Done done) const {
    auto rec = std::make_shared<Decision>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "decisions remove",
        [rec, id, user](Connection& conn) -> Result<WriteAck> {
          auto before = read_in_write(conn, id, user);
          if (!before) return fail(std::move(before).error());
          auto st = conn.cached("DELETE FROM decisions WHERE id = ? AND user_id = ?");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all(id, user).run());
          *rec = std::move(*before);
          return WriteAck{id, false};
        },
        [rec] {
          return json{{"decision", to_json(*rec)},
                      {"text", fmt::format("Removed decision #{}: {}", rec->id, rec->title)}};
        },
        std::move(done));
  }
};

}  // namespace decisions_detail
}  // namespace

std::unique_ptr<Capability> make_decisions() {
  return std::make_unique<decisions_detail::Decisions>();
}

}  // namespace parley::capabilities::builtins
