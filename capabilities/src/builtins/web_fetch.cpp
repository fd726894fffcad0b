// web_fetch: GETs an http(s) URL through Services::http (the network guard — schemes, every
// redirect, private addresses checked on the resolved address, size and time caps — lives in
// the HttpFetcher, see http_fetcher.h) and answers with readable text: HTML reduced by
// html_text.h (scripts, styles and the head dropped, the title kept, block elements as line
// breaks, whitespace collapsed), text passed through as UTF-8, anything else described by its
// type and size only.
//
// A fetch answers on the fetcher's thread; nothing is shared between calls.
#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <type_traits>
#include <vector>

#include "builtins/builtins_internal.h"
#include "parley/capabilities/html_text.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities::builtins {
namespace {

using nlohmann::json;

constexpr size_t kMaxUrl = 2048;
constexpr std::string_view kFetchUsage = "/fetch URL";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
  });
  return out;
}

bool is_scheme_char(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (first) return alpha;
  return alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

// The scheme of `url` ("http", "ftp", …) lower-cased, or empty when it has none.
std::string scheme_of(std::string_view url) {
  const auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  for (size_t i = 0; i < colon; ++i) {
    if (!is_scheme_char(url[i], i == 0)) return {};
  }
  return lower(url.substr(0, colon));
}

// --- UTF-8 ----------------------------------------------------------------------------------

struct IconvDeleter {
  void operator()(iconv_t cd) const noexcept { iconv_close(cd); }
};

// `s` converted from `charset` to UTF-8 with the system's iconv; nullopt when the charset is
// unknown or the text is not in it.
std::optional<std::string> to_utf8(std::string_view s, const std::string& charset) {
  iconv_t cd = iconv_open("UTF-8", charset.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;  // NOLINT: iconv's error value
  const std::unique_ptr<std::remove_pointer_t<iconv_t>, IconvDeleter> guard(cd);
  std::string in(s);
  std::string out(s.size() * 2 + 16, '\0');
  char* in_p = in.data();
  size_t in_left = in.size();
  size_t done = 0;
  while (in_left > 0) {
    char* out_p = out.data() + done;
    size_t out_left = out.size() - done;
    const size_t rc = iconv(cd, &in_p, &in_left, &out_p, &out_left);
    done = out.size() - out_left;
    if (rc != static_cast<size_t>(-1)) break;
    if (errno != E2BIG) return std::nullopt;
    out.resize(out.size() * 2);
  }
  out.resize(done);
  return out;
}

// --- Content types --------------------------------------------------------------------------

struct MediaType {
  std::string type;     // "text/html", lower-cased, no parameters; empty when none was sent
  std::string charset;  // lower-cased; empty when none was given
};

MediaType parse_media_type(std::string_view content_type) {
  MediaType m;
  const auto semicolon = content_type.find(';');
  m.type = lower(trim(content_type.substr(0, semicolon)));
  if (semicolon == std::string_view::npos) return m;
  const std::string params = lower(content_type.substr(semicolon + 1));
  const auto at = params.find("charset=");
  if (at == std::string::npos) return m;
  std::string_view value = std::string_view(params).substr(at + 8);
  value = value.substr(0, value.find(';'));
  value = trim(value);
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  m.charset = std::string(value);
  return m;
}

bool is_html_type(const std::string& type) {
  return type == "text/html" || type == "application/xhtml+xml";
}

bool is_text_type(const std::string& type) {
  return type.starts_with("text/") || type == "application/json" || type == "application/xml" ||
         type == "application/javascript" || type == "application/x-yaml" ||
         type == "application/yaml" || type.ends_with("+json") || type.ends_with("+xml");
}

// What a body without a Content-Type looks like.
std::string sniff(std::string_view body) {
  std::string_view head = trim(body.substr(0, 512));
  if (head.starts_with("\xEF\xBB\xBF")) head.remove_prefix(3);
  const std::string start = lower(head.substr(0, 14));
  if (start.starts_with("<!doctype html") || start.starts_with("<html")) return "text/html";
  const std::string_view sample = body.substr(0, 4096);
  if (sample.find('\0') == std::string_view::npos && valid_utf8(sample) == sample) {
    return "text/plain";
  }
  return "application/octet-stream";
}

std::string human_size(size_t bytes) {
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024.0);
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// --- The capability -------------------------------------------------------------------------

ErrorCode code_for_status(long status) {
  if (status == 404 || status == 410) return ErrorCode::not_found;
  if (status == 401 || status == 407) return ErrorCode::unauthenticated;
  if (status == 403 || status == 451) return ErrorCode::permission_denied;
  if (status == 429) return ErrorCode::resource_exhausted;
  if (status == 408 || status == 504) return ErrorCode::deadline_exceeded;
  if (status >= 400 && status < 500) return ErrorCode::invalid_argument;
  return ErrorCode::unavailable;
}

struct Settings {
  size_t max_bytes = 0;
  std::chrono::milliseconds timeout{0};
  int max_redirects = 0;
  bool allow_private = false;
  size_t max_text_chars = 0;
};

class WebFetch final : public Capability {
 public:
  [[nodiscard]] std::string_view name() const override { return "web_fetch"; }
  [[nodiscard]] std::string_view description() const override {
    return "Fetches a web page: its title and readable text.";
  }
  [[nodiscard]] std::vector<std::string> keywords() const override {
    return {"://",  "www.",    ".com",    ".org",     ".net", "http",   "url",
            "link", "website", "webpage", "web page", "site", "article"};
  }
  [[nodiscard]] json parameters() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"url"}},
            {"properties",
             {{"url",
               {{"type", "string"},
                {"minLength", 1},
                {"maxLength", kMaxUrl},
                {"description", "http:// or https:// URL"}}}}}};
  }
  [[nodiscard]] Flags flags() const override { return {SideEffects::none, false, true}; }
  [[nodiscard]] json settings_schema() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"max_bytes",
               {{"type", "integer"},
                {"minimum", 1024},
                {"maximum", 64 << 20},
                {"default", 1 << 20},
                {"description", "bytes of a response kept; the rest is cut (truncated: true)"}}},
              {"timeout_ms",
               {{"type", "integer"},
                {"minimum", 100},
                {"maximum", 300'000},
                {"default", 10'000},
                {"description", "the whole fetch, redirects included"}}},
              {"max_redirects",
               {{"type", "integer"},
                {"minimum", 0},
                {"maximum", 20},
                {"default", 5},
                {"description", "redirects followed, each checked like the first URL"}}},
              {"allow_private",
               {{"type", "boolean"},
                {"default", false},
                {"description",
                 "also fetch loopback, private, link-local and other internal addresses"}}},
              {"max_text_chars",
               {{"type", "integer"},
                {"minimum", 100},
                {"maximum", 1'000'000},
                {"default", 20'000},
                {"description", "characters of text answered; the rest is cut with a note"}}}}}};
  }
  [[nodiscard]] std::vector<CommandSpec> commands() const override {
    return {
        {"fetch", std::string(kFetchUsage), "a web page as text, e.g. /fetch https://example.org"}};
  }
  // "/fetch example.org/page" means https://example.org/page; "/fetch ftp://x" is kept as
  // written so that the answer names the scheme refused.
  [[nodiscard]] Result<json> parse_command(std::string_view /*command*/,
                                           std::string_view text) const override {
    const auto url = trim(text);
    if (url.empty()) {
      return fail(
          ErrorCode::invalid_argument,
          fmt::format("web_fetch: usage: {}, e.g. /fetch https://example.org", kFetchUsage));
    }
    const std::string scheme = scheme_of(url);
    const bool has_scheme =
        !scheme.empty() && url.size() > scheme.size() + 1 &&
        !(url[scheme.size() + 1] >= '0' && url[scheme.size() + 1] <= '9');  // not host:port
    if (has_scheme || url.find("://") != std::string_view::npos) {
      return json{{"url", std::string(url)}};
    }
    return json{{"url", "https://" + std::string(url)}};
  }

 protected:
  void invoke_async_(const InvokeContext& ctx, const json& args, Done done) override {
    const std::string url(trim(args.at("url").get<std::string>()));
    const std::string scheme = scheme_of(url);
    if (scheme != "http" && scheme != "https") {
      done(fail(ErrorCode::invalid_argument,
                scheme.empty()
                    ? fmt::format("web_fetch: '{}' is not a URL with a scheme; only http:// and "
                                  "https:// URLs can be fetched",
                                  url)
                    : fmt::format("web_fetch: the scheme '{}' is not fetched; only http and "
                                  "https URLs can be",
                                  scheme)));
      return;
    }
    if (ctx.services == nullptr || ctx.services->http == nullptr) {
      done(fail(ErrorCode::unavailable, "web_fetch has no network in this process"));
      return;
    }
    const Settings s = settings_of(ctx);

    FetchRequest request;
    request.url = url;
    request.max_bytes = s.max_bytes;
    request.timeout = s.timeout;
    if (ctx.deadline != Deadline::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          ctx.deadline - std::chrono::steady_clock::now());
      request.timeout = std::clamp(left, std::chrono::milliseconds(1), s.timeout);
    }
    request.max_redirects = s.max_redirects;
    request.allow_private = s.allow_private;
    ctx.services->http->fetch(std::move(request), [url, max_text_chars = s.max_text_chars,
                                                   done](Result<FetchResponse> r) {
      try {
        done(answer(url, max_text_chars, std::move(r)));
      } catch (const std::exception& e) {
        done(fail(ErrorCode::internal, fmt::format("web_fetch: failed: {}", e.what())));
      }
    });
  }

 private:
  Settings settings_of(const InvokeContext& ctx) const {
    const json settings =
        with_defaults(settings_schema(), ctx.settings.is_object() ? ctx.settings : json::object());
    Settings s;
    s.max_bytes = settings.at("max_bytes").get<size_t>();
    s.timeout = std::chrono::milliseconds(settings.at("timeout_ms").get<int64_t>());
    s.max_redirects = settings.at("max_redirects").get<int>();
    s.allow_private = settings.at("allow_private").get<bool>();
    s.max_text_chars = settings.at("max_text_chars").get<size_t>();
    return s;
  }

  static Result<json> answer(const std::string& url, size_t max_text_chars,
                             Result<FetchResponse> r) {
    if (!r) {
      Error e = std::move(r).error();
      e.message = "web_fetch: " + e.message;
      return fail(std::move(e));
    }
    FetchResponse& resp = *r;
    if (resp.final_url.empty()) resp.final_url = url;
    if (resp.status < 200 || resp.status > 299) {
      return fail(code_for_status(resp.status),
                  fmt::format("web_fetch: {} answered HTTP {}", resp.final_url, resp.status));
    }
    MediaType media = parse_media_type(resp.content_type);
    const bool declared = !media.type.empty();
    if (!declared) media.type = sniff(resp.body);

    std::string title;
    std::string text;
    if (is_html_type(media.type)) {
      auto page = html_to_text(resp.body, media.charset, resp.final_url);
      if (!page) {
        Error e = std::move(page).error();
        e.message = fmt::format("web_fetch: {}: {}", resp.final_url, e.message);
        return fail(std::move(e));
      }
      title = std::move(page->title);
      text = std::move(page->text);
    } else if (is_text_type(media.type)) {
      std::optional<std::string> converted;
      if (!media.charset.empty() && media.charset != "utf-8" && media.charset != "utf8") {
        converted = to_utf8(resp.body, media.charset);
      }
      text = valid_utf8(converted ? *converted : resp.body);
      text = std::string(trim(text));
    } else {
      text = fmt::format("[{}, {}{}: not text, so nothing of it is shown]", media.type,
                         resp.truncated ? "more than " : "", human_size(resp.body.size()));
    }

    bool cut = false;
    if (const size_t chars = utf8_length(text); chars > max_text_chars) {
      text = fmt::format("{}\n\n[cut at {} of {} characters]",
                         utf8_first_chars(text, max_text_chars), max_text_chars, chars);
      cut = true;
    }
    json out = {{"url", url},
                {"final_url", valid_utf8(resp.final_url)},
                {"status", resp.status},
                {"content_type", valid_utf8(declared ? resp.content_type : media.type)},
                {"bytes", resp.body.size()},
                {"title", title},
                {"text", text},
                {"truncated", resp.truncated || cut}};
    return out;
  }
};

}  // namespace

std::unique_ptr<Capability> make_web_fetch() { return std::make_unique<WebFetch>(); }

}  // namespace parley::capabilities::builtins
