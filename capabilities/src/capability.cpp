#include "parley/capabilities/capability.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <future>
#include <memory>

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
    if (auto st = validate(parameters(), args); !st.ok()) {
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
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

Capability* Registry::find_command(std::string_view command) const {
  auto it = by_command_.find(command);
  return it == by_command_.end() ? nullptr : it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [n, _] : by_name_) out.push_back(n);
  return out;
}

}  // namespace parley::capabilities
