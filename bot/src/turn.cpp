#include "parley/bot/turn.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "parley/prompts/render.h"

namespace parley::bot {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A write through the queue, awaited without blocking a thread: the acknowledgement (after the
// commit) resumes the coroutine on its own executor.
struct WriteOutcome {
  std::optional<Result<storage::WriteAck>> result;
};

// `submit` is taken by reference (the caller's named local outlives the wait): GCC 12 mishandles
// a by-value std::function parameter of a coroutine here and destroys it twice.
asio::awaitable<WriteOutcome> await_write(const std::function<void(storage::WriteCallback)>& submit) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(WriteOutcome)>(
      [&submit](auto handler) {
        using Handler = decltype(handler);
        net::Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        submit([slot, ex](Result<storage::WriteAck> r) {
          asio::post(ex, [slot, r = std::move(r)]() mutable {
            Handler h = std::move(**slot);  // moved out and emptied first: see net.h
            slot->reset();
            std::move(h)(WriteOutcome{std::move(r)});
          });
        });
      },
      asio::use_awaitable);
}

// The users and conversations a channel names, created on first sight. Reads first; the write
// (and its wait) happens once per new user or conversation.
Result<int64_t> user_for(storage::Store& store, const InboundMessage& in) {
  if (auto id = store.directory().find_user(in.channel, in.author); id.ok()) return id;
  auto created = store.directory()
                     .ensure_user(in.channel, in.author, in.author_name.empty() ? in.author : in.author_name)
                     .get();
  if (!created) return fail(std::move(created).error());
  return created->row_id;
}

Result<int64_t> conversation_for(storage::Store& store, const InboundMessage& in) {
  auto created = store.directory().ensure_conversation(in.channel, in.conversation).get();
  if (!created) return fail(std::move(created).error());
  return created->row_id;
}

std::string tools_text(const caps::Registry& registry, const caps::CapabilitiesConfig& config,
                       const caps::Caller& caller, const std::string& channel) {
  std::string out;
  for (const auto& name : registry.names()) {
    const auto& c = *registry.find(name);
    if (!caps::may_use(c, config.for_capability(c), caller, channel).allowed) continue;
    out += fmt::format("- {}: {}\n", name, c.description());
  }
  return out.empty() ? "(none)" : out;
}

}  // namespace

TurnEngine::TurnEngine(Deps deps, TurnOptions options)
    : deps_(std::move(deps)), options_(options), commands_(deps_.registry, deps_.limiter) {
  if (deps_.llm != nullptr) loop_ = std::make_unique<ToolLoop>(*deps_.llm, deps_.registry, &deps_.limiter);
}

asio::awaitable<Result<llm::ChatRequest>> TurnEngine::context(const InboundMessage& in,
                                                              const caps::Caller& caller,
                                                              int64_t conversation_id,
                                                              const caps::CapabilitiesConfig& config) {
  llm::ChatRequest req;
  // Memories recalled for this message (the user's own only).
  std::string memories;
  if (auto hits = deps_.store.memories().recall(caller.user_id, in.text, options_.recalled_memories);
      hits.ok()) {
    for (const auto& h : *hits) memories += "- " + h.memory->content + "\n";
  }
  if (memories.empty()) memories = "(nothing yet)";

  prompts::RenderContext rc;
  rc.user_name = caller.name;
  rc.user_timezone = caller.time_zone;
  rc.channel = in.channel;
  rc.capabilities = tools_text(deps_.registry, config, caller, in.channel);
  rc.memories = memories;
  rc.summary = "(none)";
  rc.now = std::chrono::system_clock::time_point(std::chrono::milliseconds(deps_.clock.now_ms()));
  auto values = prompts::values_for(rc);
  if (!values) co_return fail(std::move(values).error());
  std::string system;
  for (const char* name : {"system", "capabilities"}) {
    auto prompt = deps_.prompts.active(name);
    if (!prompt) co_return fail(std::move(prompt).error());
    auto text = (*prompt)->parsed.render(*values);
    if (!text) co_return fail(std::move(text).error());
    if (!system.empty()) system += "\n\n";
    system += *text;
  }
  req.messages.push_back(llm::Message::system(std::move(system)));

  // Recent history, newest first within the budget, then in order. The last message is the one
  // being answered.
  auto history = deps_.store.messages().recent(conversation_id);
  if (!history) co_return fail(std::move(history).error());
  std::vector<llm::Message> recent;
  int64_t budget = options_.history_token_budget;
  for (auto it = (*history)->rbegin(); it != (*history)->rend(); ++it) {
    const auto& m = **it;
    if (m.role != "user" && m.role != "assistant") continue;
    const int64_t cost = llm::estimate_tokens(m.text) + 4;
    if (!recent.empty() && budget - cost < 0) break;
    budget -= cost;
    recent.push_back(m.role == "user" ? llm::Message::user(m.text) : llm::Message::assistant(m.text));
  }
  req.messages.insert(req.messages.end(), recent.rbegin(), recent.rend());
  if (recent.empty() || recent.front().content != in.text) req.messages.push_back(llm::Message::user(in.text));
  co_return req;
}

