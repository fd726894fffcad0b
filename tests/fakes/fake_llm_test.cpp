// Tests of the fake LLM endpoint itself, through plain blocking curl: the shapes of normal
// replies (JSON and SSE, read back with parley's own SseParser and ChatStream), every fault
// (error statuses, malformed JSON, delays, stalls, truncation, in-band errors), keep-alive,
// request recording, the handler, and a destructor that does not wait for stalled clients.
#include "fakes/fake_llm.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fakes/fake_embedder.h"
#include "parley/bot/clients/llm/chat_stream.h"
#include "parley/bot/clients/llm/sse_parser.h"
#include "support/http_client.h"

namespace parley::fakes {
namespace fake_llm_test {

using bot::llm::ChatStream;
using bot::llm::SseEvent;
using bot::llm::SseParser;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// --- A blocking curl client -------------------------------------------------------------------

using parley::testing::CurlEasy;
using parley::testing::HttpRequest;
using parley::testing::make_curl_easy;
using Response = parley::testing::HttpResult;

struct Call {
  std::string path = "/chat/completions";  // after base_url()
  std::string method = "POST";
  std::string body;
  std::vector<std::string> headers;
  milliseconds timeout{10'000};
};

// Runs one request on `h` (reusing its connection when it can; null: a handle of its own).
Response perform(CURL* h, const FakeLlmServer& server, const Call& call) {
  HttpRequest request;
  request.method = call.method;
  request.url = server.base_url() + call.path;
  if (call.method == "POST") request.body = call.body;
  request.headers = {"Content-Type: application/json"};
  request.headers.insert(request.headers.end(), call.headers.begin(), call.headers.end());
  request.timeout = call.timeout;
  return parley::testing::http_perform(request, h);
}

Response perform(const FakeLlmServer& server, const Call& call) {
  return perform(nullptr, server, call);
}

std::string chat_body(bool stream, bool include_usage = false, std::string user = "hi") {
  json body = {{"model", "test/model"},
               {"messages", json::array({{{"role", "user"}, {"content", std::move(user)}}})}};
  if (stream) body["stream"] = true;
  if (include_usage) body["stream_options"] = {{"include_usage", true}};
  return body.dump();
}

FakeUsage tokens(int64_t prompt, int64_t completion) {
  FakeUsage u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  return u;
}

Call chat(bool stream, bool include_usage = false) {
  Call c;
  c.body = chat_body(stream, include_usage);
  return c;
}

// --- Reading a stream back with parley's parser -------------------------------------------------

struct Parsed {
  std::vector<std::string> data;  // every event's data, in order
  ChatStream chat;
  bool chat_ok = true;  // no error from ChatStream
  std::string chat_error;
  size_t comments = 0;
  bool clean = false;
};

Parsed parse_stream(const std::string& body) {
  Parsed p;
  SseParser parser;
  const auto status = parser.feed(body, [&](SseEvent&& e) {
    p.data.push_back(e.data);
    if (!p.chat_ok) return;
    if (auto s = p.chat.on_data(e.data); !s.ok()) {
      p.chat_ok = false;
      p.chat_error = s.error().message;
    }
  });
  EXPECT_TRUE(status.ok());
  p.comments = parser.comments();
  p.clean = parser.finish_clean();
  return p;
}

// The chunk objects of a stream (not "[DONE]").
std::vector<json> chunks_of(const Parsed& p) {
  std::vector<json> out;
  for (const auto& d : p.data) {
    if (d != "[DONE]") out.push_back(json::parse(d));
  }
  return out;
}

class CurlGlobal : public ::testing::Environment {
 public:
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void TearDown() override { curl_global_cleanup(); }
};
const auto* const kCurl = ::testing::AddGlobalTestEnvironment(new CurlGlobal);

// --- Normal replies -----------------------------------------------------------------------------

TEST(FakeLlm, NonStreamTextReplyHasTheChatCompletionShape) {
  FakeLlmServer server;
  server.push(FakeReply::text("Hello there", tokens(12, 5)));
  const auto r = perform(server, chat(false));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], r.headers.at("x-generation-id"));
  EXPECT_EQ(j["model"], "test/model") << "echoes the request's model";
  EXPECT_TRUE(j["created"].is_number_integer());
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Hello there");
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 12);
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], 17);
  EXPECT_FALSE(j["usage"].contains("cost"));
  EXPECT_FALSE(j["usage"].contains("prompt_tokens_details"));
  EXPECT_FALSE(j["usage"].contains("completion_tokens_details"));
}

