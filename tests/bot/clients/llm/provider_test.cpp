// Providers, roles and the environment overrides (resolve_llm).
#include "parley/bot/clients/llm/provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace parley::bot::llm {
namespace provider_test {

using ::testing::HasSubstr;

EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Provider, NothingSetIsNotConfiguredAndSaysHowToConfigure) {
  const auto r = resolve_llm({}, env({}));
  EXPECT_FALSE(r.configured());
  EXPECT_THAT(r.not_configured, HasSubstr("OPENROUTER_API_KEY"));
  EXPECT_THAT(r.not_configured, HasSubstr("OPENAI_API_KEY"));
  EXPECT_THAT(r.not_configured, HasSubstr("PARLEY_LLM_BASE_URL"));
  EXPECT_THAT(r.not_configured, HasSubstr("PARLEY_LLM_MODEL"));
}

TEST(Provider, OpenRouterKeyTalksToOpenRouterWithItsDefaultModel) {
  const auto r = resolve_llm({}, env({{"OPENROUTER_API_KEY", "sk-or-1"}}));
  ASSERT_TRUE(r.configured()) << r.not_configured;
  EXPECT_EQ(r.default_provider, "openrouter");
  const auto& p = r.providers.at("openrouter");
  EXPECT_EQ(p.config.base_url, "https://openrouter.ai/api/v1");
  EXPECT_EQ(p.api_key, "sk-or-1");
  EXPECT_EQ(p.key_source, "OPENROUTER_API_KEY");
  EXPECT_EQ(p.config.headers.at("X-Title"), "parley");
  ASSERT_EQ(r.roles.at("smart").size(), 1u);
  EXPECT_EQ(r.roles.at("smart")[0].model, "openai/gpt-4o-mini");
  EXPECT_EQ(r.roles.at("fast")[0].provider, "openrouter");
}

TEST(Provider, OnlyAnOpenAiKeyPicksOpenAi) {
  const auto r = resolve_llm({}, env({{"OPENAI_API_KEY", "sk-oa"}}));
  ASSERT_TRUE(r.configured()) << r.not_configured;
  EXPECT_EQ(r.default_provider, "openai");
  EXPECT_EQ(r.providers.at("openai").config.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(r.roles.at("smart")[0].model, "gpt-4o-mini");
}

TEST(Provider, BaseUrlAndModelFromTheEnvironmentNeedNoKey) {
  const auto r = resolve_llm({}, env({{"PARLEY_LLM_BASE_URL", "http://127.0.0.1:11434/v1/"},
                                      {"PARLEY_LLM_MODEL", "llama3.1:8b"}}));
  ASSERT_TRUE(r.configured()) << r.not_configured;
  const auto& p = r.providers.at(r.default_provider);
  EXPECT_EQ(p.config.base_url, "http://127.0.0.1:11434/v1");  // trailing slash dropped
  EXPECT_TRUE(p.api_key.empty());
  EXPECT_EQ(r.roles.at("smart")[0].model, "llama3.1:8b");
  EXPECT_EQ(r.roles.at("fast")[0].model, "llama3.1:8b");
}

TEST(Provider, BaseUrlWithoutAModelAsksForOne) {
  const auto r = resolve_llm({}, env({{"PARLEY_LLM_BASE_URL", "http://127.0.0.1:8080/v1"}}));
  EXPECT_FALSE(r.configured());
  EXPECT_THAT(r.not_configured, HasSubstr("PARLEY_LLM_MODEL"));
}

TEST(Provider, ParleyKeyOverridesTheDefaultProvidersKey) {
  const auto r = resolve_llm({}, env({{"OPENROUTER_API_KEY", "a"}, {"PARLEY_LLM_API_KEY", "b"}}));
  EXPECT_EQ(r.providers.at("openrouter").api_key, "b");
  EXPECT_EQ(r.providers.at("openrouter").key_source, "PARLEY_LLM_API_KEY");
}

TEST(Provider, ConfiguredRolesKeepTheirOrderAndProviders) {
  LlmSettings s;
  s.providers["local"] = ProviderConfig{"local", "http://127.0.0.1:11434/v1", "", {}};
  s.roles["smart"] = {ModelRef{"", "anthropic/claude-sonnet-4"}, ModelRef{"local", "llama3:8b"}};
  s.model_options["llama3:8b"] = {{"temperature", 0.2}};
  const auto r = resolve_llm(s, env({{"OPENROUTER_API_KEY", "k"}}));
  ASSERT_TRUE(r.configured()) << r.not_configured;
  const auto& smart = r.roles.at("smart");
  ASSERT_EQ(smart.size(), 2u);
  EXPECT_EQ(smart[0].provider, "openrouter");
  EXPECT_EQ(smart[1].provider, "local");
  EXPECT_EQ(smart[1].options["temperature"], 0.2);
}

TEST(Provider, ModelOverrideReplacesEveryRole) {
  LlmSettings s;
  s.roles["smart"] = {ModelRef{"", "a"}, ModelRef{"", "b"}};
  s.roles["cheap"] = {ModelRef{"", "c"}};
  const auto r = resolve_llm(s, env({{"OPENROUTER_API_KEY", "k"}, {"PARLEY_LLM_MODEL", "m"}}));
  EXPECT_EQ(r.roles.at("smart").size(), 1u);
  EXPECT_EQ(r.roles.at("smart")[0].model, "m");
  EXPECT_EQ(r.roles.at("cheap")[0].model, "m");
}

TEST(Provider, ModelOverrideLeavesTheEmbedRoleAlone) {
  LlmSettings s;
  s.roles["smart"] = {ModelRef{"", "a"}};
  s.roles["embed"] = {ModelRef{"local", "nomic-embed-text"}, ModelRef{"", "emb"}};
  s.providers["local"] = ProviderConfig{"local", "http://127.0.0.1:11434/v1", "", {}};
  const auto r = resolve_llm(s, env({{"OPENROUTER_API_KEY", "k"}, {"PARLEY_LLM_MODEL", "m"}}));
  EXPECT_EQ(r.roles.at("smart")[0].model, "m");
  ASSERT_EQ(r.roles.at("embed").size(), 2u) << "a chat model cannot answer embeddings";
  EXPECT_EQ(r.roles.at("embed")[0].provider, "local");
  EXPECT_EQ(r.roles.at("embed")[0].model, "nomic-embed-text");
  EXPECT_EQ(r.roles.at("embed")[1].provider, "openrouter");
}

TEST(Provider, EndpointForMessagesDropsSchemeAndCredentials) {
  EXPECT_EQ(endpoint_for_messages("https://openrouter.ai/api/v1"), "openrouter.ai/api/v1");
  EXPECT_EQ(endpoint_for_messages("http://user:secret@host:1/v1?key=abc"), "host:1/v1");
}

}  // namespace provider_test
}  // namespace parley::bot::llm
