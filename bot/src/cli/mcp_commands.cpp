#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros

#include "cli/mcp_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/exit_codes.h"
#include "cli/capability_commands.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/clients/mcp/mcp_servers.h"
#include "parley/capabilities/builtins.h"

namespace parley::bot::cli {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;

namespace {

// The hints a tool declares, as words ("read-only, idempotent"); "" when none.
std::string hints(const mcp::McpTool& t) {
  std::vector<std::string> out;
  if (t.read_only == true) out.emplace_back("read-only");
  if (t.destructive == true) out.emplace_back("destructive");
  if (t.idempotent == true) out.emplace_back("idempotent");
  if (t.open_world == true) out.emplace_back("open world");
  return fmt::format("{}", fmt::join(out, ", "));
}

// The first line of a server's description, at most 160 characters (it is untrusted text).
std::string short_description(const std::string& d) {
  std::string line = d.substr(0, d.find('\n'));
  if (line.size() > 160) line = line.substr(0, 157) + "...";
  return line;
}

// One server, started on an io_context of its own for the length of one command.
class Session {
 public:
  explicit Session(mcp::McpServerConfig config)
      : multi_(ioc_.get_executor()),
        client_(
            ioc_.get_executor(), multi_, std::move(config),
            [this](std::vector<mcp::McpTool> tools) {
              const std::lock_guard lock(mu_);
              tools_ = std::move(tools);
            },
            [this](mcp::McpClient::State s, const std::string& why) {
              if (s == mcp::McpClient::State::starting || settled_.exchange(true)) return;
              first_.set_value({s, why});
            }) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Session() {
    std::promise<void> stopped;
    asio::co_spawn(ioc_, client_.stop(), [&stopped](std::exception_ptr) { stopped.set_value(); });
    stopped.get_future().wait();
    multi_.shutdown();
    work_.reset();
    thread_.join();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the server; ready, or why not, within `within`.
  Status start(const std::string& name, std::chrono::milliseconds within) {
    client_.start();
    auto f = first_.get_future();
    if (f.wait_for(within) != std::future_status::ready) {
      return fail(ErrorCode::deadline_exceeded,
                  fmt::format("mcp server {} did not start within {} ms", name, within.count()));
    }
    const auto [state, why] = f.get();
    if (state != mcp::McpClient::State::ready) {
      return fail(ErrorCode::unavailable,
                  fmt::format("mcp server {} is {}: {}", name, mcp::to_string(state), why));
    }
    return {};
  }
  std::vector<mcp::McpTool> tools() {
    const std::lock_guard lock(mu_);
    return tools_;
  }
  Result<mcp::McpCallResult> call(std::string tool, json args, std::chrono::milliseconds timeout) {
    std::promise<Result<mcp::McpCallResult>> done;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::co_spawn(
        ioc_,
        [this, &done, &tool, &args, deadline]() -> asio::awaitable<void> {
          auto r = co_await client_.call(tool, args, deadline);
          done.set_value(std::move(r));
        },
        [&done](std::exception_ptr e) {
          if (e) done.set_value(fail(ErrorCode::internal, "the call failed unexpectedly"));
        });
    return done.get_future().get();
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  http::CurlMulti multi_;
  std::mutex mu_;
  std::vector<mcp::McpTool> tools_;
  std::atomic<bool> settled_{false};
  std::promise<std::pair<mcp::McpClient::State, std::string>> first_;
  mcp::McpClient client_;
  std::thread thread_;
};

}  // namespace

McpCommands::McpCommands(CLI::App& app) {
  auto* mcp = app.add_subcommand("mcp", "the MCP servers of capabilities.yaml (mcp_servers:)");
  mcp->require_subcommand(1);
  list_ = mcp->add_subcommand("list", "the MCP servers configured");
  list_->add_flag("--json", json_, "print JSON");
  tools_ = mcp->add_subcommand("tools", "start a server and list its tools");
  tools_->add_option("SERVER", server_, "the server's name in mcp_servers")->required();
  tools_->add_flag("--json", json_, "print JSON");
  call_ = mcp->add_subcommand("call", "start a server and call one of its tools");
  call_->add_option("SERVER", server_, "the server's name in mcp_servers")->required();
  call_->add_option("TOOL", tool_, "the tool's name as the server gives it")->required();
  call_->add_option("--json", arguments_, "the arguments, a JSON object (default {})");
}

int McpCommands::run(const config::Config& cfg) {
  caps::Registry registry;
  if (auto st = caps::register_builtins(registry); !st.ok()) return app::report_error(st.error());
  const auto loaded = live_capabilities(cfg, registry);
  if (!loaded) return app::kExitBadInput;
  const caps::CapabilitiesConfig& live = *loaded;
  if (list_->parsed()) {
    json out = json::array();
    for (const auto& [name, s] : live.mcp_servers) {
      const std::string what =
          s.transport == "http" ? s.url : fmt::format("{} {}", s.command, fmt::join(s.args, " "));
      if (json_) {
        out.push_back({{"name", name},
                       {"transport", s.transport},
                       {"command", s.command},
                       {"args", s.args},
                       {"url", s.url},
                       {"enabled", s.enabled},
                       {"tool_prefix", s.tool_prefix}});
      } else {
        fmt::print("{}: {} {} (tools {}.*){}\n", name, s.transport, what, s.tool_prefix,
                   s.enabled ? "" : ", disabled");
      }
    }
    if (json_) fmt::print("{}\n", out.dump(2));
    if (!json_ && live.mcp_servers.empty()) {
      fmt::print("no MCP servers in {}\n", live.source);
    }
    return app::kExitOk;
  }
  const auto spec = live.mcp_servers.find(server_);
  if (spec == live.mcp_servers.end()) {
    std::string known;
    for (const auto& [name, s] : live.mcp_servers) known += (known.empty() ? "" : ", ") + name;
    fmt::print(stderr, "parley: mcp: no server '{}' in {} ({})\n", server_, live.source,
               known.empty() ? "no mcp_servers configured" : "configured: " + known);
    return app::kExitBadInput;
  }
  json args = json::parse(arguments_, nullptr, false);
  if (call_->parsed() && (args.is_discarded() || !args.is_object())) {
    fmt::print(stderr,
               "parley: mcp call: --json must be a JSON object, e.g. '{{\"path\": \"x\"}}'\n");
    return app::kExitBadInput;
  }
  auto config = mcp::mcp_server_config(spec->second);
  if (!config) {
    fmt::print(stderr, "parley: {}\n", config.error().message);
    return app::kExitBadInput;
  }
  const auto within = config->init_timeout + std::chrono::seconds(5);
  const auto call_timeout = config->call_timeout;
  Session session(std::move(*config));
  if (auto st = session.start(server_, within); !st.ok()) {
    fmt::print(stderr, "parley: {}\n", st.error().message);
    return app::kExitFailed;
  }
  if (tools_->parsed()) {
    const auto tools = session.tools();
    json out = json::array();
    for (const auto& t : tools) {
      const std::string name = spec->second.tool_prefix + "." + t.name;
      if (json_) {
        out.push_back({{"name", name},
                       {"tool", t.name},
                       {"description", short_description(t.description)},
                       {"hints", hints(t)},
                       {"input_schema", t.input_schema}});
      } else {
        const std::string h = hints(t);
        fmt::print("{} — {}{}\n", name, short_description(t.description),
                   h.empty() ? "" : " [" + h + "]");
      }
    }
    if (json_) fmt::print("{}\n", out.dump(2));
    return app::kExitOk;
  }
  auto r = session.call(tool_, std::move(args), call_timeout);
  if (!r) {
    fmt::print(stderr, "parley: mcp call {} {}: {}\n", server_, tool_, r.error().message);
    return app::kExitFailed;
  }
  fmt::print("{}\n", r->text);
  if (!r->structured.is_null()) fmt::print("{}\n", r->structured.dump(2));
  if (r->is_error) {
    fmt::print(stderr, "parley: mcp call {} {}: the tool reported an error\n", server_, tool_);
    return app::kExitFailed;
  }
  return app::kExitOk;
}

}  // namespace parley::bot::cli