TEST(FakeLlm, NonStreamToolCallsModelGenerationIdAndHeaders) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::tools(
      {{"call_1", "get_weather", R"({"city":"Oslo"})"}, {"call_2", "get_time", "{not json"}});
  reply.model = "other/model";
  reply.generation_id = "gen-scripted";
  reply.headers["X-Extra"] = "yes";
  reply.usage->cost = 0.0042;
  reply.usage->cached_tokens = 3;
  reply.usage->reasoning_tokens = 2;
  server.push(reply);
  const auto r = perform(server, chat(false));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.headers.at("x-generation-id"), "gen-scripted");
  EXPECT_EQ(r.headers.at("x-extra"), "yes");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["id"], "gen-scripted");
  EXPECT_EQ(j["model"], "other/model");
  const json& message = j["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null()) << "tool calls without text: content null";
  ASSERT_EQ(message["tool_calls"].size(), 2u);
  EXPECT_EQ(message["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(message["tool_calls"][0]["type"], "function");
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], R"({"city":"Oslo"})");
  EXPECT_EQ(message["tool_calls"][1]["function"]["arguments"], "{not json") << "sent as-is";
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_DOUBLE_EQ(j["usage"]["cost"].get<double>(), 0.0042);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
  EXPECT_EQ(j["usage"]["completion_tokens_details"]["reasoning_tokens"], 2);
}

TEST(FakeLlm, StreamParsesBackToTheSameContentWithoutCuttingCharacters) {
  FakeLlmServer server;
  const std::string text = "Héllo wörld — ünïcode ✓ and 🦀 crabs";
  FakeReply reply = FakeReply::text(text);
  reply.delta_chars = 3;
  server.push(reply);
  const auto r = perform(server, chat(true));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(r.headers.at("transfer-encoding"), "chunked");
  EXPECT_EQ(r.body.rfind(": OPENROUTER PROCESSING\n\n", 0), 0u) << "the comment comes first";

  const Parsed p = parse_stream(r.body);
  ASSERT_TRUE(p.chat_ok) << p.chat_error;
  EXPECT_TRUE(p.clean);
  EXPECT_EQ(p.comments, 1u);
  EXPECT_TRUE(p.chat.done());
  EXPECT_EQ(p.data.back(), "[DONE]");
  const auto& result = p.chat.result();
  EXPECT_EQ(result.content, text);
  EXPECT_EQ(result.id, r.headers.at("x-generation-id"));
  EXPECT_EQ(result.model, "test/model");
  EXPECT_EQ(result.finish_reason, "stop");
  ASSERT_TRUE(result.usage) << "usage_in_stream: OpenRouter sends it unasked";
  EXPECT_EQ(result.usage->prompt_tokens, 12);

  const auto chunks = chunks_of(p);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  for (const auto& c : chunks) EXPECT_EQ(c["object"], "chat.completion.chunk");
  // Deltas of 3 characters: 35 characters -> 12 content deltas.
  size_t content_deltas = 0;
  for (const auto& c : chunks) {
    if (c["choices"].empty()) continue;
    const auto& delta = c["choices"][0]["delta"];
    if (!delta.contains("content") || delta["content"] == "") continue;
    ++content_deltas;
    EXPECT_LE(delta["content"].get<std::string>().size(), 3u * 4u);
  }
  EXPECT_EQ(content_deltas, 12u);
  // The usage comes last, in a chunk without choices.
  EXPECT_TRUE(chunks.back()["choices"].empty());
  EXPECT_TRUE(chunks.back()["usage"].is_object());
}

