// Tool selection: which built-ins a message gets offered (keywords, stems, recent messages and
// recent tool use, the core, permissions), the compact tool definitions, ToolLoop offering only
// the selection (native and text protocol), and the prompt weight of a "hello" turn.
#include "parley/bot/pipeline/tool_selection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <iostream>
#include <thread>

#include "fakes/fake_llm.h"
#include "parley/bot/pipeline/tool_loop.h"
#include "parley/capabilities/builtins.h"
#include "parley/capabilities/json_schema.h"
#include "parley/prompts/library.h"
#include "parley/prompts/render.h"

namespace parley::bot {
namespace tool_selection_test {

using fakes::FakeLlmServer;
using fakes::FakeReply;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
namespace caps = parley::capabilities;

using Names = std::vector<std::string>;

class ToolSelectionTest : public ::testing::Test {
 protected:
  ToolSelectionTest() {
    EXPECT_TRUE(caps::register_builtins(registry_).ok());
    all_ = registry_.names();
  }

  Names offered(std::string_view text, const std::vector<pipeline::RecentMessage>& recent = {}) {
    return pipeline::select_tools(registry_, all_, text, recent).offered;
  }

  caps::Registry registry_;
  Names all_;
};

TEST_F(ToolSelectionTest, HelloOffersOnlyTheCore) {
  const auto s = pipeline::select_tools(registry_, all_, "hello", {});
  EXPECT_THAT(s.offered, ElementsAre("memory"));
  EXPECT_EQ(s.why.at("memory"), "core");
  EXPECT_EQ(s.describe(), "memory (core)");
  EXPECT_THAT(offered("Hi there, how are you today?"), ElementsAre("memory"));
}

TEST_F(ToolSelectionTest, ArithmeticOffersCalc) {
  const auto s = pipeline::select_tools(registry_, all_, "what's 2+3*4", {});
  EXPECT_THAT(s.offered, ElementsAre("calc", "memory"));
  EXPECT_EQ(s.why.at("calc"), "'+' in the message");
  EXPECT_THAT(offered("Can you calculate the tip?"), ElementsAre("calc", "memory"));
  EXPECT_THAT(offered("what is 144 divided by 12"), ElementsAre("calc", "memory"));
  EXPECT_THAT(offered("/calc 2*3"), ElementsAre("calc", "memory"));
  // A stem matches at the start of a word only.
  EXPECT_THAT(offered("he was accosted"), ElementsAre("memory")) << "not usage's 'cost'";
  EXPECT_THAT(offered("write a summary"), ElementsAre("memory"));
}

TEST_F(ToolSelectionTest, RemindersByTheirCommandStemAndKeywords) {
  const auto s = pipeline::select_tools(registry_, all_, "remind me tomorrow at 9", {});
  EXPECT_THAT(s.offered, ElementsAre("memory", "reminders"));
  EXPECT_EQ(s.why.at("reminders"), "'remind' in the message");
  EXPECT_THAT(offered("Which REMINDERS do I have?"), ElementsAre("memory", "reminders"));
  EXPECT_THAT(offered("set an alarm for 7"), ElementsAre("memory", "reminders"));
  EXPECT_THAT(offered("don't let me forget the keys"), ElementsAre("memory", "reminders"));
}

TEST_F(ToolSelectionTest, EachBuiltinHasWordsThatReachIt) {
  EXPECT_THAT(offered("what time is it in Tokyo?"), ElementsAre("memory", "time"));
  EXPECT_THAT(offered("add milk to my shopping list"), ElementsAre("lists", "memory"));
  EXPECT_THAT(offered("mark the todo done"), ElementsAre("memory", "todo"));
  EXPECT_THAT(offered("take a note: the wifi password is on the router"),
              ElementsAre("memory", "notes"));
  EXPECT_THAT(offered("summarise https://example.org/post"), ElementsAre("memory", "web_fetch"));
  EXPECT_THAT(offered("fetch example.com for me"), ElementsAre("memory", "web_fetch"));
  EXPECT_THAT(offered("how many tokens did I use this week?"), ElementsAre("memory", "usage"));
  EXPECT_THAT(offered("what did it cost?"), ElementsAre("memory", "usage"));
}

TEST_F(ToolSelectionTest, AFollowUpKeepsWhatTheMessagesBeforeAskedFor) {
  const std::vector<pipeline::RecentMessage> recent = {
      {"user", "remind me to call mom", {}},
      {"assistant", "Sure: when?", {}},
  };
  const auto s = pipeline::select_tools(registry_, all_, "at 9 tomorrow", recent);
  EXPECT_THAT(s.offered, ElementsAre("memory", "reminders"));
  EXPECT_EQ(s.why.at("reminders"), "'remind' in a recent message");
  // The assistant's words count too: "yes" accepts what it offered.
  const std::vector<pipeline::RecentMessage> offer = {
      {"user", "I must call mom at 9 tomorrow", {}},
      {"assistant", "Shall I set a reminder?", {}},
  };
  EXPECT_THAT(offered("yes please", offer), ElementsAre("memory", "reminders"));
  // Older messages than the window do not count.
  std::vector<pipeline::RecentMessage> old = recent;
  for (int i = 0; i < 2; ++i) {
    old.push_back({"user", "ok", {}});
    old.push_back({"assistant", "ok", {}});
  }
  EXPECT_THAT(offered("at 9 tomorrow", old), ElementsAre("memory"));
}

TEST_F(ToolSelectionTest, ACapabilityUsedTwoTurnsAgoStaysOffered) {
  // Two turns ago the model used calc for a message with none of calc's words.
  std::vector<pipeline::RecentMessage> recent = {
      {"user", "how much is a dozen dozens", {}},
      {"assistant", "144.", {"calc"}},
      {"user", "thanks!", {}},
      {"assistant", "You're welcome.", {}},
  };
  const auto s = pipeline::select_tools(registry_, all_, "and half of that?", recent);
  EXPECT_THAT(s.offered, ElementsAre("calc", "memory"));
  EXPECT_EQ(s.why.at("calc"), "used recently");
  // The current message may already be the history's last message: the same selection.
  recent.push_back({"user", "and half of that?", {}});
  EXPECT_THAT(offered("and half of that?", recent), ElementsAre("calc", "memory"));
  // Once it is older than the window, it is no longer offered.
  recent.pop_back();
  for (int i = 0; i < 3; ++i) {
    recent.push_back({"user", "ok", {}});
    recent.push_back({"assistant", "ok", {}});
  }
  EXPECT_THAT(offered("and half of that?", recent), ElementsAre("memory"));
}

TEST_F(ToolSelectionTest, OnlyPermittedCapabilitiesAreOffered) {
  const Names no_calc_no_memory = {"notes", "reminders", "time", "todo", "usage", "web_fetch"};
  EXPECT_TRUE(
      pipeline::select_tools(registry_, no_calc_no_memory, "what's 2+3*4", {}).offered.empty());
  const Names with_unknown = {"calc", "weather"};
  EXPECT_THAT(pipeline::select_tools(registry_, with_unknown, "weather and 2+2", {}).offered,
              ElementsAre("calc"));
  // A used tool that is no longer permitted stays out too.
  const std::vector<pipeline::RecentMessage> recent = {{"assistant", "done", {"todo", "weather"}}};
  EXPECT_THAT(pipeline::select_tools(registry_, Names{"memory"}, "ok", recent).offered,
              ElementsAre("memory"));
}

TEST_F(ToolSelectionTest, TheCoreIsAnOption) {
  pipeline::ToolSelectionOptions o;
  o.core = {"time", "memory"};
  EXPECT_THAT(pipeline::select_tools(registry_, all_, "hello", {}, o).offered,
              ElementsAre("memory", "time"));
  o.core.clear();
  EXPECT_TRUE(pipeline::select_tools(registry_, all_, "hello", {}, o).offered.empty());
}

TEST_F(ToolSelectionTest, RecentMessagesReadTheToolsFromTheReplyMetadata) {
  auto msg = [](std::string role, std::string text, std::string metadata) {
    auto m = std::make_shared<storage::StoredMessage>();
    m->role = std::move(role);
    m->text = std::move(text);
    m->metadata = std::move(metadata);
    return std::shared_ptr<const storage::StoredMessage>(std::move(m));
  };
  const storage::History history = {
      msg("user", "old", "{}"),
      msg("user", "what's 6*7", "{}"),
      msg("tool", "{\"result\": 42}", "{}"),
      msg("assistant", "42", R"({"in_reply_to": 2, "tools": ["calc", 7]})"),
      msg("assistant", "broken metadata", "not json"),
  };
  const auto recent = pipeline::recent_messages(history, 3);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0].text, "what's 6*7");
  EXPECT_EQ(recent[1].role, "assistant");
  EXPECT_THAT(recent[1].tools_used, ElementsAre("calc"));
  EXPECT_TRUE(recent[2].tools_used.empty());
}

