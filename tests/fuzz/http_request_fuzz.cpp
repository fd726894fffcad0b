// http_request_fuzz: a libFuzzer target for the HTTP channel's request path: raw bytes through
// Beast's request parser with the server's limits (16 KiB of headers, a 64 KiB body), then what
// parley reads of the request — POST /v1/messages' query and JSON body
// (parse_message_request, which the server calls) and GET /api/usage's query
// (money::parse_usage_query, then resolve_period on what it asked for).
//
// The whole input is what a client sends, so the seed corpus (tests/fuzz/corpus/http_request/)
// holds requests as curl and the README send them. A FuzzedDataProvider over the same bytes
// (it takes integers from the end) chooses where the bytes are cut into reads.
//
// Invariants (a violation aborts, and libFuzzer keeps the input):
// - Beast gives the same request (method, target, body), or refuses it, whether the bytes come
//   whole or cut at random; a finished body is within the limit.
// - parse_message_request never throws and agrees with a naive reading of its contract: it
//   accepts exactly a JSON object whose conversation and user are non-blank strings of at most
//   256 bytes, text a non-blank string, id absent, null or such a string, and whose `stream`
//   query parameters are all 1, 0, true or false (the last one wins); what it accepts is those
//   fields. A refusal is invalid_argument with a message; malformed JSON names a byte within the
//   body.
// - parse_usage_query never throws; a refusal is invalid_argument naming the parameter; an
//   accepted query's period resolves to [from, to) with from < to, or is refused with
//   invalid_argument.
// clang-format off
#include "parley/bot/net.h"  // first: Asio's macros, as the server has them
// clang-format on

#include <fuzzer/FuzzedDataProvider.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "channels/http/message_request.h"
#include "fuzz_check.h"
#include "parley/base/text.h"
#include "parley/bot/money/reports/usage_report.h"

namespace {

namespace bhttp = boost::beast::http;
using boost::beast::error_code;
using nlohmann::json;
using parley::ErrorCode;
using parley::bot::channels::HttpServer;
using parley::bot::channels::MessageRequest;
using parley::bot::channels::parse_message_request;

using parley::fuzz::violated;

constexpr size_t kBodyLimit = 64 * 1024;      // HttpServerOptions::body_limit's default
constexpr uint32_t kHeaderLimit = 16 * 1024;  // http_server.cpp

struct Parsed {
  bool done = false;
  error_code ec;
  std::string method;
  std::string target;
  std::string body;
};

// Feeds the bytes in pieces of the given sizes (then the rest) as the server's reads would, a
// flat buffer keeping what the parser has not taken yet; the end of the bytes is the end of the
// stream.
Parsed parse(std::string_view bytes, const std::vector<size_t>& pieces) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(kHeaderLimit);
  parser.eager(true);
  Parsed out;
  std::string buffer;
  size_t at = 0;
  for (size_t k = 0; k <= pieces.size() && !parser.is_done(); ++k) {
    const size_t n = std::min(k < pieces.size() ? pieces[k] : bytes.size(), bytes.size() - at);
    buffer.append(bytes.substr(at, n));
    at += n;
    while (!buffer.empty() && !parser.is_done()) {
      error_code ec;
      const size_t used = parser.put(boost::asio::buffer(buffer.data(), buffer.size()), ec);
      buffer.erase(0, used);
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        out.ec = ec;
        return out;
      }
      if (used == 0) break;
    }
  }
  if (!parser.got_some()) {
    out.ec = bhttp::error::end_of_stream;  // as http::read says it (put_eof asserts got_some)
    return out;
  }
  if (!parser.is_done()) {
    error_code ec;
    parser.put_eof(ec);
    if (ec) {
      out.ec = ec;
      return out;
    }
  }
  out.done = parser.is_done();
  if (parser.is_header_done()) {
    const auto& req = parser.get();
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
  }
  if (out.done) out.body = parser.get().body();
  return out;
}

// The same request, or both refused. Which error a malformed request gets may depend on how
// it arrives: a complete bad start line is "bad version" at once, the same line cut before its
// CRLF waits for the end of the header and is "partial message" at the end of the stream.
bool same(const Parsed& a, const Parsed& b) {
  if (a.done != b.done || static_cast<bool>(a.ec) != static_cast<bool>(b.ec)) return false;
  return !a.done || (a.method == b.method && a.target == b.target && a.body == b.body);
}

