#include "parley/bot/pipeline/command_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "parley/bot/pipeline/attachments.h"
#include "pipeline/invoke_with_timeout.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;

bool is_command(std::string_view text) {
  return text.size() >= 2 && text[0] == '/' &&
         ((text[1] >= 'a' && text[1] <= 'z') || (text[1] >= 'A' && text[1] <= 'Z'));
}

std::string result_text(const json& result) {
  if (result.is_object()) {
    if (auto t = result.find("text"); t != result.end() && t->is_string()) {
      return t->get<std::string>();
    }
  }
  std::string s = result.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 2000) {
    s.resize(2000);
    s += "…";
  }
  return s;
}

namespace {

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

std::string CommandRouter::help(const caps::InvokeContext& context,
                                const caps::CapabilitiesConfig& config) const {
  std::string out = "Commands you can use here:\n";
  size_t n = 0;
  // Tools of MCP servers have no /command: the model uses them when asked. Listed by server.
  std::map<std::string, std::vector<std::string>> mcp_tools;
  for (const auto& name : registry_.names()) {
    const auto* c = registry_.find(name);
    if (c == nullptr ||
        !caps::may_use(*c, config.for_capability(*c), context.caller, context.channel).allowed) {
      continue;
    }
    if (std::string server = registry_.group_of(name); !server.empty()) {
      mcp_tools[server].push_back(name);
      continue;
    }
    for (const auto& cmd : c->commands()) {
      out += fmt::format("{} — {}\n", cmd.usage, cmd.help);
      ++n;
    }
  }
  out += "/help — this list";
  if (n == 0) out = "No commands are available to you here. /help — this list";
  if (!mcp_tools.empty()) {
    out += "\nTools from MCP servers (ask in your own words and I use them):";
    for (const auto& [server, tools] : mcp_tools) {
      out += fmt::format("\n{}: {}", server, fmt::join(tools, ", "));
    }
  }
  return out;
}

asio::awaitable<CommandReply> CommandRouter::run(
    std::string text, caps::InvokeContext context,
    std::shared_ptr<const caps::CapabilitiesConfig> config) {
  CommandReply reply;
  // "/name rest": the name ends at the first space; "/name@bot" forms (Telegram-style) are not
  // special here.
  std::string_view view(text);
  view.remove_prefix(1);
  const size_t space = view.find_first_of(" \t\n");
  std::string name(view.substr(0, space));
  std::string_view rest =
      space == std::string_view::npos ? std::string_view() : view.substr(space + 1);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\n' || rest.back() == '\r')) {
    rest.remove_suffix(1);
  }
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  if (name == "help") {
    reply.ok = true;
    reply.text = help(context, *config);
    co_return reply;
  }
  // A two-word command ("/forget everything") before the one-word one its first word names.
  if (!rest.empty()) {
    const size_t end = rest.find_first_of(" \t\n");
    std::string two = name + ' ' + std::string(rest.substr(0, end));
    for (char& c : two) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (registry_.find_command(two) != nullptr) {
      name = std::move(two);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    }
  }
  caps::Capability* capability = registry_.find_command(name);
  if (capability == nullptr) {
    reply.text = fmt::format("Unknown command /{}. /help lists what you can use.",
                             one_line(name.substr(0, 40)));
    co_return reply;
  }
  reply.capability = std::string(capability->name());
  const auto cfg = config->for_capability(*capability);
  if (const auto d = caps::may_use(*capability, cfg, context.caller, context.channel); !d.allowed) {
    reply.text = fmt::format("Sorry: {}.", d.reason);
    co_return reply;
  }
  std::chrono::seconds wait{0};
  if (!limiter_.allow(context.caller.user_id, reply.capability, cfg.rate_limit,
                      std::chrono::steady_clock::now(), &wait)) {
    reply.text = fmt::format("You are using /{} too fast; try again in {} s.", name,
                             std::max<int64_t>(1, wait.count()));
    co_return reply;
  }
  auto args = capability->parse_command(name, rest);
  if (!args.ok()) {
    const auto specs = capability->commands();
    std::string usage;
    for (const auto& s : specs) {
      if (s.name == name) usage = s.usage;
    }
    reply.text = one_line(args.error().message) + (usage.empty() ? "" : " Usage: " + usage);
    co_return reply;
  }
  caps::InvokeContext ctx = std::move(context);
  ctx.settings = cfg.settings;
  ctx.direct = true;
  const auto until = std::min(ctx.deadline, std::chrono::steady_clock::now() + cfg.timeout);
  ctx.deadline = until;
  auto result =
      co_await detail::invoke_with_timeout(*capability, ctx, std::move(args).value(), until);
  if (result.ok()) {
    reply.ok = true;
    // Files travel with the reply (stored with its outbox entry); the text says what could not.
    TakenFiles taken;
    take_attachments(*result, taken);
    reply.text = result_text(*result) + file_problems_note(taken);
    reply.files = std::move(taken.files);
  } else {
    reply.text = one_line(result.error().message);
  }
  co_return reply;
}

}  // namespace parley::bot::pipeline
