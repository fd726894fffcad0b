#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros

#include "parley/bot/clients/mcp/mcp_servers.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "parley/bot/clients/mcp/mcp_capability.h"

namespace parley::bot::mcp {

namespace asio = net::asio;
namespace caps = parley::capabilities;

Result<McpServerConfig> mcp_server_config(const caps::McpServerSpec& spec) {
  McpServerConfig c;
  c.name = spec.name;
  c.transport = spec.transport == "http" ? McpServerConfig::Transport::http
                                         : McpServerConfig::Transport::stdio;
  c.command = spec.command;
  c.args = spec.args;
  c.cwd = spec.cwd;
  c.url = spec.url;
  for (const auto& [child, ours] : spec.env) {
    const char* value = std::getenv(ours.c_str());  // NOLINT(concurrency-mt-unsafe): no setenv
    if (value == nullptr) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("mcp server {}: env {} names the variable {}, which is not set",
                              spec.name, child, ours));
    }
    c.env[child] = value;
  }
  if (!spec.token_env.empty()) {
    const char* token = std::getenv(spec.token_env.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (token == nullptr || *token == '\0') {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("mcp server {}: token_env names the variable {}, which is not set",
                              spec.name, spec.token_env));
    }
    c.bearer_token = token;
  }
  if (spec.defaults.timeout.count() > 0) c.call_timeout = spec.defaults.timeout;
  return c;
}

struct McpServers::Entry {
  caps::McpServerSpec spec;
  uint64_t generation = 0;
  std::shared_ptr<McpClient> client;  // null: disabled, or its settings cannot be used
  std::string state = "starting";
  std::string why;
  std::vector<McpTool> listed;  // what the server listed last
  std::vector<std::string> tools;
  std::vector<std::pair<std::string, std::string>> refused;
};

namespace {

// Awaits a client's stop, then tells `done` (named parameters: see mcp_capability.cpp).
asio::awaitable<void> stop_client(std::shared_ptr<McpClient> client, std::function<void()> done) {
  try {
    co_await client->stop();
  } catch (const std::exception& e) {
    spdlog::error("mcp: stopping a server failed: {}", e.what());
  }
  done();
}

bool same_tools(const std::vector<McpTool>& a, const std::vector<McpTool>& b) {
  const auto key = [](const McpTool& t) {
    return std::tie(t.name, t.title, t.description, t.input_schema, t.read_only, t.destructive,
                    t.idempotent, t.open_world);
  };
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [&key](const McpTool& x, const McpTool& y) { return key(x) == key(y); });
}

std::string join(const std::vector<std::string>& v, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i == 0 ? "" : ", ") + v[i];
  if (v.size() > max) out += fmt::format(", … ({} in all)", v.size());
  return out;
}

}  // namespace

McpServers::McpServers(const net::Executor& executor, http::CurlMulti& multi,
                       caps::Registry& registry)
    : executor_(executor), multi_(multi), registry_(registry) {}

McpServers::~McpServers() = default;

void McpServers::apply(const caps::CapabilitiesConfig& config) {
  const std::lock_guard lock(mu_);
  if (stopped_) return;
  tool_locations_.clear();
  for (const auto& [name, where] : config.mcp_tool_locations) tool_locations_[name] = where;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto now = config.mcp_servers.find(it->first);
    if (now != config.mcp_servers.end() && now->second == it->second->spec) {
      ++it;
      continue;
    }
    spdlog::info("mcp server {}: {}", it->first,
                 now == config.mcp_servers.end() ? "removed from the configuration: stopping"
                                                 : "its settings changed: restarting");
    retire_locked(*it->second);
    it = entries_.erase(it);
  }
  for (const auto& [name, spec] : config.mcp_servers) {
    if (entries_.count(name) == 0) start_locked(spec);
  }
  changed_.notify_all();
}

void McpServers::start_locked(const caps::McpServerSpec& spec) {
  auto entry = std::make_unique<Entry>();
  entry->spec = spec;
  entry->generation = ++next_generation_;
  if (!spec.enabled) {
    entry->state = "disabled";
  } else if (auto config = mcp_server_config(spec); !config) {
    entry->state = "broken";
    entry->why = config.error().message;
    spdlog::error("{}; its tools are not offered", entry->why);
  } else {
    const std::string name = spec.name;
    const uint64_t generation = entry->generation;
    entry->client = std::make_shared<McpClient>(
        executor_, multi_, std::move(*config),
        [this, name, generation](std::vector<McpTool> tools) {
          tools_changed(name, generation, std::move(tools));
        },
        [this, name, generation](McpClient::State state, std::string why) {
          state_changed(name, generation, state, std::move(why));
        });
    entry->client->start();
  }
  entries_[spec.name] = std::move(entry);
}