TEST_F(ToolSelectionTest, ToolDefinitionsDropOnlyTheBounds) {
  const auto memory = pipeline::tool_definition(*registry_.find("memory"));
  EXPECT_EQ(memory.name, "memory");
  EXPECT_EQ(memory.description, registry_.find("memory")->description());
  const json& p = memory.parameters;
  EXPECT_FALSE(p.contains("additionalProperties"));
  EXPECT_EQ(p["required"], json::array({"action"}));
  EXPECT_EQ(p["properties"]["action"]["enum"].size(), 9u);
  EXPECT_FALSE(p["properties"]["content"].contains("maxLength"));
  EXPECT_FALSE(p["properties"]["tags"].contains("maxItems"));
  EXPECT_FALSE(p["properties"]["tags"]["items"].contains("pattern"));
  EXPECT_EQ(p["properties"]["importance"]["maximum"], 5) << "a meaningful range is kept";
  // Every built-in's compact schema is still one json_schema.h checks.
  for (const auto& name : all_) {
    const auto d = pipeline::tool_definition(*registry_.find(name));
    EXPECT_TRUE(caps::check_schema(d.parameters).ok()) << name;
    EXPECT_FALSE(d.description.empty()) << name;
  }
}

// The prompt weight of a one-line "hello" turn with every built-in enabled: the default system
// and capabilities prompts rendered as TurnEngine does, the tools offered, the request body.
class PromptWeight : public ToolSelectionTest {
 protected:
  static std::string system_prompt() {
    prompts::RenderContext rc;
    rc.user_name = "alice";
    rc.user_timezone = "Europe/Paris";
    rc.channel = "console";
    rc.capabilities = "(unused)";
    rc.memories = "(nothing yet)";
    rc.summary = "(none)";
    rc.events = "(nothing in the next 7 days)";
    const auto values = prompts::values_for(rc).value();
    std::string out;
    for (const std::string_view name : {"system", "capabilities"}) {
      for (const auto& d : prompts::builtin_defaults()) {
        if (d.stem != name) continue;
        if (!out.empty()) out += "\n\n";
        out += prompts::Template::parse(d.text).value().render(values).value();
      }
    }
    return out;
  }

