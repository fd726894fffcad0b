// Capability: the plugin interface for what the bot can do for people — called by the LLM as a
// tool, or directly as a `/command` — and the Registry that holds them. Modelled on spdlog's
// sink: the public invoke() is final and takes care of the argument check (against the
// capability's JSON Schema), the deadline and errors, then calls the protected virtual
// invoke_() (synchronous) or invoke_async_() (asynchronous-capable).
//
// Capabilities know nothing of channels; they reach storage through a UserScope bound to the
// caller (never a user id taken from arguments), and the network and the clock only through
// the Services interfaces that bot/ implements.
//
// Thread safety: invoke() may be called concurrently; an implementation that keeps mutable
// state guards it itself. The Registry's fixed capabilities are registered at start-up
// (explicit registration, see builtins.h) and read-only afterwards; groups (set_group) change
// while it runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/capabilities/http_fetcher.h"

namespace parley::storage {
class Store;
}

namespace parley::capabilities {

enum class SideEffects {
  none,        // reads only
  idempotent,  // writes, but doing it twice is the same as once
  unsafe,      // never retried automatically (sends, deletes, pays)
};
std::string_view to_string(SideEffects s) noexcept;

struct Flags {
  SideEffects side_effects = SideEffects::none;
  bool admin_only = false;  // denied to everyone not listed in the configuration
  bool needs_network = false;
};

// Who is asking, as the bot loop resolved it.
struct Caller {
  int64_t user_id = 0;
  std::string name;
  std::string time_zone = "UTC";  // IANA name
  bool admin = false;
  std::vector<std::string> roles;
};

// Storage scoped to one user: everything a capability reads or writes about "the user" goes
// through this, so no argument can reach another user's data.
class UserScope {
 public:
  UserScope(storage::Store& store, int64_t user_id) : store_(store), user_id_(user_id) {}
  [[nodiscard]] storage::Store& store() const { return store_; }
  [[nodiscard]] int64_t user_id() const { return user_id_; }

 private:
  storage::Store& store_;
  int64_t user_id_;
};

// What bot/ provides to capabilities (network access, usage figures, …). Interfaces are added
// here as capabilities need them; a null pointer means "not available in this process".
class MoneyDesk;  // money_desk.h

struct Services {
  const Clock* clock = nullptr;       // wall clock (time zones, reminders)
  const HttpFetcher* http = nullptr;  // outgoing GETs (web_fetch); see http_fetcher.h
  const MoneyDesk* money = nullptr;   // credits, budgets, alerts (/credits, /alerts)
  // Empty when this process fires reminders; otherwise where they arrive instead ("in the
  // terminal of the `parley run` (pid 123) serving this database"), said when one is set.
  std::string reminders_fire_elsewhere{};
  // Told when a user's memory was added or rewritten (its vector for recall is made then);
  // empty: nobody listens.
  std::function<void(int64_t user_id, int64_t memory_id, const std::string& text)> memory_written{};
  // Told (from any thread) when a reminder was set, so that the scheduler looks again rather
  // than at its next wake (which may be 30 s away: a reminder due sooner, or a wall clock that
  // jumped); empty: nobody listens.
  std::function<void()> reminders_changed{};
  // Whether a reminder set from `channel` can reach its user: false for a channel that only
  // answers requests (HTTP), where it would fire into nothing; empty: every channel can.
  std::function<bool(const std::string& channel)> reminders_reach{};
};

using Deadline = std::chrono::steady_clock::time_point;

struct InvokeContext {
  Caller caller;
  int64_t conversation_id = 0;
  std::string channel;  // for messages and access rules only: capabilities stay channel-blind
  Deadline deadline = Deadline::max();
  nlohmann::json settings = nlohmann::json::object();  // validated, defaults filled in
  const UserScope* data = nullptr;  // null: this capability has no storage access here
  const Services* services = nullptr;
  // Typed by the user as a /command (true), or asked for by the model in a turn (false).
  bool direct = false;
};

// A `/command` a capability answers to, e.g. {"remember", "/remember TEXT", "…"}. A name may be
// two words ("forget everything"): `/forget everything …` then reaches it rather than the
// capability answering to /forget.
struct CommandSpec {
  std::string name;
  std::string usage;
  std::string help;  // one line
};

using Done = std::function<void(Result<nlohmann::json>)>;

class Capability {
 public:
  virtual ~Capability() = default;