TEST(FakeLlm, StreamToolCallsAssembleByIndexAndByIdWithReusedIndexZero) {
  for (const bool reuse : {false, true}) {
    SCOPED_TRACE(reuse ? "reuse_index0" : "distinct indexes");
    FakeLlmServer server;
    FakeReply reply = FakeReply::tools({{"call_1", "get_weather", R"({"city":"Zürich"})"},
                                        {"call_2", "get_time", R"({"tz":"Europe/Oslo"})"}});
    reply.reuse_index0 = reuse;
    server.push(reply);
    const auto r = perform(server, chat(true));
    ASSERT_EQ(r.code, CURLE_OK);
    const Parsed p = parse_stream(r.body);
    ASSERT_TRUE(p.chat_ok) << p.chat_error;
    const auto& result = p.chat.result();
    ASSERT_EQ(result.tool_calls.size(), 2u);
    EXPECT_EQ(result.tool_calls[0].id, "call_1");
    EXPECT_EQ(result.tool_calls[0].name, "get_weather");
    EXPECT_EQ(result.tool_calls[0].arguments, R"({"city":"Zürich"})");
    EXPECT_EQ(result.tool_calls[1].id, "call_2");
    EXPECT_EQ(result.tool_calls[1].name, "get_time");
    EXPECT_EQ(result.tool_calls[1].arguments, R"({"tz":"Europe/Oslo"})");
    EXPECT_EQ(result.finish_reason, "tool_calls");

    // The wire shape: id and name first with empty arguments, then fragments with only index.
    std::vector<json> deltas;
    for (const auto& c : chunks_of(p)) {
      if (c["choices"].empty()) continue;
      const auto& delta = c["choices"][0]["delta"];
      if (delta.contains("tool_calls")) deltas.push_back(delta["tool_calls"][0]);
    }
    ASSERT_EQ(deltas.size(), 6u);
    EXPECT_EQ(deltas[0]["id"], "call_1");
    EXPECT_EQ(deltas[0]["type"], "function");
    EXPECT_EQ(deltas[0]["function"]["arguments"], "");
    EXPECT_FALSE(deltas[1].contains("id"));
    EXPECT_FALSE(deltas[1]["function"].contains("name"));
    EXPECT_EQ(deltas[3]["id"], "call_2");
    EXPECT_EQ(deltas[3]["index"], reuse ? 0 : 1);
    EXPECT_EQ(deltas[5]["index"], reuse ? 0 : 1);
  }
}

TEST(FakeLlm, StreamUsageWithAndWithoutCost) {
  FakeLlmServer server;
  FakeUsage with_cost = tokens(100, 20);
  with_cost.cached_tokens = 64;
  with_cost.reasoning_tokens = 7;
  with_cost.cost = 0.00123;
  server.push(FakeReply::text("a", with_cost));
  FakeReply openai = FakeReply::text("b", tokens(5, 1));
  openai.usage_in_stream = false;
  server.push(openai);  // asked for with include_usage: sent, without cost
  server.push(openai);  // not asked for: none
  FakeReply none = FakeReply::text("c");
  none.usage.reset();
  server.push(none);  // asked for, but the reply has none

  {
    const Parsed p = parse_stream(perform(server, chat(true)).body);
    ASSERT_TRUE(p.chat_ok) << p.chat_error;
    const auto& u = p.chat.result().usage;
    ASSERT_TRUE(u);
    EXPECT_EQ(u->prompt_tokens, 100);
    EXPECT_EQ(u->completion_tokens, 20);
    EXPECT_EQ(u->cached_tokens, 64);
    EXPECT_EQ(u->reasoning_tokens, 7);
    ASSERT_TRUE(u->cost_usd);
    EXPECT_DOUBLE_EQ(*u->cost_usd, 0.00123);
    for (const auto& c : chunks_of(p)) {
      if (!c["choices"].empty()) {
        EXPECT_FALSE(c.contains("usage")) << "not asked: no null usage";
      }
    }
  }
  {
    const Parsed p = parse_stream(perform(server, chat(true, /*include_usage=*/true)).body);
    ASSERT_TRUE(p.chat_ok) << p.chat_error;
    const auto& u = p.chat.result().usage;
    ASSERT_TRUE(u);
    EXPECT_EQ(u->prompt_tokens, 5);
    EXPECT_FALSE(u->cost_usd);
    const auto chunks = chunks_of(p);
    for (size_t i = 0; i + 1 < chunks.size(); ++i) {
      EXPECT_TRUE(chunks[i]["usage"].is_null()) << "OpenAI style: null until the last chunk";
    }
  }
  {
    const Parsed p = parse_stream(perform(server, chat(true)).body);
    ASSERT_TRUE(p.chat_ok) << p.chat_error;
    EXPECT_TRUE(p.chat.done());
    EXPECT_FALSE(p.chat.result().usage);
  }
  {
    const Parsed p = parse_stream(perform(server, chat(true, /*include_usage=*/true)).body);
    ASSERT_TRUE(p.chat_ok) << p.chat_error;
    EXPECT_TRUE(p.chat.done());
    EXPECT_FALSE(p.chat.result().usage);
  }
}

