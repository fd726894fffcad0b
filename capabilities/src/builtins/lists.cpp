// lists: the caller's named lists — groceries, packing, … (tables lists and list_items,
// migration 0011) — with items that have an optional quantity and unit and are open or done.
// The list named "todo" is the one the todo capability keeps: one way to keep a list, two ways
// to ask (an item added with /todo shows in /list todo, and the reverse).
//
// List names are compared without case (the column is COLLATE NOCASE) and stored lowercase with
// single spaces. Items are numbered by their row id, like todo's, and every statement is scoped
// by the UserScope's user id: another user's item or list is answered exactly like one that
// does not exist. Writes go through the store's write queue and answer once committed; reads
// use the read pool.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "builtins/builtins_internal.h"
#include "builtins/when.h"

namespace parley::capabilities::builtins {
namespace {
namespace lists_detail {

using nlohmann::json;
using storage::Connection;
using storage::WriteAck;

constexpr const char* kCap = "lists";
constexpr size_t kMaxName = 60;
constexpr size_t kMaxText = 500;
constexpr size_t kMaxUnit = 20;
constexpr double kMaxQuantity = 1'000'000;
constexpr int64_t kMaxItemsShown = 200;
constexpr int64_t kMaxListsShown = 100;
constexpr const char* kUsage =
    "/list NAME | /list NAME add [QUANTITY [UNIT]] ITEM | /list NAME done|undone|remove ID | "
    "/list NAME clear | /list NAME delete | /lists";

// Units a command recognises after a leading quantity ("2 kg apples"); any other word after a
// number is the item ("3 lemons"). The tool takes any unit.
constexpr std::array<std::string_view, 21> kUnits{
    "g",     "kg",     "l",       "ml",  "cl",   "oz",  "lb",    "lbs", "pc",   "pcs",  "pack",
    "packs", "bottle", "bottles", "can", "cans", "box", "boxes", "bag", "bags", "dozen"};

bool is_unit(std::string_view word) {
  return std::find(kUnits.begin(), kUnits.end(), normalise_words(word)) != kUnits.end();
}

Unexpected bad(std::string message) {
  return fail(ErrorCode::invalid_argument, fmt::format("{}: {}", kCap, message));
}

struct ListItem {
  int64_t id = 0;
  std::string list;
  std::string text;
  std::optional<double> quantity;
  std::string unit;
  std::optional<int64_t> done_at;
  int64_t created_at = 0;
};

// "2 kg apples", "3 lemons", "milk"
std::string label_of(const ListItem& item) {
  if (!item.quantity) return item.text;
  if (item.unit.empty()) return fmt::format("{} {}", *item.quantity, item.text);
  return fmt::format("{} {} {}", *item.quantity, item.unit, item.text);
}

json to_json(const ListItem& item) {
  return {{"id", item.id},
          {"list", item.list},
          {"text", item.text},
          {"quantity", item.quantity ? json(*item.quantity) : json(nullptr)},
          {"unit", item.unit},
          {"done", item.done_at.has_value()},
          {"created_at", iso_utc(item.created_at)},
          {"done_at", item.done_at ? json(iso_utc(*item.done_at)) : json(nullptr)}};
}

Unexpected no_such_item(int64_t id, const std::optional<std::string>& list) {
  // The same answer whether the id is free or another user's: nothing about others leaks.
  if (list)
    return fail(ErrorCode::not_found, fmt::format("lists: you have no item #{} on {}", id, *list));
  return fail(ErrorCode::not_found, fmt::format("lists: you have no item #{}", id));
}

Unexpected no_such_list(std::string_view name) {
  return fail(ErrorCode::not_found,
              fmt::format("lists: you have no list named '{}' (/lists shows yours)", name));
}

// A quantity as a command writes it: digits with at most one '.', more than zero.
std::optional<double> parse_quantity(std::string_view word) {
  if (word.empty() || word.size() > 12 || word.front() == '.' || word.back() == '.' ||
      std::count(word.begin(), word.end(), '.') > 1 ||
      !std::all_of(word.begin(), word.end(),
                   [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    return std::nullopt;
  }
  double q = 0;
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), q);
  if (ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
  return q;
}

// The list's id and stored name, or nullopt.
Result<std::optional<std::pair<int64_t, std::string>>> find_list(Connection& conn, int64_t user,
                                                                 const std::string& name) {
  auto st = conn.cached("SELECT id, name FROM lists WHERE user_id = ? AND name = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user, name);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<std::pair<int64_t, std::string>>{};
  return std::optional(std::pair{(*st)->column_int64(0), (*st)->column_text(1)});
}

class Lists final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return kCap; }
  [[nodiscard]] std::string_view description() const override {
    return "The user's named lists (groceries, packing, todo, …): add items with a quantity, "
           "show, tick off, remove, clear done items, delete a list.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"shopping", "grocer", "packing", "checklist", "wishlist"};
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
             {"add", "show", "done", "undone", "remove", "clear", "lists", "delete_list"}}}},
          {"list",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxName},
            {"description",
             "list name, e.g. groceries; \"todo\" is the todo list (add creates it; show, clear, "
             "delete_list; optional check for done, undone, remove)"}}},
          {"text",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxText},
            {"description", "the item (add)"}}},
          {"quantity",
           {{"type", "number"},
            {"exclusiveMinimum", 0},
            {"maximum", kMaxQuantity},
            {"description", "how many or how much (add)"}}},
          {"unit",
           {{"type", "string"},
            {"minLength", 1},
            {"maxLength", kMaxUnit},
            {"description", "e.g. kg, l, pcs (add, with quantity)"}}},
          {"id",
           {{"type", "integer"},
            {"minimum", 1},
            {"description", "item number from show (done, undone, remove)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"list", kUsage, "a named list, e.g. /list groceries add 2 kg apples, /list groceries"},
            {"lists", "/lists", "your lists with their open and total items"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    if (command == "lists") {
      if (trim(text).empty()) return json{{"action", "lists"}};
      return bad(fmt::format("usage: {}", kUsage));
    }
    const auto [list, rest] = split_first_word(text);
    if (list.empty()) return json{{"action", "lists"}};
    // Said here rather than by the schema, whose error would name "arguments.list".
    if (utf8_length(list) > kMaxName) {
      return bad(fmt::format("a list's name has at most {} characters", kMaxName));
    }
    const auto [action, arg] = split_first_word(rest);
    json args{{"list", std::string(list)}};
    if ((action.empty() || action == "show") && arg.empty()) {
      args["action"] = "show";
      return args;
    }
    if ((action == "clear" || action == "delete") && arg.empty()) {
      args["action"] = action == "clear" ? "clear" : "delete_list";
      return args;
    }
    if ((action == "done" || action == "undone" || action == "remove") && !arg.empty()) {
      auto id = parse_id(arg, kCap);
      if (!id) return fail(std::move(id).error());
      args["action"] = std::string(action);
      args["id"] = *id;
      return args;
    }
    if (action == "add" && !arg.empty()) {
      args["action"] = "add";
      return parse_item(arg, std::move(args));
    }
    return bad(fmt::format("usage: {}", kUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const auto action = args.at("action").get<std::string>();
    const int64_t now = clock_of(ctx).now_ms();
    if (action == "lists") return done(all_lists(**scope));
    std::optional<std::string> list;
    if (args.contains("list")) {
      list = normalise_words(args.at("list").get<std::string>());
      if (list->empty()) return done(bad("\"list\" needs a name, e.g. groceries"));
    }
    if (action == "done" || action == "undone" || action == "remove") {
      if (!args.contains("id")) {
        return done(bad(fmt::format("{} needs the item's \"id\" (its number in show)", action)));
      }
      return mark(**scope, action, args.at("id").get<int64_t>(), list, now, std::move(done));
    }
    if (!list) return done(bad(fmt::format("{} needs the \"list\" name, e.g. groceries", action)));
    if (action == "show") return done(show(**scope, *list));
    if (action == "add") {
      ListItem item;
      item.text = std::string(trim(args.value("text", std::string())));
      if (item.text.empty()) return done(bad("add needs a non-empty \"text\""));
      if (args.contains("quantity")) item.quantity = args.at("quantity").get<double>();
      item.unit = normalise_words(args.value("unit", std::string()));
      if (!item.unit.empty() && !item.quantity) {
        return done(bad(fmt::format("the unit '{}' needs a \"quantity\"", item.unit)));
      }
      item.created_at = now;
      return add(**scope, *list, std::move(item), std::move(done));
    }
    if (action == "clear") return clear(**scope, *list, std::move(done));
    return delete_list(**scope, *list, std::move(done));
  }

 private:
  // "[QUANTITY [UNIT]] ITEM": "2 kg apples", "500g flour", "3 lemons", "apples".
  static Result<json> parse_item(std::string_view text, json args) {
    const auto [first, rest] = split_first_word(text);
    // A plain double and a flag, not std::optional: GCC 12 at -O1 reports the optional's value
    // "maybe uninitialized" where it is set (a known false positive of -Wmaybe-uninitialized).
    double quantity = 0;
    bool has_quantity = false;
    if (const auto q = parse_quantity(first)) {
      quantity = *q;
      has_quantity = true;
    }
    std::string unit;
    std::string_view item = text;
    if (has_quantity && !rest.empty()) {
      const auto [second, after] = split_first_word(rest);
      if (is_unit(second) && !after.empty()) {
        unit = normalise_words(second);
        item = after;
      } else {
        item = rest;
      }
    } else if (!has_quantity) {
      // A quantity written together with its unit: "500g", "1.5kg".
      const size_t digits = first.find_first_not_of("0123456789.");
      if (digits != std::string_view::npos && digits > 0 && !rest.empty() &&
          is_unit(first.substr(digits))) {
        if (const auto q = parse_quantity(first.substr(0, digits))) {
          quantity = *q;
          has_quantity = true;
          unit = normalise_words(first.substr(digits));
          item = rest;
        }
      }
    } else {
      has_quantity = false;  // a lone number is the item itself
    }
    if (has_quantity && quantity <= 0) {
      return bad(fmt::format("the quantity '{}' must be more than 0", first));
    }
    if (has_quantity && quantity > kMaxQuantity) {
      return bad(fmt::format("the quantity '{}' is too large", first));
    }
    args["text"] = std::string(item);
    if (has_quantity) args["quantity"] = quantity;
    if (!unit.empty()) args["unit"] = unit;
    return args;
  }

  static Result<json> all_lists(const UserScope& scope) {
    json out = json::array();
    std::string text;
    int64_t shown = 0;
    bool more = false;
    {
      auto conn = scope.store().reads().acquire();
      auto st = conn->cached(
          "SELECT l.name, count(i.id), count(i.done_at) FROM lists l "
          "LEFT JOIN list_items i ON i.list_id = l.id AND i.user_id = l.user_id "
          "WHERE l.user_id = ? GROUP BY l.id ORDER BY l.name LIMIT ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all(scope.user_id(), kMaxListsShown + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        if (shown == kMaxListsShown) {
          more = true;
          break;
        }
        ++shown;
        const std::string name = (*st)->column_text(0);
        const int64_t total = (*st)->column_int64(1);
        const int64_t open = total - (*st)->column_int64(2);
        out.push_back({{"name", name}, {"open", open}, {"total", total}});
        text += fmt::format("\n{}: {} open of {}", name, open, total);
      }
    }
    if (out.empty()) {
      text = "You have no lists yet; start one with /list groceries add milk.";
    } else {
      text = "Your lists:" + text;
      if (more) text += fmt::format("\n(only the first {} are shown)", kMaxListsShown);
    }
    return json{{"lists", std::move(out)}, {"truncated", more}, {"text", std::move(text)}};
  }

  static Result<json> show(const UserScope& scope, const std::string& wanted) {
    std::vector<ListItem> items;
    std::string name;
    {
      auto conn = scope.store().reads().acquire();
      auto found = find_list(*conn, scope.user_id(), wanted);
      if (!found) return fail(std::move(found).error());
      if (!*found) return no_such_list(wanted);
      name = (*found)->second;
      auto st = conn->cached(
          "SELECT id, text, quantity, unit, done_at, created_at FROM list_items "
          "WHERE list_id = ? AND user_id = ? ORDER BY done_at IS NOT NULL, id LIMIT ?");
      if (!st) return fail(std::move(st).error());
      (*st)->bind_all((*found)->first, scope.user_id(), kMaxItemsShown + 1);
      for (;;) {
        auto row = (*st)->step();
        if (!row) return fail(std::move(row).error());
        if (!*row) break;
        items.push_back(
            {(*st)->column_int64(0), name, (*st)->column_text(1),
             (*st)->column_is_null(2) ? std::nullopt : std::optional((*st)->column_double(2)),
             (*st)->column_text(3), (*st)->column_opt_int64(4), (*st)->column_int64(5)});
      }
    }
    const bool more = items.size() > static_cast<size_t>(kMaxItemsShown);
    if (more) items.pop_back();
    json out = json::array();
    std::string lines;
    int64_t open = 0;
    for (const auto& item : items) {
      out.push_back(to_json(item));
      if (!item.done_at) ++open;
      lines += fmt::format("\n#{} {}{}", item.id, item.done_at ? "[done] " : "", label_of(item));
    }
    const auto done_count = static_cast<int64_t>(items.size()) - open;
    std::string text = items.empty()
                           ? fmt::format("{} is empty.", name)
                           : fmt::format("{} — {} open, {} done:{}", name, open, done_count, lines);
    if (more) text += fmt::format("\n(only the first {} are shown)", kMaxItemsShown);
    return json{{"list", name},
                {"items", std::move(out)},
                {"open", open},
                {"truncated", more},
                {"text", std::move(text)}};
  }

  void add(const UserScope& scope, std::string wanted, ListItem item, Done done) const {
    auto shared = std::make_shared<ListItem>(std::move(item));
    auto created = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "lists add",
        [shared, created, wanted = std::move(wanted), user](Connection& conn) -> Result<WriteAck> {
          auto found = find_list(conn, user, wanted);
          if (!found) return fail(std::move(found).error());
          int64_t list_id = 0;
          if (*found) {
            list_id = (*found)->first;
            shared->list = (*found)->second;
          } else {
            auto make = conn.cached("INSERT INTO lists(user_id, name, created_at) VALUES (?,?,?)");
            if (!make) return fail(std::move(make).error());
            PARLEY_TRY((*make)->bind_all(user, wanted, shared->created_at).run());
            list_id = conn.last_insert_rowid();
            shared->list = wanted;
            *created = true;
          }
          auto st = conn.cached(
              "INSERT INTO list_items(list_id, user_id, text, quantity, unit, created_at) "
              "VALUES (?,?,?,?,?,?)");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)
                         ->bind_all(list_id, user, shared->text, shared->quantity, shared->unit,
                                    shared->created_at)
                         .run());
          shared->id = conn.last_insert_rowid();
          return WriteAck{shared->id, true};
        },
        [shared, created] {
          return json{{"item", to_json(*shared)},
                      {"created_list", *created},
                      {"text", fmt::format("Added #{} to {}{}: {}", shared->id, shared->list,
                                           *created ? " (a new list)" : "", label_of(*shared))}};
        },
        std::move(done));
  }

  // done, undone or remove of one item, on `list` when one is named.
  void mark(const UserScope& scope, std::string action, int64_t id, std::optional<std::string> list,
            int64_t now, Done done) const {
    auto shared = std::make_shared<ListItem>();
    auto unchanged = std::make_shared<bool>(false);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "lists " + action,
        [shared, unchanged, action, id, list, user, now](Connection& conn) -> Result<WriteAck> {
          auto get = conn.cached(
              "SELECT i.text, i.quantity, i.unit, i.done_at, i.created_at, l.name "
              "FROM list_items i JOIN lists l ON l.id = i.list_id AND l.user_id = i.user_id "
              "WHERE i.id = ? AND i.user_id = ? AND (? IS NULL OR l.name = ?)");
          if (!get) return fail(std::move(get).error());
          (*get)->bind_all(id, user, list, list);
          auto row = (*get)->step();
          if (!row) return fail(std::move(row).error());
          if (!*row) return no_such_item(id, list);
          *shared = ListItem{
              id,
              (*get)->column_text(5),
              (*get)->column_text(0),
              (*get)->column_is_null(1) ? std::nullopt : std::optional((*get)->column_double(1)),
              (*get)->column_text(2),
              (*get)->column_opt_int64(3),
              (*get)->column_int64(4)};
          (*get)->reset();
          if (action == "remove") {
            auto del = conn.cached("DELETE FROM list_items WHERE id = ? AND user_id = ?");
            if (!del) return fail(std::move(del).error());
            PARLEY_TRY((*del)->bind_all(id, user).run());
            return WriteAck{id, false};
          }
          const bool to_done = action == "done";
          *unchanged = shared->done_at.has_value() == to_done;
          if (*unchanged) return WriteAck{id, false};
          auto set = conn.cached("UPDATE list_items SET done_at = ? WHERE id = ? AND user_id = ?");
          if (!set) return fail(std::move(set).error());
          const std::optional<int64_t> done_at = to_done ? std::optional(now) : std::nullopt;
          PARLEY_TRY((*set)->bind_all(done_at, id, user).run());
          shared->done_at = done_at;
          return WriteAck{id, false};
        },
        [shared, unchanged, action] {
          std::string text;
          const std::string what =
              fmt::format("#{} on {}: {}", shared->id, shared->list, label_of(*shared));
          if (action == "remove") {
            text = "Removed " + what;
          } else if (*unchanged) {
            text = fmt::format("{} was already {}", what, action == "done" ? "done" : "open");
          } else {
            text = (action == "done" ? "Done " : "Open again ") + what;
          }
          return json{{"item", to_json(*shared)}, {"text", std::move(text)}};
        },
        std::move(done));
  }

  void clear(const UserScope& scope, std::string wanted, Done done) const {
    auto list = std::make_shared<std::string>();
    auto cleared = std::make_shared<int64_t>(0);
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "lists clear",
        [list, cleared, wanted = std::move(wanted), user](Connection& conn) -> Result<WriteAck> {
          auto found = find_list(conn, user, wanted);
          if (!found) return fail(std::move(found).error());
          if (!*found) return no_such_list(wanted);
          *list = (*found)->second;
          auto st = conn.cached(
              "DELETE FROM list_items WHERE list_id = ? AND user_id = ? AND done_at IS NOT NULL");
          if (!st) return fail(std::move(st).error());
          PARLEY_TRY((*st)->bind_all((*found)->first, user).run());
          *cleared = conn.changes();
          return WriteAck{(*found)->first, false};
        },
        [list, cleared] {
          return json{
              {"list", *list},
              {"cleared", *cleared},
              {"text", *cleared == 0 ? fmt::format("{} has no done items to clear.", *list)
                                     : fmt::format("Cleared {} done item{} from {}.", *cleared,
                                                   *cleared == 1 ? "" : "s", *list)}};
        },
        std::move(done));
  }

  void delete_list(const UserScope& scope, std::string wanted, Done done) const {
    auto list = std::make_shared<std::string>();
    auto counts = std::make_shared<std::pair<int64_t, int64_t>>();  // items, open ones
    const int64_t user = scope.user_id();
    submit_write(
        scope.store(), name(), "lists delete_list",
        [list, counts, wanted = std::move(wanted), user](Connection& conn) -> Result<WriteAck> {
          auto found = find_list(conn, user, wanted);
          if (!found) return fail(std::move(found).error());
          if (!*found) return no_such_list(wanted);
          *list = (*found)->second;
          const int64_t list_id = (*found)->first;
          auto count = conn.cached(
              "SELECT count(*), count(*) - count(done_at) FROM list_items "
              "WHERE list_id = ? AND user_id = ?");
          if (!count) return fail(std::move(count).error());
          (*count)->bind_all(list_id, user);
          auto row = (*count)->step();
          if (!row) return fail(std::move(row).error());
          *counts = {(*count)->column_int64(0), (*count)->column_int64(1)};
          (*count)->reset();
          auto items = conn.cached("DELETE FROM list_items WHERE list_id = ? AND user_id = ?");
          if (!items) return fail(std::move(items).error());
          PARLEY_TRY((*items)->bind_all(list_id, user).run());
          auto gone = conn.cached("DELETE FROM lists WHERE id = ? AND user_id = ?");
          if (!gone) return fail(std::move(gone).error());
          PARLEY_TRY((*gone)->bind_all(list_id, user).run());
          return WriteAck{list_id, false};
        },
        [list, counts] {
          const auto [items, open] = *counts;
          return json{
              {"list", *list},
              {"deleted_items", items},
              {"deleted_open", open},
              {"text", items == 0 ? fmt::format("Deleted the list {} (it was empty).", *list)
                                  : fmt::format("Deleted the list {} and its {} item{} ({} open).",
                                                *list, items, items == 1 ? "" : "s", open)}};
        },
        std::move(done));
  }
};

}  // namespace lists_detail
}  // namespace

std::unique_ptr<Capability> make_lists() { return std::make_unique<lists_detail::Lists>(); }

}  // namespace parley::capabilities::builtins
