// account: everything parley keeps about the caller, as one JSON file (/export), and the
// deletion of all of it (/forget everything, confirmed) — through storage's UserData, which
// finds the caller's rows from the schema (every table with their user id, the rows hanging off
// those, their messages), so that what a later capability keeps is exported and forgotten too.
//
// Both are the user's own acts: typed as commands, never run because a model asked (a model
// that calls this tool is told to ask the user to type the command). Deletion asks once and
// runs when the user repeats the command with "confirm".
#include <vector>

#include "builtins/builtins_internal.h"
#include "parley/storage/user_data.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

constexpr const char* kAccountUsage = "/export | /forget everything [confirm]";

class Account final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "account"; }
  [[nodiscard]] std::string_view description() const override {
    return "Export or delete everything kept about the user (only when the user types /export "
           "or /forget everything).";
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"action"}},
            {"properties",
             {{"action", {{"type", "string"}, {"enum", {"export", "forget_everything"}}}},
              {"confirm",
               {{"type", "boolean"},
                {"default", false},
                {"description", "the user confirmed the deletion (forget_everything)"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::unsafe, false, false}; }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {{"export", "/export", "everything I keep about you, as one JSON file"},
            {"forget everything", "/forget everything",
             "delete everything I keep about you (asks you to confirm first)"}};
  }
  [[nodiscard]] Result<json> parse_command(std::string_view command,
                                           std::string_view text) const override {
    text = trim(text);
    if (command == "export" && text.empty()) return json{{"action", "export"}};
    if (command == "forget everything" && (text.empty() || text == "confirm")) {
      return json{{"action", "forget_everything"}, {"confirm", text == "confirm"}};
    }
    return fail(ErrorCode::invalid_argument, fmt::format("account: usage: {}", kAccountUsage));
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    const auto action = args.at("action").get<std::string>();
    if (!ctx.direct) {
      return done(fail(ErrorCode::permission_denied,
                       fmt::format("account: only the user can ask for this: tell them to type "
                                   "{}",
                                   action == "export" ? "/export" : "/forget everything")));
    }
    auto scope = scope_of(ctx, name());
    if (!scope) return done(fail(std::move(scope).error()));
    const UserScope& who = **scope;
    if (action == "export") return done(export_all(who, clock_of(ctx).now_ms()));
    if (!args.value("confirm", false)) {
      return done(json{
          {"confirmed", false},
          {"text",
           "This deletes everything I keep about you, for good: memories, notes, lists, "
           "reminders, journal, mood, habits, goals, decisions, expenses, events, and the "
           "messages of our conversations (your own words in group conversations). Only the "
           "account itself and its usage ledger (tokens and cost, no text) stay. /export first "
           "if you want a copy. To go ahead, type: /forget everything confirm"}});
    }
    who.store().user_data().erase_user(
        who.user_id(), [done = std::move(done)](Result<storage::ErasedCounts> erased) {
          if (!erased) {
            Error e = std::move(erased).error();
            e.message = "account: " + e.message;
            return done(fail(std::move(e)));
          }
          int64_t total = 0;
          json counts = json::object();
          for (const auto& [table, n] : *erased) {
            counts[table] = n;
            total += n;
          }
          done(json{{"confirmed", true},
                    {"erased", std::move(counts)},
                    {"text", fmt::format("Done: I deleted everything I kept about you ({} "
                                         "records). We start from nothing.",
                                         total)}});
        });
  }

 private:
  static Result<json> export_all(const UserScope& who, int64_t now_ms) {
    auto doc = who.store().user_data().export_user(who.user_id());
    if (!doc) {
      Error e = std::move(doc).error();
      e.message = "account: " + e.message;
      return fail(std::move(e));
    }
    std::vector<std::string> parts;
    for (const auto& [table, rows] : (*doc)["records"].items()) {
      parts.push_back(fmt::format("{} {}", rows.size(), table));
    }
    size_t messages = 0;
    for (const auto& c : (*doc)["conversations"]) messages += c["messages"].size();
    const std::string filename =
        fmt::format("parley-export-{}.json", iso_utc(now_ms).substr(0, 10));
    std::string text = fmt::format(
        "Everything I keep about you is ready as {}: {} messages in {} conversations{}{}.",
        filename, messages, (*doc)["conversations"].size(), parts.empty() ? "" : ", ",
        fmt::join(parts, ", "));
    return json{{"text", std::move(text)},
                {"attachments", json::array({{{"filename", filename},
                                              {"media_type", "application/json"},
                                              {"text", doc->dump(2)}}})}};
  }
};

}  // namespace

std::unique_ptr<Capability> make_account() { return std::make_unique<Account>(); }

}  // namespace parley::capabilities::builtins