TEST(FakeLlm, SevenByteWritesStillParse) {
  FakeLlmServer server;
  const std::string text = "Split across reads: lines, events and ünïcode alike.";
  FakeReply reply = FakeReply::tools({{"call_1", "f", R"({"x":1})"}});
  reply.content = text;
  reply.write_bytes = 7;
  reply.interval = milliseconds(1);
  server.push(reply);
  const auto r = perform(server, chat(true));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_GT(r.writes, 2u);
  const Parsed p = parse_stream(r.body);
  ASSERT_TRUE(p.chat_ok) << p.chat_error;
  EXPECT_TRUE(p.clean);
  EXPECT_TRUE(p.chat.done());
  EXPECT_EQ(p.chat.result().content, text);
  ASSERT_EQ(p.chat.result().tool_calls.size(), 1u);
  EXPECT_EQ(p.chat.result().tool_calls[0].arguments, R"({"x":1})");
}

TEST(FakeLlm, CrlfLineEndingsParse) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::text("crlf lines");
  reply.crlf = true;
  server.push(reply);
  const auto r = perform(server, chat(true));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_NE(r.body.find("\r\n\r\n"), std::string::npos);
  const Parsed p = parse_stream(r.body);
  ASSERT_TRUE(p.chat_ok) << p.chat_error;
  EXPECT_TRUE(p.chat.done());
  EXPECT_EQ(p.chat.result().content, "crlf lines");
}

// --- Faults -----------------------------------------------------------------------------------

TEST(FakeLlm, RateLimitedWithRetryAfter) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::error(429, 7);
  reply.error_message = "slow down";
  server.push(reply);
  server.push(FakeReply::error(429, 3));
  const auto r = perform(server, chat(false));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers.at("retry-after"), "7");
  EXPECT_TRUE(r.headers.count("x-generation-id"));
  const json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], 429);
  EXPECT_EQ(j["error"]["message"], "slow down");

  const auto streamed = perform(server, chat(true));
  EXPECT_EQ(streamed.status, 429) << "an error before generation is not streamed";
  EXPECT_EQ(streamed.headers.at("retry-after"), "3");
  EXPECT_EQ(json::parse(streamed.body)["error"]["code"], 429);
}

TEST(FakeLlm, OutOfCredits) {
  FakeLlmServer server;
  server.push(FakeReply::error(402));
  const auto r = perform(server, chat(false));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 402);
  EXPECT_FALSE(r.headers.count("retry-after"));
  const json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], 402);
  EXPECT_EQ(j["error"]["message"], "scripted error");
}

TEST(FakeLlm, MalformedBody) {
  FakeLlmServer server;
  server.push(FakeReply::malformed());
  const auto r = perform(server, chat(false));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"choices\": [");
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
}

TEST(FakeLlm, DelayBeforeHeadersHoldsUpOnlyItsOwnConnection) {
  FakeLlmServer server;
  server.set_handler([](const RecordedRequest& req) -> std::optional<FakeReply> {
    FakeReply reply = FakeReply::text("done");
    if (req.json["messages"][0]["content"] == "slow")
      reply.delay_before_headers = milliseconds(800);
    return reply;
  });
  Response slow;
  std::thread t([&] {
    Call call;
    call.body = chat_body(false, false, "slow");
    slow = perform(server, call);
  });
  while (server.request_count() == 0) std::this_thread::sleep_for(milliseconds(1));
  const auto fast = perform(server, chat(false));
  t.join();
  ASSERT_EQ(fast.code, CURLE_OK);
  ASSERT_EQ(slow.code, CURLE_OK);
  EXPECT_EQ(slow.status, 200);
  EXPECT_GE(slow.elapsed, milliseconds(800));
  EXPECT_LT(fast.elapsed, milliseconds(500)) << "a delayed reply blocked another connection";
}