  // A lowercase name of letters, digits, '_' or '-' (the tool name and the /command).
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::string_view description() const = 0;  // one line
  // JSON Schema of the arguments object (the subset json_schema.h checks). A pure function of
  // the capability: schema() builds it once.
  [[nodiscard]] virtual nlohmann::json parameters() const = 0;
  // parameters(), built on first use and shared read-only: the argument check of every call
  // and every turn's tool definition read it without building or copying it again.
  [[nodiscard]] const std::shared_ptr<const nlohmann::json>& schema() const;
  // Something a user of the capability derives from schema() once (the model's form of it,
  // serialised: bot/tool_selection.h), built by `derive` on first use and kept with the
  // capability. One derivation per capability: every caller must pass the same one.
  template <class T>
  [[nodiscard]] std::shared_ptr<const T> derived_schema(T (*derive)(const nlohmann::json&)) const {
    std::call_once(derived_once_, [&] { derived_ = std::make_shared<const T>(derive(*schema())); });
    return std::static_pointer_cast<const T>(derived_);
  }
  [[nodiscard]] virtual Flags flags() const { return {}; }
  // Words or word stems that make this capability relevant to a message, beyond its name and
  // command names: the bot offers a model only the relevant tools (see bot/tool_selection.h).
  // Case-insensitive; a stem matches the words it begins ("remind": "Reminders"), a keyword
  // with other characters than letters, digits and spaces ("+", "://") matches anywhere in the
  // text. By default none.
  [[nodiscard]] virtual std::vector<std::string> keywords() const { return {}; }
  // JSON Schema of this capability's own settings in capabilities.yaml, with defaults.
  [[nodiscard]] virtual nlohmann::json settings_schema() const {
    return {{"type", "object"}, {"additionalProperties", false}};
  }
  // The /commands it answers to; by default one, named like the capability.
  [[nodiscard]] virtual std::vector<CommandSpec> commands() const;
  // Turns "/command text" into arguments. By default: {"text": text}.
  [[nodiscard]] virtual Result<nlohmann::json> parse_command(std::string_view command,
                                                             std::string_view text) const;

  // Checks `args` against parameters() (invalid_argument naming the field), then runs the
  // capability. `done` is called exactly once, possibly before invoke() returns. Never throws:
  // an exception from the implementation becomes an internal error naming the capability. A
  // call whose deadline has passed is refused with deadline_exceeded.
  void invoke(const InvokeContext& ctx, const nlohmann::json& args, Done done) noexcept;
  // Synchronous convenience (tests, the CLI): waits for invoke()'s result.
  Result<nlohmann::json> invoke(const InvokeContext& ctx, const nlohmann::json& args) noexcept;

 protected:
  // Synchronous implementations override this.
  // NOLINTNEXTLINE(readability-identifier-naming): the spdlog sink_it_ convention
  virtual Result<nlohmann::json> invoke_(const InvokeContext& ctx, const nlohmann::json& args);
  // Asynchronous ones override this instead; the default calls invoke_().
  // NOLINTNEXTLINE(readability-identifier-naming)
  virtual void invoke_async_(const InvokeContext& ctx, const nlohmann::json& args, Done done);

 private:
  mutable std::once_flag schema_once_;
  mutable std::shared_ptr<const nlohmann::json> schema_;
  mutable std::once_flag derived_once_;
  mutable std::shared_ptr<const void> derived_;
};

// What set_group() took and what it left out (a name, why).
struct GroupReport {
  std::vector<std::string> added;
  std::vector<std::pair<std::string, std::string>> refused;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;

  // Rejects an invalid or duplicate name (invalid_argument / already_exists), a command name
  // another capability already answers to, and a parameters() schema json_schema.h cannot
  // check.
  Status add(std::unique_ptr<Capability> capability);
  // Capabilities that come and go while the bot runs (an MCP server's tools), by group: the set
  // of `group` is replaced at once (empty: removed). Readers see the old set or the new one,
  // never a mix, without a lock. Names are "<prefix>.<tool>" (a lowercase prefix; the tool's
  // letters, digits, '_', '-' or '.', at most 64 in all); each capability is checked as add()
  // checks it, and one that fails (or whose name the fixed capabilities or another group
  // hold) is left out with the reason. Group capabilities answer to no /command. A replaced
  // capability stays alive as long as the registry: a call in flight may still hold it.
  // Thread-safe against every reader and other set_group() calls.
  GroupReport set_group(const std::string& group, std::vector<std::unique_ptr<Capability>> caps);

  [[nodiscard]] Capability* find(std::string_view name) const;
  // The capability answering to /command, or null.
  [[nodiscard]] Capability* find_command(std::string_view command) const;
  // The fixed capabilities by name, then the groups' by name.
  [[nodiscard]] std::vector<std::string> names() const;
  [[nodiscard]] size_t size() const;
  // The group `name` belongs to; "" for a fixed capability or an unknown name.
  [[nodiscard]] std::string group_of(std::string_view name) const;

 private:
  struct Groups;
  std::map<std::string, std::unique_ptr<Capability>, std::less<>> by_name_;
  std::map<std::string, Capability*, std::less<>> by_command_;
  std::unique_ptr<Groups> groups_;
};

}  // namespace parley::capabilities
