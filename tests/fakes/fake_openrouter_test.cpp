// Tests of the fake OpenRouter credit endpoints themselves, through plain blocking curl: the
// shapes of /key and /credits, the bearer check, the management-key rule for /credits, scripted
// faults, delays and the request counts.
#include "fakes/fake_openrouter.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/http_client.h"

namespace parley::fakes {
namespace fake_openrouter_test {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kKey = "sk-or-v1-test-key";
constexpr const char* kManagement = "sk-or-v1-management";

using Response = parley::testing::HttpResult;

Response get(const FakeOpenRouter& server, const std::string& path, const std::string& key,
             const char* method = "GET") {
  parley::testing::HttpRequest request;
  request.method = method;
  request.url = server.base_url() + path;
  if (!key.empty()) request.headers.push_back("Authorization: Bearer " + key);
  request.timeout = milliseconds(10'000);
  return parley::testing::http_perform(request);
}

class FakeOpenRouterTest : public ::testing::Test {
 protected:
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }

  static FakeOpenRouter::Options with_management() {
    FakeOpenRouter::Options o;
    o.management_key = kManagement;
    return o;
  }
};

TEST_F(FakeOpenRouterTest, KeyAnswersOpenRoutersShape) {
  FakeOpenRouter server;
  FakeKeyInfo info;
  info.limit = 10;
  info.limit_remaining = 7.25;
  info.usage = 2.75;
  info.usage_daily = 0.5;
  info.usage_weekly = 1.5;
  info.usage_monthly = 2.5;
  server.set_key(info);
  auto r = get(server, "/key", kKey);
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  const json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.body;
  const json& d = j["data"];
  EXPECT_EQ(d["label"], info.label);
  EXPECT_EQ(d["limit"], 10.0);
  EXPECT_EQ(d["limit_remaining"], 7.25);
  EXPECT_TRUE(d["limit_reset"].is_null());
  EXPECT_EQ(d["usage"], 2.75);
  EXPECT_EQ(d["usage_daily"], 0.5);
  EXPECT_EQ(d["usage_weekly"], 1.5);
  EXPECT_EQ(d["usage_monthly"], 2.5);
  EXPECT_EQ(d["is_free_tier"], false);
  EXPECT_EQ(d["is_management_key"], false);

  // The older alias, and a key without a limit: nulls.
  server.set_key(FakeKeyInfo{});
  auto alias = get(server, "/auth/key", kKey);
  EXPECT_EQ(alias.status, 200);
  EXPECT_TRUE(alias.json()["data"]["limit"].is_null());
  EXPECT_TRUE(alias.json()["data"]["limit_remaining"].is_null());
  EXPECT_EQ(server.request_count(OpenRouterEndpoint::key), 2u);
}

TEST_F(FakeOpenRouterTest, BearerKeyIsChecked) {
  FakeOpenRouter server;
  auto none = get(server, "/key", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["code"], 401);
  auto wrong = get(server, "/key", "sk-or-v1-wrong");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(wrong.json()["error"]["message"].is_string());
  const auto recorded = server.requests();
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[0].authorization, "");
  EXPECT_EQ(recorded[1].authorization, "Bearer sk-or-v1-wrong");
  EXPECT_EQ(recorded[1].target, "/api/v1/key");
}

TEST_F(FakeOpenRouterTest, CreditsNeedTheManagementKey) {
  FakeOpenRouter server(with_management());
  server.set_credits({25.5, 3.25});
  auto forbidden = get(server, "/credits", kKey);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(forbidden.json()["error"]["code"], 403);
  auto ok = get(server, "/credits", kManagement);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.json()["data"]["total_credits"], 25.5);
  EXPECT_EQ(ok.json()["data"]["total_usage"], 3.25);
  // The management key may read /key too.
  auto key = get(server, "/key", kManagement);
  EXPECT_EQ(key.status, 200);
  EXPECT_EQ(key.json()["data"]["is_management_key"], true);
  EXPECT_EQ(server.request_count(OpenRouterEndpoint::credits), 2u);

  server.set_credits_need_management_key(false);
  EXPECT_EQ(get(server, "/credits", kKey).status, 200);
}

TEST_F(FakeOpenRouterTest, ScriptedFaultsComeInOrderPerEndpoint) {
  FakeOpenRouter server;
  server.push(OpenRouterEndpoint::key, FakeAnswer::error(500, "boom"));
  server.push(OpenRouterEndpoint::key, FakeAnswer::malformed());
  server.push(OpenRouterEndpoint::key, FakeAnswer::raw(R"({"data": []})"));
  auto first = get(server, "/key", kKey);
  EXPECT_EQ(first.status, 500);
  EXPECT_EQ(first.json()["error"]["message"], "boom");
  auto second = get(server, "/key", kKey);
  EXPECT_EQ(second.status, 200);
  EXPECT_TRUE(second.json().is_discarded());
  auto third = get(server, "/key", kKey);
  EXPECT_TRUE(third.json()["data"].is_array());
  EXPECT_EQ(get(server, "/key", kKey).status, 200);  // the script is used up
  // A fault answers whatever the key.
  server.push(OpenRouterEndpoint::key, FakeAnswer::error(503));
  EXPECT_EQ(get(server, "/key", "").status, 503);
}

TEST_F(FakeOpenRouterTest, DelayedAnswerComesLate) {
  FakeOpenRouter server;
  server.push(OpenRouterEndpoint::key, FakeAnswer::delayed(milliseconds(300)));
  auto r = get(server, "/key", kKey);
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.elapsed, milliseconds(280));
}

TEST_F(FakeOpenRouterTest, UnknownPathsAndMethods) {
  FakeOpenRouter server;
  EXPECT_EQ(get(server, "/models", kKey).status, 404);
  EXPECT_EQ(get(server, "/key", kKey, "POST").status, 405);
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.request_count(OpenRouterEndpoint::credits), 0u);
}

TEST_F(FakeOpenRouterTest, DestructorDoesNotWaitForADelayedAnswer) {
  auto server = std::make_unique<FakeOpenRouter>();
  server->push(OpenRouterEndpoint::key, FakeAnswer::delayed(std::chrono::seconds(30)));
  const auto r = parley::testing::http_get(server->base_url() + "/key", {}, milliseconds(300));
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT);
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace fake_openrouter_test
}  // namespace parley::fakes