TEST(FakeLlm, StallAfterEventsTripsTheClientsTimeout) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::text("stalls after two events");
  reply.stall_after_events = 2;
  reply.stall = milliseconds(20'000);
  server.push(reply);
  // A total timeout rather than CURLOPT_LOW_SPEED_*: curl averages the speed over about 5 s,
  // which would make this test take 6 s.
  Call call = chat(true);
  call.timeout = milliseconds(1000);
  const auto r = perform(server, call);
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_LT(r.elapsed, milliseconds(5000));
  EXPECT_EQ(r.status, 200) << "headers and the first events came before the stall";
  const Parsed p = parse_stream(r.body);
  EXPECT_EQ(p.data.size(), 2u) << "exactly the events before the stall";
  EXPECT_FALSE(p.chat.done());
}

TEST(FakeLlm, TruncatedStreamIsAnErrorForCurl) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::text("this stream is cut short");
  reply.truncate_after_events = 3;
  server.push(reply);
  const auto r = perform(server, chat(true));
  EXPECT_TRUE(r.code == CURLE_PARTIAL_FILE || r.code == CURLE_RECV_ERROR)
      << curl_easy_strerror(r.code);
  const Parsed p = parse_stream(r.body);
  EXPECT_EQ(p.data.size(), 3u);
  EXPECT_FALSE(p.chat.done());
  EXPECT_FALSE(p.chat.result().usage) << "a stream cut short never sends usage";
}

TEST(FakeLlm, InBandErrorEventAfterHttp200) {
  FakeLlmServer server;
  FakeReply reply = FakeReply::text("partial text then an error");
  reply.error_event_after_events = 2;
  reply.error_event_code = 502;
  reply.error_message = "provider disconnected";
  server.push(reply);
  const auto r = perform(server, chat(true));
  ASSERT_EQ(r.code, CURLE_OK) << "the HTTP stream itself ends properly";
  EXPECT_EQ(r.status, 200);
  const Parsed p = parse_stream(r.body);
  EXPECT_FALSE(p.chat_ok);
  ASSERT_TRUE(p.chat.in_band_error());
  EXPECT_EQ(p.chat.in_band_error()->code, 502);
  EXPECT_EQ(p.chat.in_band_error()->message, "provider disconnected");
  EXPECT_EQ(p.chat.result().content, "part") << "what came before the error is kept";
  EXPECT_EQ(p.data.size(), 3u);
  EXPECT_NE(p.data.back(), "[DONE]");
  EXPECT_FALSE(p.chat.done());
}

// --- Connections, recording, routing -------------------------------------------------------------

TEST(FakeLlm, KeepAliveReusesOneConnection) {
  FakeLlmServer server;
  CurlEasy h = make_curl_easy();
  const auto first = perform(h.get(), server, chat(false));
  const auto second = perform(h.get(), server, chat(true));
  const auto third = perform(h.get(), server, chat(false));
  EXPECT_EQ(first.code, CURLE_OK);
  EXPECT_EQ(second.code, CURLE_OK);
  EXPECT_EQ(third.code, CURLE_OK);
  EXPECT_EQ(json::parse(third.body)["choices"][0]["message"]["content"], "ok");
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.open_connections(), 1u);
  h.reset();
  for (int i = 0; i < 1000 && server.open_connections() != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_EQ(server.open_connections(), 0u);
}