void McpServers::retire_locked(Entry& entry) {
  registry_.set_group(entry.spec.name, {});
  entry.tools.clear();
  entry.listed.clear();
  if (!entry.client) return;
  std::shared_ptr<McpClient> client = std::move(entry.client);
  stopping_.push_back(client);
  std::function<void()> done = [this, raw = client.get()] {
    const std::lock_guard lock(mu_);
    std::erase_if(stopping_, [raw](const auto& c) { return c.get() == raw; });
    changed_.notify_all();
  };
  asio::co_spawn(executor_, stop_client(client, done), asio::detached);
}

void McpServers::tools_changed(const std::string& server, uint64_t generation,
                               std::vector<McpTool> tools) {
  const std::lock_guard lock(mu_);
  const auto it = entries_.find(server);
  if (stopped_ || it == entries_.end() || it->second->generation != generation) return;
  Entry& e = *it->second;
  // The registry keeps every capability it ever held (a call in flight may hold one): a server
  // announcing the same list again replaces nothing.
  if (!tools.empty() && same_tools(tools, e.listed)) return;
  e.listed = tools;
  std::vector<std::unique_ptr<caps::Capability>> made;
  made.reserve(tools.size());
  for (const auto& t : tools) {
    made.push_back(make_mcp_capability(e.client, executor_, server, e.spec.tool_prefix, t));
  }
  auto report = registry_.set_group(server, std::move(made));
  e.tools = std::move(report.added);
  e.refused = std::move(report.refused);
  if (tools.empty()) return;  // withdrawn while down: state_changed says why
  spdlog::info("mcp server {}: {} tool(s) offered: {}", server, e.tools.size(), join(e.tools));
  for (const auto& [name, why] : e.refused) {
    spdlog::warn("mcp server {}: tool {} is not offered: {}", server, name, why);
  }
  // A tool capabilities.yaml configures that this server does not have (a typo, a renamed tool).
  const std::string prefix = e.spec.tool_prefix + ".";
  for (const auto& [name, where] : tool_locations_) {
    if (!name.starts_with(prefix)) continue;
    const std::string tool = name.substr(prefix.size());
    if (std::none_of(tools.begin(), tools.end(),
                     [&tool](const McpTool& t) { return t.name == tool; })) {
      std::vector<std::string> has;
      for (const auto& t : tools) has.push_back(t.name);
      spdlog::warn("{}: capabilities.{}: the MCP server {} has no tool '{}' (it has: {})", where,
                   name, server, tool, join(has));
    }
  }
}

void McpServers::state_changed(const std::string& server, uint64_t generation,
                               McpClient::State state, std::string why) {
  const std::lock_guard lock(mu_);
  const auto it = entries_.find(server);
  if (it == entries_.end() || it->second->generation != generation) return;
  Entry& e = *it->second;
  e.state = std::string(to_string(state));
  e.why = std::move(why);
  changed_.notify_all();
  if (stopped_) return;
  switch (state) {
    case McpClient::State::starting: break;
    case McpClient::State::ready: break;  // the client logs it, with its tools
    case McpClient::State::down:
      spdlog::warn("mcp server {}: down ({}); its tools are withdrawn until it is back", server,
                   e.why);
      break;
    case McpClient::State::broken:
      spdlog::error("mcp server {}: broken ({}); its tools stay withdrawn", server, e.why);
      break;
  }
}

void McpServers::stop(std::chrono::milliseconds within) {
  std::unique_lock lock(mu_);
  stopped_ = true;
  for (auto& [name, entry] : entries_) retire_locked(*entry);
  if (!changed_.wait_for(lock, within, [this] { return stopping_.empty(); })) {
    spdlog::warn("mcp: {} server(s) still stopping after {} ms", stopping_.size(), within.count());
  }
}

bool McpServers::wait_settled(std::chrono::milliseconds within) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, within, [this] {
    return std::none_of(entries_.begin(), entries_.end(),
                        [](const auto& e) { return e.second->state == "starting"; });
  });
}

std::vector<McpServers::ServerStatus> McpServers::status() const {
  const std::lock_guard lock(mu_);
  std::vector<ServerStatus> out;
  for (const auto& [name, e] : entries_) {
    out.push_back(ServerStatus{name, e->spec.tool_prefix, e->spec.transport, e->state, e->why,
                               e->client ? e->client->child_pid() : 0, e->tools, e->refused});
  }
  return out;
}

}  // namespace parley::bot::mcp
