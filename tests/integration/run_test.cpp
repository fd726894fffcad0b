// `parley run` as a served bot: the HTTP channel against the fake LLM, redelivery, 100
// conversations at once with every reply in order, one instance per database, and a graceful
// stop on SIGTERM.
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/storage/store.h"
#include "run_parley.h"
#include "temp_dir.h"

extern char** environ;

namespace {

using nlohmann::json;
using parley::fakes::FakeLlmServer;
using parley::fakes::FakeReply;
using parley::testing::TempDir;
using ::testing::HasSubstr;

// A `parley run` child process; stopped (SIGKILL if need be) when destroyed.
class Served {
 public:
  Served(const std::filesystem::path& cwd, const std::string& llm_url) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    const std::string script = "cd " + parley::testing::quote(cwd.string()) +
                               " && exec env -u OPENROUTER_API_KEY -u OPENAI_API_KEY PARLEY_LLM_BASE_URL=" +
                               llm_url + " PARLEY_LLM_MODEL=fake-model " +
                               parley::testing::quote(PARLEY_BINARY) + " run --http 127.0.0.1:0 --grace 5";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
    EXPECT_EQ(posix_spawn(&pid_, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    out_ = fdopen(out[0], "r");
    // The first line says where it listens: "parley … ready in N ms: http://127.0.0.1:PORT/…".
    char line[512] = {};
    if (fgets(line, sizeof line, out_) != nullptr) ready_line_ = line;
    std::smatch m;
    if (std::regex_search(ready_line_, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"))) {
      url_ = "http://127.0.0.1:" + m[1].str();
    }
  }
  ~Served() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (out_ != nullptr) fclose(out_);
  }
  // SIGTERM, then the exit code (-1 if it had to be killed after 15 s).
  int stop() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1500; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  const std::string& url() const { return url_; }
  const std::string& ready_line() const { return ready_line_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string ready_line_;
  std::string url_;
};

struct Http {
  long status = 0;
  std::string body;
};

size_t collect(char* p, size_t s, size_t n, void* u) {
  static_cast<std::string*>(u)->append(p, s * n);
  return s * n;
}

Http request(const std::string& url, const std::string& body = "") {
  Http r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

std::string last_user_text(const parley::fakes::RecordedRequest& r) {
  const auto& m = r.json["messages"];
  for (auto it = m.rbegin(); it != m.rend(); ++it) {
    if ((*it)["role"] == "user") return (*it)["content"];
  }
  return "";
}

TEST(Run, ServesHttpDedupesKeepsOrderRefusesASecondInstanceAndStopsGracefully) {
  TempDir dir;
  FakeLlmServer fake;
  fake.set_handler([](const parley::fakes::RecordedRequest& r) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("echo: " + last_user_text(r));
    reply.delay_before_headers = std::chrono::milliseconds(20);
    return reply;
  });
  Served bot(dir.path(), fake.base_url());
  ASSERT_FALSE(bot.url().empty()) << "no ready line: " << bot.ready_line();
  EXPECT_THAT(bot.ready_line(), HasSubstr("ready in"));

  EXPECT_EQ(request(bot.url() + "/healthz").status, 200);
  EXPECT_EQ(request(bot.url() + "/readyz").status, 200);

  // A turn through the LLM, and a /command without it.
  auto r = request(bot.url() + "/v1/messages", R"({"conversation": "c0", "user": "alice", "text": "hi", "id": "m-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["reply"], "echo: hi");
  EXPECT_EQ(j["duplicate"], false);
  auto calc = json::parse(request(bot.url() + "/v1/messages", R"({"conversation": "c0", "user": "alice", "text": "/calc 6*7"})").body);
  EXPECT_EQ(calc["reply"], "42");

  // The same inbound id again: one stored message, one reply.
  const size_t llm_before = fake.request_count();
  auto again = json::parse(request(bot.url() + "/v1/messages", R"({"conversation": "c0", "user": "alice", "text": "hi", "id": "m-1"})").body);
  EXPECT_EQ(again["duplicate"], true);
  EXPECT_EQ(fake.request_count(), llm_before);

  // Malformed input is a clear 400.
  EXPECT_EQ(request(bot.url() + "/v1/messages", "{not json").status, 400);

  // A second `parley run` on the same database refuses.
  auto second = parley::testing::parley(dir.path(), "run --http 127.0.0.1:0",
                                        "env PARLEY_LLM_BASE_URL=" + fake.base_url() + " PARLEY_LLM_MODEL=m");
  EXPECT_EQ(second.code, 1);
  EXPECT_THAT(second.err, HasSubstr("already serving"));

  // 100 conversations at once, 3 messages each in sequence: every reply answers its message.
  std::vector<std::thread> users;
  std::atomic<int> wrong{0};
  for (int c = 0; c < 100; ++c) {
    users.emplace_back([&, c] {
      for (int k = 0; k < 3; ++k) {
        const std::string text = "c" + std::to_string(c) + " m" + std::to_string(k);
        const json body = {{"conversation", "conv-" + std::to_string(c)}, {"user", "u" + std::to_string(c)}, {"text", text}};
        auto resp = request(bot.url() + "/v1/messages", body.dump());
        if (resp.status != 200 || json::parse(resp.body)["reply"] != "echo: " + text) ++wrong;
      }
    });
  }
  for (auto& t : users) t.join();
  EXPECT_EQ(wrong.load(), 0);

  EXPECT_EQ(bot.stop(), 0) << "SIGTERM stops it cleanly";

  // Everything acknowledged is stored, in order per conversation; nothing owed is left.
  parley::storage::StoreOptions so;
  so.path = dir / "data/parley.db";
  auto store = std::move(parley::storage::Store::open(so).value());
  EXPECT_TRUE(store->integrity_check().ok());
  EXPECT_TRUE(store->outbox().pending().value().empty());
  auto conn = store->reads().acquire();
  auto st = conn->cached(
      "SELECT m.role, m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
      "WHERE c.external_id = 'conv-7' ORDER BY m.id");
  ASSERT_TRUE(st.ok());
  std::vector<std::string> seen;
  while ((*st)->step().value()) seen.push_back((*st)->column_text(0) + ":" + (*st)->column_text(1));
  EXPECT_EQ(seen, (std::vector<std::string>{"user:c7 m0", "assistant:echo: c7 m0", "user:c7 m1",
                                            "assistant:echo: c7 m1", "user:c7 m2", "assistant:echo: c7 m2"}));
}

}  // namespace
