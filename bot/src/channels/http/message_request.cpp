#include "channels/http/message_request.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "parley/base/text.h"

namespace parley::bot::channels {

namespace {

using nlohmann::json;

// Reports where JSON text stops being valid, without exceptions.
class SyntaxCheck final : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool /*val*/) override { return true; }
  bool number_integer(number_integer_t /*val*/) override { return true; }
  bool number_unsigned(number_unsigned_t /*val*/) override { return true; }
  bool number_float(number_float_t /*val*/, const string_t& /*s*/) override { return true; }
  bool string(string_t& /*val*/) override { return true; }
  bool binary(binary_t& /*val*/) override { return true; }
  bool start_object(std::size_t /*elements*/) override { return true; }
  bool key(string_t& /*val*/) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t /*elements*/) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    failed = true;
    byte = position;
    // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error while
    // parsing value - invalid literal; last read: '…'": keep the reason, not the echo.
    std::string_view what = ex.what();
    if (const size_t close = what.find("] ");
        close != std::string_view::npos && what.substr(0, 1) == "[") {
      what.remove_prefix(close + 2);
    }
    what = what.substr(0, what.find("; last read"));
    reason = std::string(what);
    return false;
  }

  bool failed = false;
  size_t byte = 0;
  std::string reason;
};

}  // namespace

Result<MessageRequest> parse_message_request(std::string_view target, const std::string& body) {
  MessageRequest msg;

  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view param = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      const size_t eq = param.find('=');
      if (param.substr(0, eq) != "stream") continue;
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
      if (value == "1" || value == "true") {
        msg.stream = true;
      } else if (value == "0" || value == "false") {
        msg.stream = false;
      } else {
        return fail(ErrorCode::invalid_argument, "the query parameter \"stream\" must be 1 or 0");
      }
    }
  }

  const std::string& text = body;
  if (trim(text).empty()) {
    return fail(ErrorCode::invalid_argument,
                "the body is empty; expected a JSON object with \"conversation\", "
                "\"user\" and \"text\"");
  }
  SyntaxCheck check;
  json::sax_parse(text, &check);
  if (check.failed) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("malformed JSON at byte {}: {}", check.byte, check.reason));
  }
  const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("the body must be a JSON object, got {}", object.type_name()));
  }

  std::vector<std::string> problems;
  // Reads body[name] into `out`: a string, not blank, at most `max` bytes (0: no limit).
  auto read_string = [&](const char* name, bool required, size_t max, std::string& out) -> bool {
    const auto it = object.find(name);
    if (it == object.end() || (!required && it->is_null())) {
      if (required) {
        problems.push_back(fmt::format("\"{}\" is required (a non-empty string)", name));
      }
      return false;
    }
    if (!it->is_string()) {
      problems.push_back(fmt::format("\"{}\" must be a string, got {}", name, it->type_name()));
      return false;
    }
    const auto& value = it->get_ref<const std::string&>();
    if (trim(value).empty()) {
      problems.push_back(fmt::format("\"{}\" must not be empty", name));
      return false;
    }
    if (max != 0 && value.size() > max) {
      problems.push_back(fmt::format("\"{}\" must be at most {} bytes", name, max));
      return false;
    }
    out = value;
    return true;
  };
  read_string("conversation", true, HttpServer::kMaxKeyBytes, msg.conversation);
  read_string("user", true, HttpServer::kMaxKeyBytes, msg.user);
  read_string("text", true, 0, msg.text);
  std::string id;
  if (read_string("id", false, HttpServer::kMaxKeyBytes, id)) msg.id = std::move(id);

  if (!problems.empty()) {
    std::string joined;
    for (const auto& p : problems) {
      if (!joined.empty()) joined += "; ";
      joined += p;
    }
    return fail(ErrorCode::invalid_argument, std::move(joined));
  }
  return msg;
}

}  // namespace parley::bot::channels
