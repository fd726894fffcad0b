// todo: the caller's todo list, which is the list named "todo" of the `lists` capability (tables
// lists and list_items, migration 0011; its items kept their numbers when they moved there from
// the table todos of migration 0003): one way to keep a list, two ways to ask. Every statement
// is scoped by the UserScope's user id: an item number of another user's item is answered
// exactly like one that does not exist. Writes go through the store's write queue and answer
// once committed; reads use the read pool.
#include <optional>
#include <vector>

#include "builtins/builtins_internal.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr size_t kMaxTodoText = 500;
constexpr int64_t kMaxTodosListed = 100;

constexpr const char* kTodoUsage =
    "/todo add TEXT | /todo list [all] | /todo done ID | /todo remove ID";

struct Item {
  int64_t id = 0;
  std::string text;
  std::optional<int64_t> done_at;
  int64_t created_at = 0;
};

json to_json(const Item& item) {
  return {{"id", item.id},
          {"text", item.text},
          {"done", item.done_at.has_value()},
          {"created_at", iso_utc(item.created_at)},
          {"done_at", item.done_at ? json(iso_utc(*item.done_at)) : json(nullptr)}};
}

Unexpected no_such_item(int64_t id) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  return fail(ErrorCode::not_found, fmt::format("todo: you have no item #{}", id));
}