TEST(FakeLlm, RecordsRequestsWithLowerCasedHeadersAndParsedJson) {
  FakeLlmServer server;
  Call call = chat(false);
  call.headers = {"Authorization: Bearer sk-test", "X-Title: parley-test",
                  "HTTP-Referer: https://example.org"};
  const auto before = Clock::now();
  ASSERT_EQ(perform(server, call).code, CURLE_OK);
  call.body = "not json";
  ASSERT_EQ(perform(server, call).code, CURLE_OK);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v1/chat/completions");
  EXPECT_EQ(r.headers.at("authorization"), "Bearer sk-test");
  EXPECT_EQ(r.headers.at("x-title"), "parley-test");
  EXPECT_EQ(r.headers.at("http-referer"), "https://example.org");
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.body, chat_body(false));
  EXPECT_EQ(r.json["model"], "test/model");
  EXPECT_EQ(r.json["messages"][0]["content"], "hi");
  EXPECT_GE(r.received, before);
  EXPECT_TRUE(requests[1].json.is_discarded());
  EXPECT_EQ(requests[1].body, "not json");
}

TEST(FakeLlm, ScriptedRepliesFirstThenHandlerThenDefault) {
  FakeLlmServer::Options options;
  options.default_reply = FakeReply::text("default");
  FakeLlmServer server(options);
  server.push(FakeReply::text("scripted"));
  std::atomic<int> handler_calls{0};
  server.set_handler([&](const RecordedRequest& req) -> std::optional<FakeReply> {
    ++handler_calls;
    if (req.json["messages"][0]["content"] == "handled") return FakeReply::text("from handler");
    return std::nullopt;
  });
  auto content_for = [&](const std::string& user) {
    Call call;
    call.body = chat_body(false, false, user);
    const auto r = perform(server, call);
    return json::parse(r.body)["choices"][0]["message"]["content"].get<std::string>();
  };
  EXPECT_EQ(content_for("handled"), "scripted") << "the queue comes before the handler";
  EXPECT_EQ(handler_calls, 0);
  EXPECT_EQ(content_for("handled"), "from handler");
  EXPECT_EQ(content_for("other"), "default");
  EXPECT_EQ(handler_calls, 2);
}

Call embeddings(json body) {
  Call c;
  c.path = "/embeddings";
  c.body = body.dump();
  return c;
}

std::vector<float> floats(const json& embedding) { return embedding.get<std::vector<float>>(); }

TEST(FakeLlm, EmbeddingsAreTheFakeEmbedderVectorsInInputOrder) {
  FakeLlmServer server;
  const json body = {{"model", "emb/model"},
                     {"input", {"Alice likes green tea", "Bob plays chess"}},
                     {"dimensions", 64},
                     {"encoding_format", "float"}};
  const auto r = perform(server, embeddings(body));
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "emb/model");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(floats(j["data"][0]["embedding"]), fake_embedding("Alice likes green tea", 64));
  EXPECT_EQ(floats(j["data"][1]["embedding"]), fake_embedding("Bob plays chess", 64));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4 + 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 4 + 3);
  EXPECT_FALSE(j["usage"].contains("cost"));
  // Recorded like chat completions.
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/v1/embeddings");
  EXPECT_EQ(server.requests()[0].json["dimensions"], 64);

  // The same request, the same answer; one string input; 512 dimensions when none are asked.
  EXPECT_EQ(perform(server, embeddings(body)).body, r.body);
  const auto single = json::parse(
      perform(server, embeddings({{"model", "m"}, {"input", "Alice likes green tea"}})).body);
  ASSERT_EQ(single["data"].size(), 1u);
  EXPECT_EQ(single["data"][0]["embedding"].size(), static_cast<size_t>(kFakeEmbeddingDims));
}

TEST(FakeLlm, EmbeddingsRefuseWhatRealServersRefuse) {
  FakeLlmServer server;
  const std::vector<json> bad = {
      {{"model", "m"}},
      {{"model", "m"}, {"input", json::array()}},
      {{"model", "m"}, {"input", {"ok", ""}}},
      {{"model", "m"}, {"input", {"ok", 3}}},
      {{"model", "m"}, {"input", "ok"}, {"dimensions", 0}},
      {{"model", "m"}, {"input", "ok"}, {"dimensions", "64"}},
      {{"model", "m"}, {"input", "ok"}, {"encoding_format", "base64"}},
      {{"input", "ok"}},
  };
  for (const auto& body : bad) {
    SCOPED_TRACE(body.dump());
    const auto r = perform(server, embeddings(body));
    ASSERT_EQ(r.code, CURLE_OK);
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(json::parse(r.body)["error"]["message"].is_string());
  }
}

