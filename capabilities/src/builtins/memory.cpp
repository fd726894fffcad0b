// memory: what parley remembers about the caller (table memories with the FTS5 index
// memories_fts, through storage's MemoryRepository): remember, recall, forget, list. Strictly
// per user: recall and list are scoped to the UserScope's user inside the repository; get(id) is
// not, so its record is checked against the scope, and forget deletes with the user id in the
// statement itself — an id of another user's memory is answered exactly like a free one.
// Writes go through the store's write queue and answer once committed.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <vector>

#include "builtins/builtins_internal.h"
#include "parley/base/text.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;
using storage::Memory;

constexpr size_t kMaxContent = 1000;
constexpr size_t kMaxMemoryQuery = 500;
constexpr size_t kMaxTags = 10;
constexpr size_t kMaxTag = 40;
constexpr int64_t kMaxLimit = 50;
constexpr int64_t kListDefault = 20;
constexpr int kDefaultImportance = 3;
constexpr int kMaxImportance = 5;

constexpr const char* kMemoryUsage =
    "/remember TEXT | /recall WORDS | /forget ID | /memories [export] | /memory edit ID TEXT | "
    "/undo | /offtherecord [on|off]";

std::vector<std::string> split_tags(std::string_view tags) {
  std::vector<std::string> out;
  for (;;) {
    auto [tag, rest] = split_first_word(tags);
    if (tag.empty()) break;
    out.emplace_back(tag);
    tags = rest;
  }
  return out;
}

json to_json(const Memory& m) {
  json j = {{"id", m.id},
            {"content", m.content},
            {"kind", m.kind},
            {"tags", split_tags(m.tags)},
            {"importance", m.importance},
            {"source", m.source},
            {"created_at", iso_utc(m.created_at)},
            {"updated_at", iso_utc(m.updated_at)}};
  if (m.event_at) j["event_at"] = iso_utc(*m.event_at);
  if (m.superseded_by != 0) j["superseded_by"] = m.superseded_by;
  return j;
}

// "#12 (preference) I love pizza [food]"; facts, the default kind, are not labelled.
std::string line_for(const Memory& m) {
  std::string line = fmt::format("#{} ", m.id);
  if (m.kind != "fact") line += fmt::format("({}) ", m.kind);
  line += m.content;
  if (!m.tags.empty()) line += fmt::format(" [{}]", fmt::join(split_tags(m.tags), ", "));
  if (m.superseded_by != 0) line += fmt::format(" (no longer: see #{})", m.superseded_by);
  return line;
}

std::vector<std::string> kinds() {
  return {std::begin(storage::kMemoryKinds), std::end(storage::kMemoryKinds)};
}

Unexpected no_such_memory(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("memory: you have no memory #{}", id));
}

Error named(Error e) {
  if (!e.message.starts_with("memory: ")) e.message = "memory: " + e.message;
  return e;
}

// "what do I love to eat?" → "what do I love to eat" (for "Nothing about … yet.").
std::string_view topic(std::string_view query) {
  query = trim(query);
  while (!query.empty() && (query.back() == '?' || query.back() == '.' || query.back() == '!')) {
    query.remove_suffix(1);
  }
  return trim(query);
}

