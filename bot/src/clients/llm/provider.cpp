#include "parley/bot/clients/llm/provider.h"

#include <cstdlib>

#include "parley/bot/clients/llm/embeddings.h"

namespace parley::bot::llm {

namespace {

constexpr const char* kOpenRouterDefaultModel = "openai/gpt-4o-mini";
constexpr const char* kOpenAiDefaultModel = "gpt-4o-mini";

std::optional<std::string> non_empty(const EnvLookup& env, const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): parley never writes the environment (no setenv)
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::map<std::string, ProviderConfig> builtin_providers() {
  return {
      {"openrouter",
       {"openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        {{"HTTP-Referer", "https://github.com/parley-bot/parley"}, {"X-Title", "parley"}}}},
      {"openai", {"openai", "https://api.openai.com/v1", "OPENAI_API_KEY", {}}},
  };
}

std::string endpoint_for_messages(const std::string& base_url) {
  std::string s = base_url;
  if (auto p = s.find("://"); p != std::string::npos) s = s.substr(p + 3);
  if (auto at = s.find('@'); at != std::string::npos && at < s.find('/')) s = s.substr(at + 1);
  if (auto q = s.find('?'); q != std::string::npos) s.resize(q);
  return s;
}

ResolvedLlm resolve_llm(const LlmSettings& settings, const EnvLookup& env) {
  ResolvedLlm out;
  out.timeouts = settings.timeouts;
  out.retry = settings.retry;
  out.default_role = settings.default_role;

  auto providers = builtin_providers();
  for (const auto& [name, p] : settings.providers) {
    ProviderConfig merged = p;
    merged.name = name;
    providers[name] = std::move(merged);
  }

  // The default provider.
  std::string def = settings.provider;
  if (def.empty()) {
    def = "openrouter";
    if (!non_empty(env, "OPENROUTER_API_KEY") && !non_empty(env, "PARLEY_LLM_API_KEY") &&
        non_empty(env, "OPENAI_API_KEY")) {
      def = "openai";
    }
  }
  out.default_provider = def;
  const auto base_override = non_empty(env, "PARLEY_LLM_BASE_URL");
  const auto key_override = non_empty(env, "PARLEY_LLM_API_KEY");
  if (base_override) providers[def].base_url = *base_override;
  providers[def].name = def;

  for (auto& [name, p] : providers) {
    ResolvedProvider r;
    r.config = p;
    r.config.base_url = trim_slash(p.base_url);
    if (name == def && key_override) {
      r.api_key = *key_override;
      r.key_source = "PARLEY_LLM_API_KEY";
    } else if (auto key = non_empty(env, p.api_key_env)) {
      r.api_key = *key;
      r.key_source = p.api_key_env;
    }
    out.providers.emplace(name, std::move(r));
  }

  auto options_for = [&](const std::string& model) {
    auto it = settings.model_options.find(model);
    return it == settings.model_options.end() ? nlohmann::json::object() : it->second;
  };
  auto resolve_ref = [&](const ModelRef& ref) {
    const std::string provider = ref.provider.empty() ? def : ref.provider;
    return ResolvedModel{provider, ref.model, options_for(ref.model)};
  };

  const auto model_override = non_empty(env, "PARLEY_LLM_MODEL");
  if (model_override) {
    std::vector<ResolvedModel> only{
        ResolvedModel{def, *model_override, options_for(*model_override)}};
    for (const auto& [role, refs] : settings.roles) {
      // A chat model cannot answer embeddings: the embed role keeps its own models.
      if (role == kEmbedRole) {
        for (const auto& ref : refs) out.roles[role].push_back(resolve_ref(ref));
      } else {
        out.roles[role] = only;
      }
    }
    for (const char* role : {"fast", "smart"}) out.roles[role] = only;
    out.roles[out.default_role] = only;
  } else if (!settings.roles.empty()) {
    for (const auto& [role, refs] : settings.roles) {
      auto& list = out.roles[role];
      for (const auto& ref : refs) list.push_back(resolve_ref(ref));
    }
  } else if (!base_override && (def == "openrouter" || def == "openai")) {
    const std::string model = def == "openrouter" ? kOpenRouterDefaultModel : kOpenAiDefaultModel;
    for (const char* role : {"fast", "smart"}) {
      out.roles[role] = {ResolvedModel{def, model, options_for(model)}};
    }
  }

  const auto& dp = out.providers.at(def);
  if (dp.config.base_url.empty()) {
    out.not_configured = "The LLM provider '" + def + "' has no base_url: set llm.providers." +
                         def + ".base_url in parley.yaml or PARLEY_LLM_BASE_URL.";
  } else if (dp.api_key.empty() && !dp.config.api_key_env.empty() && !base_override) {
    out.not_configured =
        "No LLM is configured, so parley answers /commands only. To talk to a model: set "
        "OPENROUTER_API_KEY (OpenRouter, default model " +
        std::string(kOpenRouterDefaultModel) +
        ") or OPENAI_API_KEY; or point PARLEY_LLM_BASE_URL at any OpenAI-compatible server "
        "(Ollama: http://127.0.0.1:11434/v1, llama.cpp: http://127.0.0.1:8080/v1, vLLM: "
        "http://127.0.0.1:8000/v1) and name its model in PARLEY_LLM_MODEL; or configure "
        "`llm:` in parley.yaml. Then restart parley.";
  } else if (out.roles.find(out.default_role) == out.roles.end() ||
             out.roles.at(out.default_role).empty()) {
    out.not_configured = "No model is configured for the default role '" + out.default_role +
                         "': set PARLEY_LLM_MODEL (e.g. llama3.1:8b for Ollama) or list models "
                         "under llm.roles." +
                         out.default_role + " in parley.yaml.";
  }
  for (const auto& [role, models] : out.roles) {
    for (const auto& m : models) {
      if (out.providers.find(m.provider) == out.providers.end() && out.not_configured.empty()) {
        out.not_configured = "llm.roles." + role + ": model '" + m.model +
                             "' names the unknown provider '" + m.provider + "'";
      }
    }
  }
  return out;
}

}  // namespace parley::bot::llm