  static size_t request_bytes(const std::vector<llm::ToolDefinition>& tools) {
    llm::ChatRequest req;
    req.messages = {llm::Message::system(system_prompt()), llm::Message::user("hello")};
    req.tools = tools;
    return llm::to_json(req, "fake-model")
        .dump(-1, ' ', false, json::error_handler_t::replace)
        .size();
  }
};

// Tools are offered by relevance, so the weight of every tool at once is printed, not bounded:
// no message offers them all.
TEST_F(PromptWeight, AHelloTurnStaysWellUnder1500Tokens) {
  std::vector<llm::ToolDefinition> every, selected;
  for (const auto& name : all_) every.push_back(pipeline::tool_definition(*registry_.find(name)));
  for (const auto& name : pipeline::select_tools(registry_, all_, "hello", {}).offered) {
    selected.push_back(pipeline::tool_definition(*registry_.find(name)));
  }
  const size_t system = system_prompt().size();
  const size_t all_tools = request_bytes(every);
  const size_t hello = request_bytes(selected);
  std::cout << "system prompt " << system << " B; request with every tool " << all_tools << " B (~"
            << all_tools / 4 << " tokens); hello request " << hello << " B (~" << hello / 4
            << " tokens)\n";
  EXPECT_LE(hello, 1500u * 4);
  EXPECT_LE(hello, 600u * 4) << "a hello offers no tool of the personal records";
}

// ToolLoop with a selection, against the fake model.
class OfferedToolLoopTest : public ToolSelectionTest {
 protected:
  OfferedToolLoopTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
    config_ =
        std::make_shared<caps::CapabilitiesConfig>(caps::default_capabilities_config(registry_));
    llm::LlmSettings s;
    s.provider = "fake";
    s.providers["fake"] = llm::ProviderConfig{"fake", fake_.base_url(), "", {}};
    s.roles["smart"] = {llm::ModelRef{"", "model-a"}};
    s.retry.max_attempts = 1;
    client_ = std::make_unique<llm::LlmClient>(multi_, llm::resolve_llm(s, [](const std::string&) {
                                                 return std::optional<std::string>();
                                               }));
    loop_ = std::make_unique<pipeline::ToolLoop>(*client_, registry_);
  }
  ~OfferedToolLoopTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  pipeline::ToolLoopResult run(const std::string& text, pipeline::ToolLoopOptions options) {
    llm::ChatRequest req;
    req.messages = {llm::Message::system("sys"), llm::Message::user(text)};
    caps::InvokeContext ctx;
    ctx.caller = {7, "alice", "UTC", false, {}};
    ctx.channel = "console";
    std::promise<pipeline::ToolLoopResult> p;
    net::asio::co_spawn(net::asio::make_strand(ioc_), loop_->run(req, ctx, config_, options),
                        [&p](std::exception_ptr e, pipeline::ToolLoopResult r) {
                          if (e) ADD_FAILURE() << "the tool loop threw";
                          p.set_value(std::move(r));
                        });
    return p.get_future().get();
  }

  Names tool_names(size_t n) {
    Names names;
    for (const auto& t : fake_.requests().at(n).json.value("tools", json::array())) {
      names.push_back(t["function"]["name"]);
    }
    return names;
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  http::CurlMulti multi_;
  std::thread thread_;
  FakeLlmServer fake_;
  std::shared_ptr<caps::CapabilitiesConfig> config_;
  std::unique_ptr<llm::LlmClient> client_;
  std::unique_ptr<pipeline::ToolLoop> loop_;
};