class MemoryCapability final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "memory"; }
  [[nodiscard]] std::string_view description() const override {
    return "Facts about the user, kept across conversations.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"memor", "remember", "recall", "forget", "forgot", "favo"};
  }
  [[nodiscard]] json parameters() const override {
    return {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"action"}},
        {"properties",
         {{"action",
           {{"type", "string"},
            {"enum",
             {"remember", "recall", "update", "forget", "list", "export", "core", "undo",
              "off_record"}}}},
          {"on",
           {{"type", "boolean"},
            {"description",
             "off_record: true, nothing from this conversation is remembered on my own; false, "
             "it is again"}}},
          {"key",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", 40},
            {"description", "core: name, pronouns, timezone, … (with value: set; alone: remove)"}}},
          {"value", {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}}},
          {"content",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxContent},
            {"description", "one self-contained sentence (remember, update)"}}},
          {"kind",
           {{"type", "string"},
            {"enum", kinds()},
            {"default", "fact"},
            {"description", "what it is (remember, update)"}}},
          {"tags",
           {{"type", "array"},
            {"maxItems", kMaxTags},
            {"items",
             {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxTag}, {"pattern", "^\\S+$"}}},
            {"description", "one-word topics, e.g. [\"food\"] (remember, update)"}}},
          {"importance",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", kMaxImportance},
            {"default", kDefaultImportance},
            {"description", "1 trivia … 5 essential (remember, update)"}}},
          {"query",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxMemoryQuery},
            {"description", "a question or words (recall)"}}},
          {"id",
           {{"type", "integer"},
            {"minimum", 1},
            {"description", "memory number from recall or list (update, forget)"}}},
          {"limit",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", kMaxLimit},
            {"description", "at most this many (recall, list)"}}}}}};
  }
  [[nodiscard]] json settings_schema() const override {
    const auto weight = [](double d, const char* what) {
      return json{{"type", "number"},
                  {"minimum", 0},
                  {"maximum", 1},
                  {"default", d},
                  {"description", what}};
    };
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"recall_limit",
               {{"type", "integer"},
                {"minimum", 1},
                {"maximum", kMaxLimit},
                {"default", 5},
                {"description", "memories recalled when the call does not say"}}},
              {"weight_relevance", weight(0.7, "weight of the bm25 match in the recall score")},
              {"weight_recency", weight(0.2, "weight of how recently a memory was updated")},
              {"weight_importance", weight(0.1, "weight of the memory's importance")},
              {"half_life_days",
               {{"type", "number"},
                {"minimum", 0.01},
                {"maximum", 36'500},
                {"default", 30},
                {"description", "age at which a memory's recency counts half"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {
        {"remember", "/remember TEXT", "remember something, e.g. /remember I love pizza"},
        {"recall", "/recall WORDS", "what I remember about it, e.g. /recall food"},
        {"forget", "/forget ID", "forget a memory, by the number /memories shows"},
        {"memories", "/memories", "everything I remember about you, newest first"},
        {"memory", "/memory edit ID TEXT", "correct a memory, e.g. /memory edit 12 I love sushi"},
        {"undo", "/undo", "undo the last change I made to your memories on my own"},
        {"offtherecord", "/offtherecord [on|off]",
         "off the record: I remember nothing from this conversation on my own (off: again)"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    text = trim(text);
    if (command == "remember" && !text.empty()) {
      // "/remember that I love pizza": the fact is what follows "that".
      if (auto [first, rest] = split_first_word(text); first == "that" && !rest.empty()) {
        text = rest;
      }
      return json{{"action", "remember"}, {"content", std::string(text)}};
    }
    if (command == "recall" && !text.empty()) {
      return json{{"action", "recall"}, {"query", std::string(text)}};
    }
    if (command == "forget" && !text.empty()) {
      auto id = parse_id(text, "memory");
      if (!id) return fail(std::move(id).error());
      return json{{"action", "forget"}, {"id", *id}};
    }
    if (command == "memories" && text.empty()) return json{{"action", "list"}};
    if (command == "undo" && text.empty()) return json{{"action", "undo"}};
    if (command == "offtherecord" && (text.empty() || text == "on" || text == "off")) {
      return json{{"action", "off_record"}, {"on", text != "off"}};
    }
    if (command == "memories" && text == "export") return json{{"action", "export"}};
    if (command == "core") {
      auto [verb, rest] = split_first_word(text);
      auto [key, value] = split_first_word(rest);
      if (verb.empty()) return json{{"action", "core"}};
      if (verb == "set" && !key.empty() && !trim(value).empty()) {
        return json{
            {"action", "core"}, {"key", std::string(key)}, {"value", std::string(trim(value))}};
      }
      if (verb == "unset" && !key.empty() && trim(value).empty()) {
        return json{{"action", "core"}, {"key", std::string(key)}};
      }
    }
    if (command == "memory") {
      auto [verb, rest] = split_first_word(text);
      auto [id_text, content] = split_first_word(rest);
      if (verb == "edit" && !trim(content).empty()) {
        auto id = parse_id(id_text, "memory");
        if (!id) return fail(std::move(id).error());
        return json{{"action", "update"}, {"id", *id}, {"content", std::string(trim(content))}};
      }
    }
    return fail(ErrorCode::invalid_argument, fmt::format("memory: usage: {}", kMemoryUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    if (action == "list") {
      return done(list(**scope, args.value("limit", kListDefault)));
    }
    if (action == "export") return done(export_all(**scope));
    if (action == "undo") return undo(**scope, std::move(done));
    if (action == "off_record") {
      return off_record(**scope, ctx.conversation_id, args.value("on", true), std::move(done));
    }
    if (action == "core") {
      if (!args.contains("key")) return done(core_block(**scope));
      return core_edit(**scope, args.at("key").get<std::string>(),
                       args.value("value", std::string()), std::move(done));
    }
    if (action == "recall") {
      const auto query = args.value("query", std::string());
      if (trim(query).empty()) {
        return done(fail(ErrorCode::invalid_argument, "memory: recall needs a \"query\""));
      }
      const json settings = with_defaults(settings_schema(), ctx.settings);
      const int64_t limit = args.value("limit", settings.at("recall_limit").get<int64_t>());
      return done(recall(**scope, query, static_cast<size_t>(limit), recall_weights(settings),
                         clock_of(ctx).now_ms()));
    }
    if (action == "remember" || action == "update") {
      storage::NewMemory m;
      m.user_id = (*scope)->user_id();
      m.content = std::string(trim(args.value("content", std::string())));
      if (m.content.empty()) {
        return done(fail(ErrorCode::invalid_argument,
                         fmt::format("memory: {} needs a non-empty \"content\"", action)));
      }
      std::vector<std::string> tags;
      for (const auto& t : args.value("tags", json::array())) tags.push_back(t.get<std::string>());
      m.tags = fmt::format("{}", fmt::join(tags, " "));
      m.importance = args.value("importance", kDefaultImportance);
      m.kind = args.value("kind", std::string("fact"));
      // Typed by the user (/remember, /memory edit) or asked of the tool by the model.
      m.source = ctx.direct ? "user" : "tool";
      // Once written, its vector for recall is made (when someone listens).
      if (ctx.services != nullptr && ctx.services->memory_written) {
        done = [hook = ctx.services->memory_written, user = m.user_id,
                done = std::move(done)](Result<json> r) {
          if (r.ok() && r->contains("memory") && !r->value("duplicate", false)) {
            hook(user, (*r)["memory"]["id"].get<int64_t>(),
                 (*r)["memory"]["content"].get<std::string>());
          }
          done(std::move(r));
        };
      }
      if (action == "remember") return remember(**scope, std::move(m), std::move(done));
      if (!args.contains("id")) {
        return done(fail(ErrorCode::invalid_argument, "memory: update needs the memory's \"id\""));
      }
      return update(**scope, args.at("id").get<int64_t>(), std::move(m), std::move(done));
    }
    if (!args.contains("id")) {
      return done(fail(ErrorCode::invalid_argument, "memory: forget needs the memory's \"id\""));
    }
    return forget(**scope, args.at("id").get<int64_t>(), std::move(done));
  }

 private:
  static Result<json> list(const UserScope& scope, int64_t limit) {
    auto found =
        scope.store().memories().list_for_user(scope.user_id(), static_cast<size_t>(limit) + 1);
    if (!found) return fail(named(std::move(found).error()));
    const bool more = found->size() > static_cast<size_t>(limit);
    if (more) found->pop_back();
    json out = json::array();
    std::string text =
        found->empty() ? "I don't remember anything about you yet." : "I remember, newest first:";
    for (const auto& m : *found) {
      out.push_back(to_json(*m));
      text += "\n" + line_for(*m);
    }
    if (more) text += fmt::format("\n(only the newest {} are shown)", limit);
    return json{{"memories", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  // The core block: always in the prompt; the user sees and edits it.
  static Result<json> core_block(const UserScope& scope) {
    auto core = scope.store().core().get(scope.user_id());
    if (!core) return fail(named(std::move(core).error()));
    json out = json::object();
    std::string text = core->empty() ? "Nothing kept in mind about you yet (/core set KEY VALUE)."
                                     : "Always in mind about you:";
    for (const auto& [k, v] : *core) {
      out[k] = v;
      text += fmt::format("\n{}: {}", k, v);
    }
    return json{{"core", std::move(out)}, {"text", std::move(text)}};
  }

  static void core_edit(const UserScope& scope, const std::string& key, const std::string& value,
                        Done done) {
    auto answer = [done = std::move(done), key, value](Result<storage::WriteAck> ack) {
      if (!ack) {
        Error e = std::move(ack).error();
        if (!e.message.starts_with("core: ")) e = named(std::move(e));
        return done(fail(std::move(e)));
      }
      done(json{{"key", key},
                {"value", value.empty() ? json() : json(value)},
                {"text", value.empty() ? fmt::format("Removed {}.", key)
                                       : fmt::format("Noted: {}: {}", key, value)}});
    };
    if (value.empty()) {
      scope.store().core().unset(scope.user_id(), key, std::move(answer));
    } else {
      scope.store().core().set(scope.user_id(), key, value, std::move(answer));
    }
  }

  // Every current memory of the user, as JSON they can keep (the text is the JSON itself).
  static Result<json> export_all(const UserScope& scope) {
    constexpr size_t kMaxExport = 10'000;
    auto found = scope.store().memories().list_for_user(scope.user_id(), kMaxExport);
    if (!found) return fail(named(std::move(found).error()));
    json out = json::array();
    for (const auto& m : *found) out.push_back(to_json(*m));
    std::string text = out.dump(1);
    return json{{"memories", std::move(out)}, {"text", std::move(text)}};
  }

  static storage::RecallWeights recall_weights(const json& settings) {
    storage::RecallWeights w;
    w.relevance = settings.at("weight_relevance").get<double>();
    w.recency = settings.at("weight_recency").get<double>();
    w.importance = settings.at("weight_importance").get<double>();
    w.half_life_days = settings.at("half_life_days").get<double>();
    return w;
  }

  static Result<json> recall(const UserScope& scope, std::string_view query, size_t limit,
                             const storage::RecallWeights& w, int64_t now_ms) {
    storage::RecallRequest request;
    request.user_id = scope.user_id();
    request.query = query;
    request.limit = limit;
    request.weights = w;
    request.now_ms = now_ms;
    auto ranked = scope.store().memories().recall_ranked(request);
    if (!ranked) return fail(named(std::move(ranked).error()));
    json out = json::array();
    std::string text;
    for (const auto& r : *ranked) {
      // The repository scopes recall to the user; checked again, as get() results are.
      if (r.memory->user_id != scope.user_id()) continue;
      json j = to_json(*r.memory);
      j["score"] = r.score;
      j["relevance"] = r.relevance;
      j["recency"] = r.recency;
      out.push_back(std::move(j));
      text += "\n" + line_for(*r.memory);
    }
    text = out.empty() ? fmt::format("Nothing about {} yet.", topic(query)) : "I remember:" + text;
    return json{{"memories", std::move(out)}, {"text", std::move(text)}};
  }

  static void remember(const UserScope& scope, storage::NewMemory m, Done done) {
    auto& memories = scope.store().memories();
    auto fallback = std::make_shared<Memory>();
    fallback->user_id = m.user_id;
    fallback->content = m.content;
    fallback->tags = m.tags;
    fallback->importance = m.importance;
    memories.add(std::move(m), [&memories, fallback,
                                done = std::move(done)](Result<storage::WriteAck> ack) {
      if (!ack) return done(fail(named(std::move(ack).error())));
      // Committed, and cached by the repository on commit: this is a cache hit.
      auto stored = memories.get(ack->row_id);
      Memory rec = *fallback;
      if (stored) {
        rec = **stored;
      } else {
        rec.id = ack->row_id;
      }
      if (!ack->inserted) {
        done(json{{"memory", to_json(rec)},
                  {"duplicate", true},
                  {"text", fmt::format("I already remember that (#{}): {}", rec.id, rec.content)}});
        return;
      }
      done(json{{"memory", to_json(rec)},
                {"text", fmt::format("I'll remember that (#{}): {}", rec.id, rec.content)}});
    });
  }

  static void update(const UserScope& scope, int64_t id, storage::NewMemory m, Done done) {
    auto& memories = scope.store().memories();
    // Written with the user id in the job itself: another user's id is answered like a free one.
    memories.update_for_user(
        id, std::move(m), [&memories, id, done = std::move(done)](Result<storage::WriteAck> ack) {
          if (!ack) {
            if (ack.error().code == ErrorCode::not_found) return done(no_such_memory(id));
            return done(fail(named(std::move(ack).error())));
          }
          auto stored = memories.get(id);
          if (!stored) return done(fail(named(std::move(stored).error())));
          done(json{{"memory", to_json(**stored)},
                    {"text", fmt::format("Updated #{}: {}", id, (*stored)->content)}});
        });
  }

  // The newest change extraction made, undone.
  static void undo(const UserScope& scope, Done done) {
    scope.store().memories().undo_last_extracted(
        scope.user_id(), [done = std::move(done)](Result<storage::MemoryEvent> undone) {
          if (!undone) {
            if (undone.error().code == ErrorCode::not_found) {
              return done(json{{"undone", nullptr},
                               {"text", "There is no change of mine to your memories to undo."}});
            }
            return done(fail(named(std::move(undone).error())));
          }
          const auto& e = *undone;
          std::string text;
          if (e.op == "ADD") {
            text = fmt::format("Undone: I no longer remember #{} ({}).", e.memory_id,
                               e.new_text.value_or(""));
          } else if (e.op == "UPDATE") {
            text = fmt::format("Undone: #{} reads again \"{}\".", e.memory_id,
                               e.old_text.value_or(""));
          } else {
            text = fmt::format("Undone: #{} ({}) is current again.", e.memory_id,
                               e.old_text.value_or(""));
          }
          done(json{{"undone", {{"event", e.id}, {"op", e.op}, {"memory", e.memory_id}}},
                    {"text", std::move(text)}});
        });
  }

  static void off_record(const UserScope& scope, int64_t conversation_id, bool on, Done done) {
    if (conversation_id <= 0) {
      return done(fail(ErrorCode::invalid_argument, "memory: off_record needs a conversation"));
    }
    scope.store().memories().set_off_record(
        conversation_id, on, [on, done = std::move(done)](Result<storage::WriteAck> ack) {
          if (!ack) return done(fail(named(std::move(ack).error())));
          done(json{{"off_record", on},
                    {"text", on ? "Off the record: I will not remember anything from this "
                                  "conversation on my own (/offtherecord off to change that)."
                                : "On the record again: I may remember what you tell me here."}});
        });
  }

  static void forget(const UserScope& scope, int64_t id, Done done) {
    auto& memories = scope.store().memories();
    auto found = memories.get(id);
    if (!found) {
      if (found.error().code == ErrorCode::not_found) return done(no_such_memory(id));
      return done(fail(named(std::move(found).error())));
    }
    std::shared_ptr<const Memory> memory = *found;
    if (memory->user_id != scope.user_id() || memory->deleted_at) return done(no_such_memory(id));
    // Deleted with the user id in the statement: no window between this check and the delete.
    memories.remove_for_user(
        scope.user_id(), id, [memory, id, done = std::move(done)](Result<storage::WriteAck> ack) {
          if (!ack) {
            if (ack.error().code == ErrorCode::not_found) return done(no_such_memory(id));
            return done(fail(named(std::move(ack).error())));
          }
          done(json{{"memory", to_json(*memory)},
                    {"text", fmt::format("Forgot #{}: {}", id, memory->content)}});
        });
  }
};

}  // namespace

std::unique_ptr<Capability> make_memory() { return std::make_unique<MemoryCapability>(); }

}  // namespace parley::capabilities::builtins