// The contract of parse_message_request done the naive way.
std::optional<MessageRequest> model(std::string_view target, const std::string& body) {
  MessageRequest m;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    for (;;) {
      const size_t amp = query.find('&');
      const std::string_view param = query.substr(0, amp);
      const size_t eq = param.find('=');
      const std::string_view key = param.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
      if (key == "stream") {
        if (value != "1" && value != "0" && value != "true" && value != "false") {
          return std::nullopt;
        }
        m.stream = value == "1" || value == "true";
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto field = [&](const char* name, size_t max, std::string& out) {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return false;
    const auto& s = it->get_ref<const std::string&>();
    if (parley::trim(s).empty() || (max != 0 && s.size() > max)) return false;
    out = s;
    return true;
  };
  bool ok = field("conversation", HttpServer::kMaxKeyBytes, m.conversation);
  ok = field("user", HttpServer::kMaxKeyBytes, m.user) && ok;
  ok = field("text", 0, m.text) && ok;
  if (const auto it = j.find("id"); it != j.end() && !it->is_null()) {
    std::string id;
    ok = field("id", HttpServer::kMaxKeyBytes, id) && ok;
    m.id = id;
  }
  if (!ok) return std::nullopt;
  return m;
}

void check_message(const std::string& target, const std::string& body) {
  const auto got = parse_message_request(target, body);
  const auto expected = model(target, body);
  PARLEY_FUZZ_CHECK(got.ok() == expected.has_value());
  if (!got.ok()) {
    PARLEY_FUZZ_CHECK(got.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(!got.error().message.empty());
    constexpr std::string_view kMalformed = "malformed JSON at byte ";
    if (got.error().message.starts_with(kMalformed)) {
      const size_t byte =
          std::strtoul(got.error().message.c_str() + kMalformed.size(), nullptr, 10);
      PARLEY_FUZZ_CHECK(byte <= body.size() + 1);
    }
    return;
  }
  PARLEY_FUZZ_CHECK(got->conversation == expected->conversation);
  PARLEY_FUZZ_CHECK(got->user == expected->user);
  PARLEY_FUZZ_CHECK(got->text == expected->text);
  PARLEY_FUZZ_CHECK(got->id == expected->id);
  PARLEY_FUZZ_CHECK(got->stream == expected->stream);
  PARLEY_FUZZ_CHECK(!got->emit);
}

void check_usage_query(std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  const auto params = parley::bot::money::parse_usage_query(query);
  if (!params) {
    PARLEY_FUZZ_CHECK(params.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(!params.error().message.empty());
    return;
  }
  constexpr int64_t kNow = 1'794'960'000'000;  // 2026-11-18
  const auto period =
      parley::bot::money::resolve_period(params->request.period, params->request.zone, kNow);
  if (!period) {
    PARLEY_FUZZ_CHECK(period.error().code == ErrorCode::invalid_argument);
    PARLEY_FUZZ_CHECK(!period.error().message.empty());
    return;
  }
  PARLEY_FUZZ_CHECK(period->from_ms < period->to_ms);
}

void test_one_input(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FuzzedDataProvider fdp(data, size);
  std::vector<size_t> pieces;
  for (size_t total = 0; total < size && fdp.remaining_bytes() > 0;) {
    const auto b = fdp.ConsumeIntegral<uint8_t>();
    pieces.push_back(b < 128 ? b % 8 : (b - 128u) * 4);
    total += pieces.back();
  }
  const Parsed whole = parse(bytes, {});
  const Parsed cut = parse(bytes, pieces);
  if (!same(whole, cut)) {
    for (const Parsed* p : {&whole, &cut}) {
      std::fprintf(stderr, "done %d, error '%s', method '%s', target '%s', body %zu bytes\n",
                   p->done ? 1 : 0, p->ec.message().c_str(), p->method.c_str(), p->target.c_str(),
                   p->body.size());
    }
  }
  PARLEY_FUZZ_CHECK(same(whole, cut));
  if (whole.done) PARLEY_FUZZ_CHECK(whole.body.size() <= kBodyLimit);
  if (whole.target.empty()) return;
  check_message(whole.target, whole.body);
  check_usage_query(whole.target);
}

}  // namespace

PARLEY_FUZZ_MAIN(test_one_input)
