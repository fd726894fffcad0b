// The extraction group of bench_memory: a scripted conversation of 100 turns (a mix of small
// talk, impersonal questions and things people say about themselves, as chats go) stored in a
// fresh store, read by MemoryExtractor against the fake LLM server, whose handler answers each
// extraction call like a model would (an ADD for each statement about the user, NOOPs for what
// the existing memories already say). Two rhythms: the conversation pauses (goes quiet) every
// five turns, and — the worst case — after every turn. Counted: calls, calls per turn worth
// reading, and the prompt tokens of each call (estimated from what was sent, four bytes a
// token, as the client estimates), beside the bounds (≤ 1 call per extracted turn,
// ≤ 1,500 prompt tokens per call).
#include "memory_extraction_figures.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "fakes/fake_llm.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/pipeline/memory_extractor.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bench {

namespace {

namespace asio = net::asio;
using nlohmann::json;

// Twenty lines a person might send, cycled: 8 small talk or impersonal, 12 about themselves.
constexpr const char* kScript[] = {
    "hi!",
    "I moved to Lisbon last month with my partner Sam",
    "what's the capital of Australia?",
    "thanks :)",
    "My sister Ana is visiting on Friday",
    "I've started running 5 km on Sundays",
    "can you explain how recursion works?",
    "lol ok",
    "I'm allergic to peanuts, by the way",
    "We adopted a cat called Miso in October",
    "good morning",
    "I work as a nurse at the Santa Maria hospital",
    "how many ounces in a pound?",
    "my goal this year is to read 24 books",
    "I decided not to buy the car after all",
    "cool, thanks",
    "I prefer tea to coffee, always green tea",
    "Feeling a bit stressed about the exam on the 12th",
    "I usually wake up at 6:30",
    "what does idempotent mean?",
};
constexpr int kTurns = 100;
constexpr int kPauseEvery = 5;

struct Run {
  int64_t calls = 0;
  int64_t worth = 0;  // turns whose message passes the pre-filter
  int64_t added = 0;
  std::vector<int64_t> prompt_tokens;  // per call
};

// The fake model: an ADD for each statement of the user not yet among the existing memories.
std::optional<fakes::FakeReply> model(const fakes::RecordedRequest& r) {
  if (r.target.find("chat/completions") == std::string::npos) return std::nullopt;
  const json data =
      json::parse(r.json["messages"][1]["content"].get<std::string>(), nullptr, false);
  json ops = json::array();
  if (data.is_object()) {
    std::vector<std::string> known;
    for (const auto& e : data["existing"]) known.push_back(e["text"].get<std::string>());
    for (const auto& m : data["messages"]) {
      if (m["from"] == "assistant") continue;
      const std::string text = m["text"].get<std::string>();
      if (!bot::pipeline::worth_reading(text)) continue;
      const std::string fact = "Said: " + text;
      const auto same = std::find(known.begin(), known.end(), fact);
      if (same != known.end()) {
        ops.push_back({{"op", "NOOP"}, {"id", (same - known.begin()) + 1}});
      } else {
        ops.push_back({{"op", "ADD"}, {"text", fact}, {"kind", "fact"}});
      }
    }
  }
  return fakes::FakeReply::text(json{{"ops", ops}}.dump());
}

Run run_script(int pause_every) {
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread thread([&] { ioc.run(); });
  Run out;
  {
    bot::http::CurlMulti multi(ioc.get_executor());
    fakes::FakeLlmServer fake;
    fake.set_handler(model);
    const TempDir dir("parley-bench-extraction-");
    storage::StoreOptions o;
    o.path = dir.path() / "x.db";
    auto store = std::move(storage::Store::open(o).value());
    prompts::PromptLibrary library(*store, SystemClock::instance());
    if (!library.seed_defaults().ok()) throw BenchError("the prompts were not seeded");
    const int64_t user = store->directory().ensure_user("console", "ana", "Ana").get()->row_id;
    const int64_t conv = store->directory().ensure_conversation("console", "ana").get()->row_id;

    bot::llm::LlmSettings s;
    s.provider = "fake";
    s.providers["fake"] = bot::llm::ProviderConfig{"fake", fake.base_url(), "", {}};
    s.roles["smart"] = {bot::llm::ModelRef{"", "model-a"}};
    s.roles["fast"] = {bot::llm::ModelRef{"", "model-cheap"}};
    s.retry.max_attempts = 1;
    bot::llm::LlmClient client(multi, bot::llm::resolve_llm(s, [](const std::string&) {
                                 return std::optional<std::string>();
                               }));
    bot::pipeline::MemoryExtractor extractor(
        {*store, client, library, SystemClock::instance(), nullptr, {}}, {}, ioc.get_executor());
    const bot::pipeline::ExtractionSubject subject{conv, user, "Ana", "UTC"};
    for (int turn = 0; turn < kTurns; ++turn) {
      const std::string said = kScript[static_cast<size_t>(turn) % std::size(kScript)];
      if (bot::pipeline::worth_reading(said)) ++out.worth;
      for (const auto& [role, text] :
           {std::pair<std::string, std::string>{"user", said}, {"assistant", "Noted!"}}) {
        storage::NewMessage m;
        m.conversation_id = conv;
        m.channel = "console";
        m.role = role;
        m.author = role == "user" ? "ana" : "parley";
        m.text = text;
        if (!store->messages().append(m).get().ok()) throw BenchError("a message was not stored");
      }
      if ((turn + 1) % pause_every != 0 && turn + 1 != kTurns) continue;
      auto promise = std::make_shared<std::promise<bot::pipeline::ExtractionOutcome>>();
      auto result = promise->get_future();
      asio::co_spawn(ioc, extractor.extract(subject),
                     [promise](const std::exception_ptr& e, bot::pipeline::ExtractionOutcome r) {
                       if (e) {
                         promise->set_exception(e);
                       } else {
                         promise->set_value(std::move(r));
                       }
                     });
      const auto r = result.get();
      out.added += r.added;
    }
    for (const auto& r : fake.requests()) {
      if (r.target.find("chat/completions") == std::string::npos) continue;
      ++out.calls;
      int64_t tokens = 0;
      for (const auto& m : r.json["messages"]) {
        tokens += bot::llm::estimate_tokens(m["content"].get<std::string>()) + 4;
      }
      out.prompt_tokens.push_back(tokens);
    }
    multi.shutdown();
  }
  work.reset();
  ioc.stop();
  thread.join();
  return out;
}

void add_run(Report& report, const std::string& prefix, const Run& r) {
  report.add(prefix + "_calls_per_100_turns", static_cast<double>(r.calls) * 100.0 / kTurns,
             "calls", 1);
  report.add(prefix + "_calls_per_extracted_turn",
             r.worth > 0 ? static_cast<double>(r.calls) / static_cast<double>(r.worth) : 0, "ratio",
             2);
  const int64_t max = r.prompt_tokens.empty()
                          ? 0
                          : *std::max_element(r.prompt_tokens.begin(), r.prompt_tokens.end());
  int64_t sum = 0;
  for (const int64_t t : r.prompt_tokens) sum += t;
  report.add(prefix + "_prompt_tokens_mean",
             r.prompt_tokens.empty()
                 ? 0
                 : static_cast<double>(sum) / static_cast<double>(r.prompt_tokens.size()),
             "tokens", 0);
  report.add(prefix + "_prompt_tokens_max", static_cast<double>(max), "tokens", 0);
  report.add(prefix + "_memories_added", static_cast<double>(r.added), "memories", 0);
}

}  // namespace

void bench_extraction(Report& report) {
  const Run paused = run_script(kPauseEvery);
  note("bench_memory: extraction: {} turns, {} worth reading, a pause every {} turns: {} calls",
       kTurns, paused.worth, kPauseEvery, paused.calls);
  report.add("extraction_turns", kTurns, "turns", 0);
  report.add("extraction_turns_worth_reading", static_cast<double>(paused.worth), "turns", 0);
  add_run(report, "extraction", paused);
  const Run every = run_script(1);
  note("bench_memory: extraction after every turn: {} calls", every.calls);
  add_run(report, "extraction_every_turn", every);
}

}  // namespace parley::bench
