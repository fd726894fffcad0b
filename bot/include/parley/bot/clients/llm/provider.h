// LLM providers and model roles: what parley.yaml's `llm:` section says, and how the
// environment completes it.
//
// A provider is an OpenAI-compatible endpoint: base URL, the *name* of the environment
// variable that holds its key (never the key), extra headers. A role (`fast`, `smart`, …) is
// an ordered list of models, each on a provider: the first is asked first, the others are the
// fallbacks. Built in: `openrouter` (OPENROUTER_API_KEY) and `openai` (OPENAI_API_KEY).
//
// Environment overrides (resolve_llm), in this order:
//   PARLEY_LLM_BASE_URL  the default provider's base URL (any OpenAI-compatible server)
//   PARLEY_LLM_API_KEY   the default provider's key (instead of its api_key_env variable)
//   PARLEY_LLM_MODEL     every role asks this one model on the default provider
// Without `llm.provider` in the file, the default provider is openrouter, or openai when only
// OPENAI_API_KEY is set.
//
// Value types; resolve_llm reads the environment through the function it is given.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::bot::llm {

struct ProviderConfig {
  std::string name;
  std::string base_url;     // e.g. https://openrouter.ai/api/v1 (no trailing slash)
  std::string api_key_env;  // empty: no key (local servers)
  std::map<std::string, std::string> headers;  // e.g. HTTP-Referer, X-Title
};

struct ModelRef {
  std::string provider;  // empty: the default provider
  std::string model;
};

struct Timeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds first_byte{60'000};  // request start → first response byte
  std::chrono::milliseconds idle{30'000};        // longest silence inside a stream
  std::chrono::milliseconds call{120'000};       // one HTTP attempt, whole
  std::chrono::milliseconds turn{180'000};       // default deadline of one call() with retries
};

struct RetryPolicy {
  int max_attempts = 3;  // per model, for 429 / 5xx / transport failures
  std::chrono::milliseconds base_backoff{500};
  std::chrono::milliseconds max_backoff{20'000};  // also caps a Retry-After we will wait for
};

struct LlmSettings {
  std::string provider;  // default provider; empty: chosen from the environment
  std::map<std::string, ProviderConfig> providers;  // merged over the built-in ones
  std::map<std::string, std::vector<ModelRef>> roles;
  std::string default_role = "smart";
  std::map<std::string, nlohmann::json> model_options;  // model name → request fields
  Timeouts timeouts;
  RetryPolicy retry;
};

// A provider ready to call: the key is read from the environment here.
struct ResolvedProvider {
  ProviderConfig config;
  std::string api_key;     // secret: never logged, never in an error message
  std::string key_source;  // the variable it came from, for messages ("" when none)
};

struct ResolvedModel {
  std::string provider;
  std::string model;
  nlohmann::json options = nlohmann::json::object();
};

struct ResolvedLlm {
  std::map<std::string, ResolvedProvider> providers;
  std::map<std::string, std::vector<ResolvedModel>> roles;
  std::string default_provider;
  std::string default_role;
  Timeouts timeouts;
  RetryPolicy retry;
  // Empty when calls can be made; else why not, in one paragraph a user can act on.
  std::string not_configured;

  [[nodiscard]] bool configured() const { return not_configured.empty(); }
};

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

std::map<std::string, ProviderConfig> builtin_providers();

ResolvedLlm resolve_llm(const LlmSettings& settings, const EnvLookup& env);

// "https://openrouter.ai/api/v1" → "openrouter.ai/api/v1": for messages (never carries a key).
std::string endpoint_for_messages(const std::string& base_url);

}  // namespace parley::bot::llm
