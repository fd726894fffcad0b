#include "parley/bot/net.h"  // first: Asio's coroutine support needs its macros

#include "parley/bot/clients/mcp/mcp_capability.h"

#include <fmt/format.h>

#include <exception>
#include <utility>

#include "parley/base/text.h"

namespace parley::bot::mcp {

namespace asio = net::asio;
namespace caps = parley::capabilities;
using nlohmann::json;

caps::SideEffects side_effects_of(const McpTool& tool) {
  if (tool.read_only == true) return caps::SideEffects::none;
  // The spec's defaults: destructive unless it says not, not idempotent unless it says so.
  if (tool.idempotent == true && tool.destructive == false) return caps::SideEffects::idempotent;
  return caps::SideEffects::unsafe;
}

std::string tool_description(const McpTool& tool) {
  const std::string& given = tool.description.empty() ? tool.title : tool.description;
  std::string line;
  bool space = false;
  for (const char c : given) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      space = !line.empty();
      continue;
    }
    if (space) line += ' ';
    space = false;
    line += c;
  }
  if (line.size() > kMaxToolDescriptionBytes) {
    line = std::string(utf8_prefix(line, kMaxToolDescriptionBytes - 3)) + "…";
  }
  if (line.empty()) line = fmt::format("{} (no description given)", tool.name);
  return line;
}

namespace {

class McpCapability final : public caps::Capability {
 public:
  McpCapability(std::weak_ptr<McpClient> client, net::Executor executor, std::string server,
                std::string prefix, const McpTool& tool)
      : client_(std::move(client)),
        executor_(std::move(executor)),
        server_(std::move(server)),
        tool_(tool.name),
        name_(prefix + "." + tool.name),
        description_(tool_description(tool)),
        parameters_(tool.input_schema.is_object() && !tool.input_schema.empty()
                        ? tool.input_schema
                        : json{{"type", "object"}}),
        flags_{side_effects_of(tool), false, tool.open_world.value_or(false)} {
    // Words of its title find it too ("Read File" → read, file), as its name's parts do.
    std::string word;
    for (const char c : tool.title + " ") {
      if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        if (word.size() >= 4) keywords_.push_back(word);
        word.clear();
      }
    }
  }

  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] std::string_view description() const override { return description_; }
  [[nodiscard]] json parameters() const override { return parameters_; }
  [[nodiscard]] caps::Flags flags() const override { return flags_; }
  [[nodiscard]] std::vector<std::string> keywords() const override { return keywords_; }
  [[nodiscard]] std::vector<caps::CommandSpec> commands() const override { return {}; }
  [[nodiscard]] const std::string& server() const { return server_; }

 protected:
  // NOLINTNEXTLINE(readability-identifier-naming)
  void invoke_async_(const caps::InvokeContext& ctx, const json& args, caps::Done done) override {
    std::shared_ptr<McpClient> client = client_.lock();
    if (!client) {
      done(fail(ErrorCode::unavailable,
                fmt::format("{}: the MCP server {} is not running", name_, server_)));
      return;
    }
    // Named locals: GCC 12 destroys prvalue arguments of a coroutine twice.
    std::string tool = tool_;
    std::string name = name_;
    json arguments = args;
    const caps::Deadline deadline = ctx.deadline;
    asio::co_spawn(executor_, run(client, tool, arguments, deadline, done, name), asio::detached);
  }

 private:
  static asio::awaitable<void> run(std::shared_ptr<McpClient> client, std::string tool,
                                   json arguments, caps::Deadline deadline, caps::Done done,
                                   std::string name) {
    Result<json> out = fail(ErrorCode::internal, name + ": no result");
    try {
      auto r = co_await client->call(tool, arguments, deadline);
      if (!r) {
        out = fail(r.error().code, fmt::format("{}: {}", name, r.error().message));
      } else if (r->is_error) {
        // The tool ran and failed: its own words, for the model to read.
        out = fail(ErrorCode::invalid_argument,
                   r->text.empty() ? name + " reported an error without a message" : r->text);
      } else {
        json result = {{"text", std::move(r->text)}};
        if (!r->structured.is_null()) result["structured"] = std::move(r->structured);
        out = std::move(result);
      }
    } catch (const std::exception& e) {
      out = fail(ErrorCode::internal, fmt::format("{}: {}", name, e.what()));
    }
    done(std::move(out));
  }

  std::weak_ptr<McpClient> client_;
  net::Executor executor_;
  std::string server_;
  std::string tool_;
  std::string name_;
  std::string description_;
  json parameters_;
  caps::Flags flags_;
  std::vector<std::string> keywords_;
};

}  // namespace

std::unique_ptr<caps::Capability> make_mcp_capability(std::weak_ptr<McpClient> client,
                                                      const net::Executor& executor,
                                                      const std::string& server,
                                                      const std::string& prefix,
                                                      const McpTool& tool) {
  return std::make_unique<McpCapability>(std::move(client), executor, server, prefix, tool);
}

std::string mcp_server_of(const caps::Capability& capability) {
  const auto* mcp = dynamic_cast<const McpCapability*>(&capability);
  return mcp != nullptr ? mcp->server() : std::string();
}

}  // namespace parley::bot::mcp