TEST(FakeLlm, EmbeddingsCanBeScripted) {
  FakeLlmServer server;
  const json body = {{"model", "m"}, {"input", {"one", "two", "three"}}, {"dimensions", 8}};
  server.push(FakeReply::error(429, 3));
  FakeReply bad;
  bad.raw_body = R"({"data": [{"index": 0, "embedding": [1, 2]}]})";
  server.push(bad);
  FakeReply shaped;
  shaped.reverse_embeddings = true;
  shaped.model = "answered/model";
  shaped.usage->cost = 0.00001;
  server.push(shaped);
  FakeReply no_usage;
  no_usage.usage.reset();
  server.push(no_usage);
  // The handler is asked when nothing is queued; nullopt leaves the computed vectors.
  server.set_handler([](const RecordedRequest& req) -> std::optional<FakeReply> {
    if (req.json["input"] == "fail") return FakeReply::error(500);
    return std::nullopt;
  });

  const auto limited = perform(server, embeddings(body));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers.at("retry-after"), "3");
  EXPECT_EQ(json::parse(limited.body)["error"]["code"], 429);

  EXPECT_EQ(perform(server, embeddings(body)).body, bad.raw_body);

  const json reversed = json::parse(perform(server, embeddings(body)).body);
  EXPECT_EQ(reversed["data"][0]["index"], 2);
  EXPECT_EQ(floats(reversed["data"][0]["embedding"]), fake_embedding("three", 8));
  EXPECT_EQ(reversed["model"], "answered/model");
  EXPECT_DOUBLE_EQ(reversed["usage"]["cost"].get<double>(), 0.00001);

  EXPECT_FALSE(json::parse(perform(server, embeddings(body)).body).contains("usage"));

  EXPECT_EQ(perform(server, embeddings({{"model", "m"}, {"input", "fail"}})).status, 500);
  const json computed = json::parse(perform(server, embeddings(body)).body);
  EXPECT_EQ(floats(computed["data"][1]["embedding"]), fake_embedding("two", 8));
  EXPECT_EQ(server.request_count(), 6u);
}

TEST(FakeLlm, UnknownPathIs404AndModelsAreListed) {
  FakeLlmServer server;
  Call call;
  call.path = "/nowhere";
  call.body = "{}";
  const auto r = perform(server, call);
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], 404);
  EXPECT_EQ(server.request_count(), 0u) << "only chat completions and embeddings are recorded";

  Call models;
  models.path = "/models";
  models.method = "GET";
  const auto m = perform(server, models);
  ASSERT_EQ(m.code, CURLE_OK);
  EXPECT_EQ(m.status, 200);
  const json j = json::parse(m.body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_FALSE(j["data"].empty());
  EXPECT_TRUE(j["data"][0]["id"].is_string());
}

TEST(FakeLlm, DestructorReturnsPromptlyWithStalledConnectionsOpen) {
  for (const bool mid_stream : {true, false}) {
    SCOPED_TRACE(mid_stream ? "stalled mid-stream" : "delayed before headers");
    auto server = std::make_unique<FakeLlmServer>();
    FakeReply reply = FakeReply::text("never finished");
    if (mid_stream) {
      reply.stall_after_events = 1;
      reply.stall = milliseconds(60'000);
    } else {
      reply.delay_before_headers = milliseconds(60'000);
    }
    server->push(reply);
    Response r;
    std::thread client([&] {
      Call call = chat(true);
      call.timeout = milliseconds(30'000);
      r = perform(*server, call);
    });
    while (server->request_count() == 0) std::this_thread::sleep_for(milliseconds(1));
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_EQ(server->open_connections(), 1u);
    const auto start = Clock::now();
    server.reset();
    EXPECT_LT(Clock::now() - start, milliseconds(1000));
    client.join();
    EXPECT_NE(r.code, CURLE_OK);
    EXPECT_LT(r.elapsed, milliseconds(5000)) << "the client saw its connection closed";
  }
}

}  // namespace fake_llm_test
}  // namespace parley::fakes
