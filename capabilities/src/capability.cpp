#include "parley/capabilities/capability.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <future>
#include <memory>
#include <mutex>

#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {

std::string_view to_string(SideEffects s) noexcept {
  switch (s) {
    case SideEffects::none: return "none";
    case SideEffects::idempotent: return "idempotent";
    case SideEffects::unsafe: return "unsafe";
  }
  return "unsafe";
}

std::vector<CommandSpec> Capability::commands() const {
  return {CommandSpec{std::string(name()), fmt::format("/{} TEXT", name()),
                      std::string(description())}};
}

Result<nlohmann::json> Capability::parse_command(std::string_view /*command*/,
                                                 std::string_view text) const {
  return nlohmann::json{{"text", std::string(text)}};
}

Result<nlohmann::json> Capability::invoke_(const InvokeContext& /*ctx*/,
                                           const nlohmann::json& /*args*/) {
  return fail(ErrorCode::internal,
              fmt::format("{}: implements neither invoke_ nor invoke_async_", name()));
}

// By value: the signature of the virtual, whose overrides keep `done` to call it later.
// NOLINTNEXTLINE(performance-unnecessary-value-param): overrides keep it (see above)
void Capability::invoke_async_(const InvokeContext& ctx, const nlohmann::json& args, Done done) {
  done(invoke_(ctx, args));
}

void Capability::invoke(const InvokeContext& ctx, const nlohmann::json& args, Done done) noexcept {
  // `done` must run exactly once, also when the implementation throws after calling it.
  auto called = std::make_shared<bool>(false);
  auto once = [called, done = std::move(done)](Result<nlohmann::json> r) {
    if (*called) return;
    *called = true;
    done(std::move(r));
  };
  try {
    if (!args.is_object()) {
      once(fail(
          ErrorCode::invalid_argument,
          fmt::format("{}: arguments must be a JSON object, got {}", name(), describe_json(args))));
      return;
    }
    if (std::chrono::steady_clock::now() >= ctx.deadline) {
      once(fail(ErrorCode::deadline_exceeded,
                fmt::format("{}: no time left in this turn to run it", name())));
      return;
    }
    if (auto st = validate(*schema(), args); !st.ok()) {
      once(fail(ErrorCode::invalid_argument,
                fmt::format("{}: invalid arguments: {}", name(), st.error().message)));
      return;
    }
    invoke_async_(ctx, args, once);
  } catch (const std::exception& e) {
    once(fail(ErrorCode::internal, fmt::format("{}: failed: {}", name(), e.what())));
  } catch (...) {
    once(fail(ErrorCode::internal, fmt::format("{}: failed with an unknown exception", name())));
  }
}

const std::shared_ptr<const nlohmann::json>& Capability::schema() const {
  std::call_once(schema_once_,
                 [this] { schema_ = std::make_shared<const nlohmann::json>(parameters()); });
  return schema_;
}

Result<nlohmann::json> Capability::invoke(const InvokeContext& ctx,
                                          const nlohmann::json& args) noexcept {
  try {
    auto promise = std::make_shared<std::promise<Result<nlohmann::json>>>();
    auto future = promise->get_future();
    invoke(ctx, args, [promise](Result<nlohmann::json> r) { promise->set_value(std::move(r)); });
    return future.get();
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, fmt::format("{}: failed: {}", name(), e.what()));
  }
}