TEST_F(OfferedToolLoopTest, OnlyTheSelectionIsOfferedAndOthersAreUnknown) {
  const std::string text = "what's 2+3*4";
  pipeline::ToolLoopOptions o;
  o.offered = pipeline::select_tools(registry_, all_, text, {}).offered;
  fake_.push(FakeReply::tools(
      {{"a", "calc", R"({"expression": "2+3*4"})"}, {"b", "notes", R"({"action": "list"})"}}));
  fake_.push(FakeReply::text("14."));
  const auto r = run(text, o);
  EXPECT_EQ(r.reply, "14.");
  EXPECT_THAT(tool_names(0), ElementsAre("calc", "memory"));
  EXPECT_THAT(tool_names(1), ElementsAre("calc", "memory")) << "the same tools on every call";
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_TRUE(r.steps[0].ok) << r.steps[0].result;
  EXPECT_THAT(r.steps[0].result, HasSubstr("14"));
  EXPECT_FALSE(r.steps[1].ok);
  EXPECT_THAT(r.steps[1].result, HasSubstr("there is no tool named 'notes'"));
  EXPECT_THAT(r.tools_used(), ElementsAre("calc", "notes"));
  // The compact schemas are what the model sees.
  const auto tools = fake_.requests().at(0).json["tools"];
  EXPECT_THAT(tools.dump(), Not(HasSubstr("maxLength")));
}

TEST_F(OfferedToolLoopTest, PermissionStillAppliesToTheSelection) {
  config_->by_name["calc"].enabled = false;
  pipeline::ToolLoopOptions o;
  o.offered = Names{"calc", "memory"};
  fake_.push(FakeReply::tools({{"a", "calc", R"({"expression": "1+1"})"}}));
  fake_.push(FakeReply::text("I can't compute that here."));
  const auto r = run("1+1", o);
  EXPECT_THAT(tool_names(0), ElementsAre("memory"));
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_FALSE(r.steps[0].ok);
  EXPECT_THAT(r.steps[0].result, HasSubstr("calc is disabled"));
}

TEST_F(OfferedToolLoopTest, TheTextProtocolDescribesOnlyTheSelection) {
  const std::string text = "remind me tomorrow at 9 to call mom";
  pipeline::ToolLoopOptions o;
  o.text_protocol = true;
  o.offered = pipeline::select_tools(registry_, all_, text, {}).offered;
  fake_.push(
      FakeReply::text("<tool_call>{\"name\": \"web_fetch\", \"arguments\": {\"url\": "
                      "\"https://x.org\"}}</tool_call>"));
  fake_.push(FakeReply::text("Done: I'll remind you."));
  const auto r = run(text, o);
  EXPECT_EQ(r.reply, "Done: I'll remind you.");
  EXPECT_FALSE(fake_.requests()[0].json.contains("tools")) << "no native tools sent";
  const std::string described = fake_.requests()[0].json["messages"][0]["content"];
  EXPECT_THAT(described, HasSubstr("- reminders: "));
  EXPECT_THAT(described, HasSubstr("- memory: "));
  EXPECT_THAT(described, Not(HasSubstr("- web_fetch: ")));
  EXPECT_THAT(described, Not(HasSubstr("- calc: ")));
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_THAT(r.steps[0].result, HasSubstr("there is no tool named 'web_fetch'"));
  const json back = fake_.requests()[1].json["messages"];
  EXPECT_THAT(back.back()["content"].get<std::string>(),
              HasSubstr("<tool_result name=\"web_fetch\">"));
}

}  // namespace tool_selection_test
}  // namespace parley::bot