class Todo final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "todo"; }
  [[nodiscard]] std::string_view description() const override { return "The user's todo list."; }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"to do", "to-do", "task", "chore", "errand"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"action"}},
            {"properties",
             {{"action", {{"type", "string"}, {"enum", {"add", "list", "done", "remove"}}}},
              {"text",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxTodoText},
                {"description", "the item (add)"}}},
              {"id",
               {{"type", "integer"},
                {"minimum", 1},
                {"description", "item number from list (done, remove)"}}},
              {"include_done",
               {{"type", "boolean"},
                {"default", false},
                {"description", "include finished items (list)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"todo", kTodoUsage, "your todo list, e.g. /todo add buy milk"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto [action, rest] = split_first_word(text);
    if (action.empty() || action == "list") {
      if (rest.empty()) return json{{"action", "list"}};
      if (rest == "all") return json{{"action", "list"}, {"include_done", true}};
    } else if (action == "add") {
      if (!rest.empty()) return json{{"action", "add"}, {"text", std::string(rest)}};
    } else if (action == "done" || action == "remove") {
      if (!rest.empty()) {
        auto id = parse_id(rest, "todo");
        if (!id) return fail(std::move(id).error());
        return json{{"action", std::string(action)}, {"id", *id}};
      }
    }
    return fail(ErrorCode::invalid_argument, fmt::format("todo: usage: {}", kTodoUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    if (action == "list") return done(list(**scope, args.value("include_done", false)));
    if (action == "add") {
      const auto text = std::string(trim(args.value("text", std::string())));
      if (text.empty()) {
        return done(fail(ErrorCode::invalid_argument, "todo: add needs a non-empty \"text\""));
      }
      return add(**scope, text, clock_of(ctx).now_ms(), std::move(done));
    }
    if (!args.contains("id")) {
      return done(fail(ErrorCode::invalid_argument,
                       fmt::format("todo: {} needs the item's \"id\"", action)));
    }
    const auto id = args.at("id").get<int64_t>();
    if (action == "done") return complete(**scope, id, clock_of(ctx).now_ms(), std::move(done));
    return remove(**scope, id, std::move(done));
  }

 private:
  static Result<json> list(const UserScope& scope, bool include_done) {
    static constexpr const char* kSql =
        "SELECT i.id, i.text, i.done_at, i.created_at FROM list_items i "
        "JOIN lists l ON l.id = i.list_id "
        "WHERE l.user_id = ? AND l.name = 'todo' AND i.user_id = l.user_id "
        "AND (? OR i.done_at IS NULL) "
        "ORDER BY i.done_at IS NOT NULL, i.id LIMIT ?";
    std::vector<Item> items;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(kSql);
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), include_done ? 1 : 0, kMaxTodosListed + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        items.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_opt_int64(2),
                         (*st)->column_int64(3)});
      }
    }
    const bool more = items.size() > static_cast<size_t>(kMaxTodosListed);
    if (more) items.pop_back();

    json out = json::array();
    std::string text;
    for (const auto& item : items) {
      out.push_back(to_json(item));
      text += fmt::format("\n#{} {}{}", item.id, item.done_at ? "[done] " : "", item.text);
    }
    if (items.empty()) {
      text = include_done ? "Your todo list is empty." : "Nothing left to do.";
    } else {
      text = fmt::format("{}:{}", include_done ? "Your todos" : "Your open todos", text);
      if (more) text += fmt::format("\n(only the first {} are shown)", kMaxTodosListed);
    }
    return json{{"items", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  void add(const UserScope& scope, std::string text, int64_t now, Done done) const {
    auto item = std::make_shared<Item>();
    item->text = std::move(text);
    item->created_at = now;
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "todo add",
        [item, user](Connection& conn) -> Result<WriteAck> {
          auto list = conn.cached(
              "INSERT INTO lists(user_id, name, created_at) VALUES (?, 'todo', ?) "
              "ON CONFLICT(user_id, name) DO UPDATE SET name = name RETURNING id");
          if (!list) return fail(std::move(list).error());
          (*list)->bind_all(user, item->created_at);
          auto row = (*list)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return fail(ErrorCode::internal, "the todo list was not created");
          const int64_t list_id = (*list)->column_int64(0);
          (*list)->reset();
          auto st = conn.cached(
              "INSERT INTO list_items(list_id, user_id, text, created_at) VALUES (?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all(list_id, user, item->text, item->created_at).run());
          item->id = conn.last_insert_rowid();
          return WriteAck{item->id, true};
        },
        [item] {
          return json{{"item", to_json(*item)},
                      {"text", fmt::format("Added #{}: {}", item->id, item->text)}};
        },
        std::move(done));
  }

  void complete(const UserScope& scope, int64_t id, int64_t now, Done done) const {
    auto item = std::make_shared<Item>();
    auto already = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "todo done",
        [item, already, id, user, now](Connection& conn) -> Result<WriteAck> {
          auto get = conn.cached(
              "SELECT text, done_at, created_at FROM list_items WHERE id = ? AND user_id = ? "
              "AND list_id = (SELECT id FROM lists WHERE user_id = list_items.user_id "
              "AND name = 'todo')");
          if (!get) return fail(std::move(get).error());
          (*get)->bind_all(id, user);
          auto row = (*get)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_item(id);
          *item = Item{id, (*get)->column_text(0), (*get)->column_opt_int64(1),
                       (*get)->column_int64(2)};
          *already = item->done_at.has_value();
          if (*already) return WriteAck{id, false};
          auto set = conn.cached("UPDATE list_items SET done_at = ? WHERE id = ? AND user_id = ?");
          if (!set) return fail(std::move(set).error());
          PARLEY_TRY((*set)->bind_all(now, id, user).run());
          item->done_at = now;
          return WriteAck{id, false};
        },
        [item, already] {
          return json{
              {"item", to_json(*item)},
              {"text", *already ? fmt::format("#{} was already done: {}", item->id, item->text)
                                : fmt::format("Done #{}: {}", item->id, item->text)}};
        },
        std::move(done));
  }

  void remove(const UserScope& scope, int64_t id, Done done) const {
    auto item = std::make_shared<Item>();
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "todo remove",
        [item, id, user](Connection& conn) -> Result<WriteAck> {
          auto st = conn.cached(
              "DELETE FROM list_items WHERE id = ? AND user_id = ? "
              "AND list_id = (SELECT id FROM lists WHERE user_id = list_items.user_id "
              "AND name = 'todo') RETURNING text, done_at, created_at");
          if (!st) return fail(std::move(st).error());
          (*st)->bind_all(id, user);
          auto row = (*st)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_item(id);
          *item =
              Item{id, (*st)->column_text(0), (*st)->column_opt_int64(1), (*st)->column_int64(2)};
          return WriteAck{id, false};
        },
        [item] {
          return json{{"item", to_json(*item)},
                      {"text", fmt::format("Removed #{}: {}", item->id, item->text)}};
        },
        std::move(done));
  }
};

}  // namespace

std::unique_ptr<Capability> make_todo() { return std::make_unique<Todo>(); }

}  // namespace parley::capabilities::builtins