namespace {
bool valid_name(std::string_view n) {
  return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A command is one name, or two separated by one space ("forget everything"): a two-word
// command is found before the one-word command its first word names.
bool valid_command(std::string_view n) {
  const size_t space = n.find(' ');
  if (space == std::string_view::npos) return valid_name(n);
  return valid_name(n.substr(0, space)) && valid_name(n.substr(space + 1));
}
}  // namespace

// The groups: an immutable snapshot published whole through one atomic pointer (a reader loads
// it with acquire, no lock, no reference count). Every snapshot and every capability is kept
// until the registry goes, so a reader (or a call in flight) never holds a freed one; they are
// replaced only when a server's tools change, so what is kept stays small.
struct Registry::Groups {
  struct Snapshot {
    std::map<std::string, Capability*, std::less<>> by_name;
    std::map<std::string, std::string, std::less<>> group_of;  // capability → group
    std::map<std::string, std::vector<std::string>, std::less<>> members;
  };
  Groups() : kept{}, current(nullptr) {
    kept.push_back(std::make_unique<const Snapshot>());
    current.store(kept.back().get(), std::memory_order_release);
  }
  std::vector<std::unique_ptr<const Snapshot>> kept;  // writers only (under `writers`)
  std::atomic<const Snapshot*> current;
  std::mutex writers;  // set_group() against set_group(); never taken by a reader
  std::vector<std::unique_ptr<Capability>> owned;
};

Registry::Registry() : groups_(std::make_unique<Groups>()) {}
Registry::~Registry() = default;
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;

namespace {

// "<prefix>.<tool>": a capability name as the prefix, then letters, digits, '_', '-' or '.'.
bool valid_group_name(std::string_view n) {
  const size_t dot = n.find('.');
  if (dot == std::string_view::npos || dot + 1 >= n.size() || n.size() > 64) return false;
  if (!valid_name(n.substr(0, dot))) return false;
  return std::all_of(n.begin() + static_cast<std::ptrdiff_t>(dot) + 1, n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

}  // namespace

GroupReport Registry::set_group(const std::string& group,
                                std::vector<std::unique_ptr<Capability>> caps) {
  GroupReport report;
  const std::lock_guard lock(groups_->writers);
  const Groups::Snapshot* old = groups_->current.load(std::memory_order_acquire);
  auto next = std::make_unique<Groups::Snapshot>(*old);
  if (auto it = next->members.find(group); it != next->members.end()) {
    for (const auto& n : it->second) {
      next->by_name.erase(n);
      next->group_of.erase(n);
    }
    next->members.erase(it);
  }
  std::vector<std::string> members;
  for (auto& capability : caps) {
    if (!capability) continue;
    const std::string name(capability->name());
    std::string why;
    if (!valid_group_name(name)) {
      why =
          "the name must be <prefix>.<tool>: a lowercase prefix, then letters, digits, '_', "
          "'-' or '.', at most 64 in all";
    } else if (by_name_.count(name) != 0 || next->by_name.count(name) != 0) {
      why = fmt::format("the name is already taken{}", next->group_of.count(name) != 0
                                                           ? " by group " + next->group_of[name]
                                                           : std::string());
    } else if (auto st = check_schema(capability->parameters()); !st.ok()) {
      why = fmt::format("its input schema cannot be checked: {}", st.error().message);
    }
    if (!why.empty()) {
      report.refused.emplace_back(name, std::move(why));
      continue;
    }
    next->by_name.emplace(name, capability.get());
    next->group_of.emplace(name, group);
    members.push_back(name);
    report.added.push_back(name);
    groups_->owned.push_back(std::move(capability));
  }
  if (!members.empty()) next->members.emplace(group, std::move(members));
  groups_->current.store(next.get(), std::memory_order_release);
  groups_->kept.push_back(std::move(next));
  return report;
}

std::string Registry::group_of(std::string_view name) const {
  const auto snap = groups_->current.load(std::memory_order_acquire);
  const auto it = snap->group_of.find(name);
  return it == snap->group_of.end() ? std::string() : it->second;
}

size_t Registry::size() const {
  return by_name_.size() + groups_->current.load(std::memory_order_acquire)->by_name.size();
}

Status Registry::add(std::unique_ptr<Capability> capability) {
  if (!capability) return fail(ErrorCode::invalid_argument, "null capability");
  const std::string name(capability->name());
  if (!valid_name(name)) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("capability name '{}' must be 1-64 of a-z, 0-9, '_' or '-'", name));
  }
  if (by_name_.count(name) != 0) {
    return fail(ErrorCode::already_exists, fmt::format("capability '{}' registered twice", name));
  }
  if (auto st = check_schema(capability->parameters()); !st.ok()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("capability '{}': parameters: {}", name, st.error().message));
  }
  if (auto st = check_schema(capability->settings_schema()); !st.ok()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("capability '{}': settings: {}", name, st.error().message));
  }
  const auto commands = capability->commands();
  for (const auto& c : commands) {
    if (!valid_command(c.name)) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("capability '{}': command name '{}' is invalid", name, c.name));
    }
    if (auto it = by_command_.find(c.name); it != by_command_.end()) {
      return fail(ErrorCode::already_exists,
                  fmt::format("capability '{}': /{} is already answered by '{}'", name, c.name,
                              it->second->name()));
    }
  }
  Capability* raw = capability.get();
  by_name_.emplace(name, std::move(capability));
  for (const auto& c : commands) by_command_.emplace(c.name, raw);
  return {};
}

Capability* Registry::find(std::string_view name) const {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second.get();
  const auto snap = groups_->current.load(std::memory_order_acquire);
  const auto it = snap->by_name.find(name);
  return it == snap->by_name.end() ? nullptr : it->second;
}

Capability* Registry::find_command(std::string_view command) const {
  auto it = by_command_.find(command);
  return it == by_command_.end() ? nullptr : it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  const auto snap = groups_->current.load(std::memory_order_acquire);
  out.reserve(by_name_.size() + snap->by_name.size());
  for (const auto& [n, _] : by_name_) out.push_back(n);
  for (const auto& [n, _] : snap->by_name) out.push_back(n);
  return out;
}

}  // namespace parley::capabilities