asio::awaitable<TurnResult> TurnEngine::run(InboundMessage in) {
  const auto start = Clock::now();
  TurnResult out;
  auto finish = [&]() {
    out.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  };
  auto user = user_for(deps_.store, in);
  if (!user) {
    out.error = std::move(user).error();
    finish();
    co_return out;
  }
  auto conversation = conversation_for(deps_.store, in);
  if (!conversation) {
    out.error = std::move(conversation).error();
    finish();
    co_return out;
  }
  out.user_id = *user;
  out.conversation_id = *conversation;

  // 1. The inbound message is stored (and deduplicated) before anything else happens.
  storage::NewMessage msg;
  msg.conversation_id = out.conversation_id;
  msg.channel = in.channel;
  msg.platform_id = in.platform_id;
  msg.role = "user";
  msg.author = in.author;
  msg.text = in.text;
  // Named, not a temporary argument: GCC 12 destroys a coroutine's prvalue arguments twice.
  std::function<void(storage::WriteCallback)> store_inbound = [this, msg](storage::WriteCallback cb) {
    deps_.store.messages().append(msg, std::move(cb));
  };
  auto stored = co_await await_write(store_inbound);
  if (!stored.result->ok()) {
    out.error = stored.result->error();
    finish();
    co_return out;
  }
  out.message_id = (*stored.result)->row_id;
  if (!(*stored.result)->inserted) {
    out.duplicate = true;
    out.stop = "duplicate";
    finish();
    co_return out;
  }

  caps::Caller caller;
  caller.user_id = out.user_id;
  caller.name = in.author_name.empty() ? in.author : in.author_name;
  caller.time_zone = deps_.time_zone;
  const auto config = deps_.config.current();
  caps::UserScope scope(deps_.store, out.user_id);
  caps::InvokeContext ctx;
  ctx.caller = caller;
  ctx.conversation_id = out.conversation_id;
  ctx.channel = in.channel;
  ctx.deadline = Clock::now() + options_.deadline;
  ctx.data = &scope;
  ctx.services = &deps_.services;

  // 2. A /command, or an LLM turn.
  if (is_command(in.text)) {
    out.command = true;
    const auto reply = co_await commands_.run(in.text, ctx, config);
    out.reply = reply.text;
    out.stop = "command";
  } else if (loop_ == nullptr) {
    out.reply = deps_.no_llm_message;
    out.stop = "no_llm";
  } else {
    auto req = co_await context(in, caller, out.conversation_id, *config);
    if (!req) {
      spdlog::error("turn: building the context failed: {}", req.error().describe());
      out.reply = "Something went wrong on my side while preparing the answer. Please try again.";
      out.stop = "context_error";
    } else {
      ToolLoopOptions lo;
      lo.deadline = ctx.deadline;
      lo.max_iterations = options_.max_iterations;
      const ToolLoopResult r = co_await loop_->run(std::move(*req), ctx, config, lo);
      out.reply = r.reply;
      out.stop = std::string(to_string(r.stop));
      out.llm_calls = static_cast<int>(r.llm_calls.size());
      out.steps = static_cast<int>(r.steps.size());
      double cost = 0;
      bool any_cost = false;
      for (const auto& call : r.llm_calls) {
        const auto u = call.total_usage();
        out.usage.prompt_tokens += u.prompt_tokens;
        out.usage.completion_tokens += u.completion_tokens;
        out.usage.cached_tokens += u.cached_tokens;
        out.usage.reasoning_tokens += u.reasoning_tokens;
        out.usage.estimated = out.usage.estimated || u.estimated;
        if (u.cost_usd) {
          any_cost = true;
          cost += *u.cost_usd;
        }
        out.llm_latency += call.latency;
        if (call.ok()) out.model = call.answered().model_answered;
      }
      if (any_cost) out.usage.cost_usd = cost;
    }
  }
  if (out.reply.empty()) out.reply = "(no answer)";

  // 3. The reply is stored, then put in the outbox, before the channel sends it.
  storage::NewMessage reply;
  reply.conversation_id = out.conversation_id;
  reply.channel = in.channel;
  reply.role = "assistant";
  reply.author = "parley";
  reply.text = out.reply;
  reply.metadata = json{{"in_reply_to", out.message_id}, {"stop", out.stop}}.dump();
  std::function<void(storage::WriteCallback)> store_reply = [this, reply](storage::WriteCallback cb) {
    deps_.store.messages().append(reply, std::move(cb));
  };
  auto saved = co_await await_write(store_reply);
  if (saved.result->ok()) out.reply_id = (*saved.result)->row_id;
  auto queued = deps_.store.outbox().add(out.conversation_id, in.channel, in.conversation, out.reply).get();
  if (!queued) {
    out.error = std::move(queued).error();
  } else {
    out.outbox_id = queued->row_id;
  }
  finish();
  co_return out;
}

}  // namespace parley::bot
