// `parley run` end to end, beyond the basics of run_test: bursts merged into one turn, the
// reply streamed as server-sent events, the access policy (allowlist, one polite refusal, a
// rate limit), replies owed from before a restart sent once (and not those whose send may have
// happened), and a SIGKILL in the middle of a turn.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_llm.h"
#include "fakes/http_site.h"
#include "parley/storage/store.h"
#include "served_bot.h"
#include "support/run_parley.h"
#include "support/temp_dir.h"

namespace serve_test {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::http_request;
using parley::testing::ServedBot;
using parley::testing::TempDir;
using ::testing::HasSubstr;

std::vector<std::string> user_texts(const parley::fakes::RecordedRequest& r) {
  std::vector<std::string> out;
  for (const auto& m : r.json["messages"]) {
    if (m["role"] == "user") out.push_back(m["content"]);
  }
  return out;
}

std::string message(const std::string& conversation, const std::string& user,
                    const std::string& text, const std::string& id = "") {
  json j = {{"conversation", conversation}, {"user", user}, {"text", text}};
  if (!id.empty()) j["id"] = id;
  return j.dump();
}

std::unique_ptr<parley::storage::Store> open_store(const TempDir& dir) {
  return parley::testing::open_bot_store(dir.path());
}

TEST(Serve, ABurstArrivingDuringATurnIsAnsweredByOneTurn) {
  TempDir dir;
  FakeLlmServer fake;
  std::atomic<int> calls{0};
  fake.set_handler([&](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    const auto texts = user_texts(r);
    auto reply = FakeReply::text("answer " + std::to_string(++calls) + " to " + texts.back());
    if (texts.back() == "first") reply.delay_before_headers = std::chrono::milliseconds(600);
    return reply;
  });
  ServedBot bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";

  parley::testing::Http first;
  parley::testing::Http second;
  parley::testing::Http third;
  std::thread t1([&] { first = http_request(url, message("burst", "ann", "first")); });
  std::this_thread::sleep_for(
      std::chrono::milliseconds(200));  // the first turn is waiting on the model
  std::thread t2([&] { second = http_request(url, message("burst", "ann", "second")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::thread t3([&] { third = http_request(url, message("burst", "ann", "third")); });
  t1.join();
  t2.join();
  t3.join();
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(json::parse(first.body)["reply"], "answer 1 to first");
  const auto j2 = json::parse(second.body);
  const auto j3 = json::parse(third.body);
  // One turn answered both: the same reply; only the last is the primary one.
  EXPECT_EQ(j3["reply"], "answer 2 to third");
  EXPECT_EQ(j2["reply"], j3["reply"]);
  EXPECT_EQ(j2["primary"], false);
  EXPECT_EQ(j3["primary"], true);
  ASSERT_EQ(fake.request_count(), 2u);
  const auto texts = user_texts(fake.requests()[1]);
  ASSERT_GE(texts.size(), 3u);
  EXPECT_EQ(texts, (std::vector<std::string>{"first", "second", "third"}))
      << "the merged turn sees every message of the burst, once";
  const json msgs = fake.requests()[1].json["messages"];
  EXPECT_EQ(msgs[msgs.size() - 3]["content"], "answer 1 to first")
      << "the earlier reply before the burst";
  EXPECT_EQ(bot.stop(), 0);

  // Stored as they arrived: the burst was committed while the first turn ran.
  auto store = open_store(dir);
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT role || ':' || text FROM messages ORDER BY id");
  std::vector<std::string> seen;
  while ((*st)->step().value()) seen.push_back((*st)->column_text(0));
  EXPECT_EQ(seen, (std::vector<std::string>{"user:first", "user:second", "user:third",
                                            "assistant:answer 1 to first",
                                            "assistant:answer 2 to third"}));
}

TEST(Serve, StreamOneSendsTheReplyAsServerSentEvents) {
  TempDir dir;
  FakeLlmServer fake;
  auto reply = FakeReply::text("Hello there, this reply streams in small pieces.");
  reply.delta_chars = 5;
  reply.interval = std::chrono::milliseconds(10);
  fake.set_handler(
      [reply](const parley::fakes::RecordedRequest&) -> std::optional<FakeReply> { return reply; });
  ServedBot bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();

  auto r = http_request(bot.url() + "/v1/messages?stream=1", message("s", "sam", "tell me"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.headers, HasSubstr("text/event-stream"));
  std::string text;
  int deltas = 0;
  json final_reply;
  size_t pos = 0;
  while ((pos = r.body.find("\n\n")) != std::string::npos) {
    const std::string event = r.body.substr(0, pos);
    r.body.erase(0, pos + 2);
    if (event.rfind("data: ", 0) == 0) {
      text += json::parse(event.substr(6))["delta"].get<std::string>();
      ++deltas;
    } else if (event.rfind("event: reply\ndata: ", 0) == 0) {
      final_reply = json::parse(event.substr(19));
    }
  }
  EXPECT_GE(deltas, 2) << "the text came in pieces";
  EXPECT_EQ(text, "Hello there, this reply streams in small pieces.");
  EXPECT_EQ(final_reply["reply"], text);
  EXPECT_TRUE(fake.requests()[0].json["stream"].get<bool>());

  // A /command answers in the same format, without deltas.
  auto c = http_request(bot.url() + "/v1/messages?stream=1", message("s", "sam", "/calc 2+2"));
  EXPECT_THAT(c.body, HasSubstr("event: reply\ndata: "));
  EXPECT_THAT(c.body, HasSubstr("\"reply\":\"4\""));
  EXPECT_EQ(bot.stop(), 0);
}

TEST(Serve, AccessPolicyRefusesOnceAndRateLimitsWithAClearMessage) {
  TempDir dir;
  FakeLlmServer fake;
  parley::testing::write_file(dir / "parley.yaml", R"(access:
  mode: private
  allow:
    http: [alice]
  rate_limit: {messages: 3, per_seconds: 60}
)");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";

  // A stranger: told once, politely; then turned away without a speech; nothing stored.
  auto r1 = http_request(url, message("c", "mallory", "hi"));
  EXPECT_EQ(r1.status, 403);
  EXPECT_THAT(json::parse(r1.body)["error"].get<std::string>(), HasSubstr("private assistant"));
  auto r2 = http_request(url, message("c", "mallory", "hello??"));
  EXPECT_EQ(r2.status, 403);
  EXPECT_THAT(json::parse(r2.body)["error"].get<std::string>(),
              ::testing::Not(HasSubstr("private assistant")));
  EXPECT_EQ(fake.request_count(), 0u);

  // Alice may talk, three messages a minute.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(http_request(url, message("a", "alice", "/calc 1+1")).status, 200);
  auto limited = http_request(url, message("a", "alice", "/calc 1+1"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_THAT(limited.headers, HasSubstr("Retry-After:"));
  EXPECT_THAT(json::parse(limited.body)["error"].get<std::string>(),
              HasSubstr("at most 3 every 60 s"));
  auto again = http_request(url, message("a", "alice", "/calc 1+1"));
  EXPECT_EQ(again.status, 429);
  EXPECT_THAT(json::parse(again.body)["error"].get<std::string>(),
              HasSubstr("rate limited: send again in"));
  EXPECT_EQ(bot.stop(), 0);

  auto store = open_store(dir);
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT count(*) FROM messages WHERE author = 'mallory'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 0);
  auto refusals =
      conn->cached("SELECT attempts FROM access_refusals WHERE external_id = 'mallory'");
  ASSERT_TRUE((*refusals)->step().value());
  EXPECT_EQ((*refusals)->column_int64(0), 1) << "recorded at most once a minute per sender";
}

TEST(Serve, RepliesOwedFromBeforeARestartAreSentOnceAndNeverTwice) {
  TempDir dir;
  FakeLlmServer fake;
  int64_t owed = 0;
  int64_t maybe_sent = 0;
  {
    // What a crash leaves: one reply never handed to the console, one whose send had begun.
    auto store = open_store(dir);
    const int64_t conv =
        store->directory().ensure_conversation("console", "console-x").get()->row_id;
    owed = store->outbox().add(conv, "console", "console-x", "owed reply").get()->row_id;
    maybe_sent =
        store->outbox().add(conv, "console", "console-x", "maybe sent reply").get()->row_id;
    ASSERT_TRUE(store->outbox().begin_send(maybe_sent).get().ok());
  }
  {
    ServedBot bot(dir.path(), fake.base_url(), "--console on");
    ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
    EXPECT_FALSE(bot.wait_for_line("owed reply", std::chrono::seconds(10)).empty());
    EXPECT_EQ(bot.stop(), 0);
    for (const auto& line : bot.seen())
      EXPECT_THAT(line, ::testing::Not(HasSubstr("maybe sent reply")));
  }
  {
    auto store = open_store(dir);
    EXPECT_EQ(store->outbox().get(owed)->state, "sent");
    EXPECT_EQ(store->outbox().get(maybe_sent)->state, "unknown");
  }
  // A second start sends nothing again.
  ServedBot again(dir.path(), fake.base_url(), "--console on");
  EXPECT_TRUE(again.wait_for_line("reply", std::chrono::milliseconds(1500)).empty());
  EXPECT_EQ(again.stop(), 0);
}

TEST(Serve, SigkillDuringATurnLosesNoAcknowledgedMessageAndSendsNoReplyTwice) {
  TempDir dir;
  FakeLlmServer fake;
  auto slow_calls = std::make_shared<std::atomic<int>>(0);
  fake.set_handler(
      [slow_calls](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
        const auto texts = user_texts(r);
        auto reply = FakeReply::text("re: " + texts.back());
        // Slow the first time only: the process is killed during it.
        if (r.json.contains("tools") && texts.back() == "slow" && slow_calls->fetch_add(1) == 0) {
          reply.delay_before_headers = std::chrono::seconds(20);
        }
        return reply;
      });
  // The model calls of turns answering "slow" (memory extraction reads the conversation too,
  // and may call the model at any time).
  const auto slow_turns = [&fake] {
    size_t n = 0;
    for (const auto& r : fake.requests()) {
      const json& last = r.json["messages"].back();
      if (r.json.contains("tools") && last["role"] == "user" && last["content"] == "slow") ++n;
    }
    return n;
  };
  std::vector<std::string> acknowledged;
  {
    ServedBot bot(dir.path(), fake.base_url());
    ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
    const std::string url = bot.url() + "/v1/messages";
    for (int i = 0; i < 5; ++i) {
      const std::string text = "m" + std::to_string(i);
      auto r = http_request(url, message("k", "kim", text, "id-" + text));
      if (r.status == 200) acknowledged.push_back(text);
    }
    std::thread slow([&] { (void)http_request(url, message("k", "kim", "slow", "id-slow")); });
    for (int i = 0; i < 1000 && slow_turns() < 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(slow_turns(), 1u) << "the slow turn reached the model";
    bot.kill();  // SIGKILL in the middle of the turn
    slow.join();
  }
  EXPECT_EQ(acknowledged.size(), 5u);
  {
    auto store = open_store(dir);
    EXPECT_TRUE(store->integrity_check().ok());
    auto conn = store->reads().acquire();
    auto st = conn->cached("SELECT text FROM messages WHERE role = 'user' ORDER BY id");
    std::vector<std::string> stored;
    while ((*st)->step().value()) stored.push_back((*st)->column_text(0));
    // Every acknowledged message is there, and the one taken in before the kill too.
    EXPECT_EQ(stored, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4", "slow"}));
  }
  // After a restart: the message whose turn the kill ended is answered at start, once, without
  // waiting for a redelivery (its reply waits in the outbox: HTTP cannot push). A redelivery is
  // recognised — no second turn — and gets the earlier answer back, the same for every copy.
  const size_t before = slow_turns();
  ServedBot bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  for (int i = 0; i < 1500 && slow_turns() < before + 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(slow_turns(), before + 1) << "the unanswered message is answered at start";
  for (const std::string text : {"m0", "m4"}) {
    auto r = http_request(bot.url() + "/v1/messages", message("k", "kim", text, "id-" + text));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["duplicate"], true) << text;
    EXPECT_EQ(json::parse(r.body)["reply"], "re: " + text) << "the earlier answer, again";
  }
  for (int copy = 0; copy < 2; ++copy) {
    auto owed = http_request(bot.url() + "/v1/messages", message("k", "kim", "slow", "id-slow"));
    ASSERT_EQ(owed.status, 200) << owed.body;
    EXPECT_EQ(json::parse(owed.body)["reply"], "re: slow") << owed.body;
    EXPECT_EQ(json::parse(owed.body)["duplicate"], true) << owed.body;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(slow_turns(), before + 1) << "no turn ran twice";
  EXPECT_EQ(bot.stop(), 0);
  auto store = open_store(dir);
  auto conn = store->reads().acquire();
  auto st = conn->cached("SELECT count(*) FROM outbox WHERE state = 'sent'");
  ASSERT_TRUE((*st)->step().value());
  EXPECT_EQ((*st)->column_int64(0), 6) << "one reply per acknowledged message, none twice";
}

// A stop while memory extractions are still waiting for the model: what is left when the grace
// period ends is abandoned, and the process exits cleanly (it used to destroy the extractor
// before the coroutines still reading for it: a use-after-free, exit 139 or 134).
TEST(Serve, AStopWhileMemoriesAreStillBeingReadExitsCleanly) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("re: " + user_texts(r).back());
    // The extraction (it asks for a JSON object) hangs past the grace period.
    if (r.json.contains("response_format")) reply.delay_before_headers = std::chrono::seconds(30);
    return reply;
  });
  const auto extractions = [&fake] {
    size_t n = 0;
    for (const auto& r : fake.requests()) n += r.json.contains("response_format") ? 1 : 0;
    return n;
  };
  parley::testing::write_file(dir / "parley.yaml", "memory:\n  extraction:\n    quiet_s: 0\n");
  ServedBot bot(dir.path(), fake.base_url(), "--grace 1", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  for (int i = 0; i < 3; ++i) {
    const std::string who = "u" + std::to_string(i);
    auto r = http_request(bot.url() + "/v1/messages",
                          message("c" + who, who, "I moved to Lisbon last week for my new job"));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  for (int i = 0; i < 1000 && extractions() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(extractions(), 3u) << "each conversation is being read";
  EXPECT_EQ(bot.stop(), 0);
  auto store = open_store(dir);
  EXPECT_TRUE(store->integrity_check().ok());
}

// Files travel with replies. A /command's file (the calendar export) comes back as a URL under
// the server and is served from there as an attachment; a file a tool made during an LLM turn
// goes to the user too, and the model reads only what it is, never its bytes.
TEST(Serve, FilesOfARepliesAreServedUnderTheServerAndTheModelSeesOnlyWhatTheyAre) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    if (r.json["messages"].back()["role"] == "tool") return FakeReply::text("Here it is.");
    return FakeReply::tools({{"call_1", "events", R"({"action": "export"})"}});
  });
  ServedBot bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();
  const std::string url = bot.url() + "/v1/messages";
  ASSERT_EQ(http_request(url, message("f", "fay", "/events add tomorrow 09:00 dentist")).status,
            200);

  auto r = http_request(url, message("f", "fay", "/events export"));
  ASSERT_EQ(r.status, 200) << r.body;
  const json files = json::parse(r.body)["files"];
  ASSERT_EQ(files.size(), 1u) << r.body;
  EXPECT_EQ(files[0]["filename"], "events.ics");
  EXPECT_EQ(files[0]["media_type"], "text/calendar");
  const std::string path = files[0]["url"];
  ASSERT_EQ(path.rfind("/files/", 0), 0u) << path;
  auto file = http_request(bot.url() + path);
  ASSERT_EQ(file.status, 200) << file.body;
  EXPECT_THAT(file.body, HasSubstr("BEGIN:VCALENDAR"));
  EXPECT_THAT(file.body, HasSubstr("dentist"));
  EXPECT_EQ(file.body.size(), files[0]["bytes"].get<size_t>());
  EXPECT_THAT(file.headers, HasSubstr("attachment; filename*=UTF-8''events.ics"));
  EXPECT_THAT(file.headers, HasSubstr("nosniff"));
  EXPECT_THAT(file.headers, HasSubstr("sandbox"));
  // Another token finds nothing.
  std::string other = path;
  other[7] = other[7] == 'a' ? 'b' : 'a';
  EXPECT_EQ(http_request(bot.url() + other).status, 404);
  EXPECT_EQ(http_request(bot.url() + "/files/short/events.ics").status, 404);

  // Through the model: the tool's file goes with the reply; the model read its description.
  auto turn = http_request(url, message("f", "fay", "export my events as a calendar file"));
  ASSERT_EQ(turn.status, 200) << turn.body;
  const json answer = json::parse(turn.body);
  EXPECT_EQ(answer["reply"], "Here it is.");
  ASSERT_EQ(answer["files"].size(), 1u) << turn.body;
  EXPECT_EQ(answer["files"][0]["filename"], "events.ics");
  EXPECT_NE(answer["files"][0]["url"], files[0]["url"]) << "each reply's file has its own URL";
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  const std::string tool_result = requests[1].json["messages"].back()["content"];
  EXPECT_THAT(tool_result, HasSubstr("sent to the user with the reply"));
  EXPECT_THAT(tool_result, ::testing::Not(HasSubstr("BEGIN:VCALENDAR")));
  auto served = http_request(bot.url() + answer["files"][0]["url"].get<std::string>());
  EXPECT_THAT(served.body, HasSubstr("dentist"));
  EXPECT_EQ(bot.stop(), 0);
}

// web_fetch through the running bot: the page's HTML (half a megabyte) is reduced on the
// App's worker, not an io thread, and the model reads its text, not its markup.
TEST(Serve, AWebPageTheModelFetchesReachesItAsText) {
  TempDir dir;
  parley::fakes::HttpSite site;
  std::string page =
      "<html><head><title>Parley test page</title><script>var hidden = 1;</script></head><body>";
  for (int i = 0; i < 20'000; ++i) page += "<p>paragraph " + std::to_string(i) + "</p>";
  page += "</body></html>";
  site.set("/page", parley::fakes::SitePage::html(page));
  const std::string page_url = site.url("/page");
  FakeLlmServer fake;
  fake.set_handler([page_url](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    if (r.json["messages"].back()["role"] == "tool") return FakeReply::text("Read it.");
    return FakeReply::tools({{"call_1", "web_fetch", json{{"url", page_url}}.dump()}});
  });
  parley::testing::write_file(dir.path() / "capabilities.yaml",
                              "capabilities:\n  web_fetch: {settings: {allow_private: true}}\n");
  parley::testing::write_file(dir.path() / "parley.yaml",
                              "capabilities: {file: capabilities.yaml}\n");
  ServedBot bot(dir.path(), fake.base_url(), "", "--config parley.yaml");
  ASSERT_FALSE(bot.url().empty()) << bot.ready_line();

  auto turn = http_request(bot.url() + "/v1/messages",
                           message("w", "wes", "what does " + page_url + " say?"));
  ASSERT_EQ(turn.status, 200) << turn.body;
  EXPECT_EQ(json::parse(turn.body)["reply"], "Read it.");
  EXPECT_EQ(site.request_count(), 1u);
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  // The tool's answer (cut to the size a tool result may have): the page's text.
  const std::string tool_result = requests[1].json["messages"].back()["content"];
  const std::string head = tool_result.substr(0, 300);
  EXPECT_NE(tool_result.find(R"("status":200)"), std::string::npos) << head;
  EXPECT_NE(tool_result.find("paragraph 0\\n\\nparagraph 1\\n"), std::string::npos) << head;
  EXPECT_EQ(tool_result.find("hidden"), std::string::npos) << head;
  EXPECT_EQ(tool_result.find("<p>"), std::string::npos) << head;
  EXPECT_EQ(bot.stop(), 0);
}

}  // namespace serve_test
