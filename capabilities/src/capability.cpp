#include "parley/capabilities/capability.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>

namespace parley::capabilities {

Result<nlohmann::json> Capability::invoke(const InvokeContext& ctx,
                                          const nlohmann::json& args) noexcept {
  try {
    if (!args.is_object()) {
      return fail(
          ErrorCode::invalid_argument,
          fmt::format("{}: arguments must be a JSON object, got {}", name(), args.type_name()));
    }
    return invoke_(ctx, args);
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, fmt::format("{}: failed: {}", name(), e.what()));
  } catch (...) {
    return fail(ErrorCode::internal, fmt::format("{}: failed with an unknown exception", name()));
  }
}

namespace {
bool valid_name(std::string_view n) {
  return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
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
  by_name_.emplace(name, std::move(capability));
  return {};
}

Capability* Registry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [n, _] : by_name_) out.push_back(n);
  return out;
}

}  // namespace parley::capabilities
