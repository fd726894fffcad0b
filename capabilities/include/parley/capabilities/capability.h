// Capability: the plugin interface for tools the LLM (or a /command) can call, and the
// Registry that holds them. Modelled on spdlog's sink: the public invoke() is final and takes
// care of argument shape and errors, then calls the protected virtual invoke_().
//
// Capabilities know nothing of channels; they reach the network and the clock only through
// interfaces that bot/ implements. Thread safety: invoke() may be called concurrently; an
// implementation that keeps mutable state guards it itself. The Registry is filled at start-up
// (explicit registration from main) and read-only afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/result.h"

namespace parley::capabilities {

struct InvokeContext {
  int64_t user_id = 0;
  int64_t conversation_id = 0;
  std::string channel;
};

class Capability {
 public:
  virtual ~Capability() = default;

  // A lowercase name of letters, digits, '_' or '-' (the tool name and the /command).
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::string_view description() const = 0;
  // JSON Schema of the arguments object.
  [[nodiscard]] virtual nlohmann::json parameters() const = 0;

  // Calls invoke_() with `args`, which must be a JSON object. Never throws: an exception from
  // the implementation becomes an internal error naming the capability.
  Result<nlohmann::json> invoke(const InvokeContext& ctx, const nlohmann::json& args) noexcept;

 protected:
  // NOLINTNEXTLINE(readability-identifier-naming): the spdlog sink_it_ convention
  virtual Result<nlohmann::json> invoke_(const InvokeContext& ctx, const nlohmann::json& args) = 0;
};

class Registry {
 public:
  // Rejects an invalid or duplicate name (invalid_argument / already_exists).
  Status add(std::unique_ptr<Capability> capability);
  [[nodiscard]] Capability* find(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> names() const;
  [[nodiscard]] size_t size() const { return by_name_.size(); }

 private:
  std::map<std::string, std::unique_ptr<Capability>, std::less<>> by_name_;
};

}  // namespace parley::capabilities
