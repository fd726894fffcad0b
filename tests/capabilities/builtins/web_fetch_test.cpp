// web_fetch with a fake HttpFetcher (no network): the scheme check before any fetch, HTML
// reduced to text (nested tags, scripts and styles dropped, entities decoded, the title),
// plain text passed through as UTF-8, other types described by type and size, error statuses,
// no network → unavailable, schema errors naming arguments.url, settings and their defaults
// handed to the fetcher, the text cut, the /fetch command.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"
#include "parley/capabilities/http_fetcher.h"
#include "parley/capabilities/json_schema.h"

namespace parley::capabilities {
namespace web_fetch_test {

using nlohmann::json;
using ::testing::HasSubstr;

// Answers every fetch at once with `next`, recording the requests.
class FakeFetcher final : public HttpFetcher {
 public:
  void fetch(FetchRequest request, std::function<void(Result<FetchResponse>)> done) const override {
    requests.push_back(request);
    done(next);
  }

  mutable std::vector<FetchRequest> requests;
  Result<FetchResponse> next = FetchResponse{};
};

FetchResponse page(std::string content_type, std::string body, long status = 200) {
  FetchResponse r;
  r.status = status;
  r.final_url = "https://example.org/final";
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

class WebFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(register_builtins(registry_).ok());
    cap_ = registry_.find("web_fetch");
    ASSERT_NE(cap_, nullptr);
    services_.http = &fetcher_;
    ctx_.services = &services_;
  }
  Result<json> fetch(const std::string& url) { return cap_->invoke(ctx_, json{{"url", url}}); }
  // The answer to a fetch of https://example.org/ answered with `response`.
  json answer(FetchResponse response) {
    fetcher_.next = std::move(response);
    auto r = fetch("https://example.org/");
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? *r : json();
  }

  Registry registry_;
  Capability* cap_ = nullptr;
  FakeFetcher fetcher_;
  Services services_;
  InvokeContext ctx_;
};

TEST_F(WebFetchTest, HtmlBecomesReadableText) {
  const std::string html = R"(<!DOCTYPE html>
<html><head><title>  The   Title &amp; more </title>
<style>body { color: red }</style>
<script>var x = "<p>not text</p>";</script></head>
<body>
  <h1>Heading</h1>
  <p>First   <b>bold</b> and
     <i>it<span>al</span>ic</i>.</p>
  <p>Caf&eacute; &lt;tag&gt; &#8364; &nbsp;x</p>
  <ul><li>one</li><li>two <a href="/x">link</a></li></ul>
  <div>line1<br>line2</div>
  <noscript>enable JavaScript</noscript>
  <template><p>template</p></template>
  <script>alert(1)</script><!-- a comment -->
  <table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>
  <div hidden>hidden text</div>
  <svg><title>icon</title><text>svg text</text></svg>
</body></html>)";
  const json r = answer(page("text/html; charset=utf-8", html));
  EXPECT_EQ(r["title"], "The Title & more");
  EXPECT_EQ(r["text"],
            "Heading\n\nFirst bold and italic.\n\nCafé <tag> € x\n\n- one\n- two link\n\n"
            "line1\nline2\n\na b\nc d");
  EXPECT_EQ(r["url"], "https://example.org/");
  EXPECT_EQ(r["final_url"], "https://example.org/final");
  EXPECT_EQ(r["status"], 200);
  EXPECT_EQ(r["truncated"], false);
  EXPECT_EQ(r["content_type"], "text/html; charset=utf-8");
}

TEST_F(WebFetchTest, XhtmlAndUnlabelledHtmlAreReducedToo) {
  const std::string html = "<html><head><title>T</title></head><body><p>x<script>y</script></p>";
  EXPECT_EQ(answer(page("application/xhtml+xml", html))["text"], "x");
  const json sniffed = answer(page("", "<!doctype html>" + html));
  EXPECT_EQ(sniffed["title"], "T");
  EXPECT_EQ(sniffed["text"], "x");
  EXPECT_EQ(sniffed["content_type"], "text/html");
}

TEST_F(WebFetchTest, BrokenHtmlIsRecovered) {
  const json r = answer(page("text/html", "<p>one<p>two <b>bold <i>both</b> italic<div>three"));
  EXPECT_EQ(r["text"], "one\n\ntwo bold both italic\n\nthree");
  EXPECT_EQ(r["title"], "");
}

TEST_F(WebFetchTest, PreformattedTextKeepsItsLines) {
  const json r = answer(page("text/html", "<p>a</p><pre>x  = 1\n  y = 2</pre><p>b</p>"));
  EXPECT_EQ(r["text"], "a\n\nx  = 1\n  y = 2\n\nb");
}

TEST_F(WebFetchTest, CharsetFromTheHeaderOrTheMetaTag) {
  EXPECT_EQ(answer(page("text/html; charset=iso-8859-1", "<p>caf\xE9</p>"))["text"], "café");
  EXPECT_EQ(answer(page("text/html",
                        "<html><head><meta charset=\"iso-8859-1\"></head>"
                        "<body><p>na\xEFve</p></body></html>"))["text"],
            "naïve");
}

TEST_F(WebFetchTest, DeeplyNestedPagesAreRead) {
  std::string html = "<p>top</p>";
  for (int i = 0; i < 100; ++i) html += "<div><span>";
  html += "deep";
  EXPECT_EQ(answer(page("text/html", html))["text"], "top\n\ndeep");
  // Absurdly deep: libxml2 stops nesting at its depth limit; what came before is kept.
  for (int i = 0; i < 20'000; ++i) html += "<div><span>";
  html += "deeper";
  EXPECT_THAT(answer(page("text/html", html))["text"].get<std::string>(), HasSubstr("top"));
}

TEST_F(WebFetchTest, PlainTextPassesThrough) {
  const json r = answer(page("text/plain; charset=utf-8", "  line one\n\n  indented  two\n"));
  EXPECT_EQ(r["text"], "line one\n\n  indented  two");
  EXPECT_EQ(r["title"], "");
  EXPECT_EQ(answer(page("application/json", R"({"a": 1})"))["text"], R"({"a": 1})");
  // Declared in another charset: converted; not valid UTF-8: repaired, never a broken answer.
  EXPECT_EQ(answer(page("text/plain; charset=ISO-8859-1", "caf\xE9"))["text"], "café");
  const json bad = answer(page("text/plain", "ok \xFF\xFE end"));
  EXPECT_EQ(bad["text"], "ok \xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_NO_THROW((void)bad.dump());
}

TEST_F(WebFetchTest, OtherTypesAreDescribedNotShown) {
  const std::string png = "\x89PNG\r\n\x1A\n" + std::string(3000, '\0');
  const json r = answer(page("image/png", png));
  EXPECT_EQ(r["text"], "[image/png, 2.9 KiB: not text, so nothing of it is shown]");
  EXPECT_EQ(r["bytes"], png.size());
  EXPECT_EQ(r["content_type"], "image/png");
  auto pdf = page("application/pdf", std::string(100, 'x'));
  pdf.truncated = true;
  const json cut = answer(pdf);
  EXPECT_EQ(cut["text"],
            "[application/pdf, more than 100 bytes: not text, so nothing of it is shown]");
  EXPECT_EQ(cut["truncated"], true);
  // No Content-Type and not text: binary too.
  EXPECT_THAT(answer(page("", png))["text"].get<std::string>(),
              HasSubstr("application/octet-stream"));
}

TEST_F(WebFetchTest, LongTextIsCutWithANote) {
  ctx_.settings = {{"max_text_chars", 100}};
  std::string text;
  for (int i = 0; i < 100; ++i) text += "é";  // two bytes each: cut by characters, not bytes
  text += "ABC";
  const json r = answer(page("text/plain", text));
  EXPECT_EQ(r["text"], std::string(text, 0, 200) + "\n\n[cut at 100 of 103 characters]");
  EXPECT_EQ(r["truncated"], true);
  // Exactly at the limit: not cut.
  EXPECT_EQ(answer(page("text/plain", text.substr(0, 200)))["truncated"], false);
}

TEST_F(WebFetchTest, TruncatedBodyIsReportedAsSuch) {
  auto resp = page("text/html", "<p>start of a long page");
  resp.truncated = true;
  const json r = answer(resp);
  EXPECT_EQ(r["text"], "start of a long page");
  EXPECT_EQ(r["truncated"], true);
}

TEST_F(WebFetchTest, ErrorStatusesAreErrorsNamingTheStatus) {
  struct Case {
    long status;
    ErrorCode code;
  };
  for (const auto& c :
       {Case{404, ErrorCode::not_found}, Case{410, ErrorCode::not_found},
        Case{403, ErrorCode::permission_denied}, Case{401, ErrorCode::unauthenticated},
        Case{429, ErrorCode::resource_exhausted}, Case{400, ErrorCode::invalid_argument},
        Case{500, ErrorCode::unavailable}, Case{503, ErrorCode::unavailable},
        Case{304, ErrorCode::unavailable}}) {
    fetcher_.next = page("text/html", "<p>error page</p>", c.status);
    auto r = fetch("https://example.org/");
    ASSERT_FALSE(r.ok()) << c.status;
    EXPECT_EQ(r.error().code, c.code) << c.status;
    EXPECT_EQ(r.error().message,
              "web_fetch: https://example.org/final answered HTTP " + std::to_string(c.status));
  }
}

TEST_F(WebFetchTest, FetcherErrorsKeepTheirCodeAndAreNamed) {
  fetcher_.next = fail(ErrorCode::permission_denied,
                       "http://localhost:8080/: refused: 127.0.0.1 is a loopback address");
  auto r = fetch("http://localhost:8080/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::permission_denied);
  EXPECT_EQ(r.error().message,
            "web_fetch: http://localhost:8080/: refused: 127.0.0.1 is a loopback address");
}

TEST_F(WebFetchTest, OnlyHttpAndHttpsAreFetched) {
  for (const auto& [url, scheme] :
       std::vector<std::pair<std::string, std::string>>{{"ftp://example.org/file", "'ftp'"},
                                                        {"file:///etc/passwd", "'file'"},
                                                        {"gopher://example.org", "'gopher'"},
                                                        {"javascript:alert(1)", "'javascript'"},
                                                        {"FILE:///etc/passwd", "'file'"}}) {
    auto r = fetch(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << url;
    EXPECT_THAT(r.error().message, HasSubstr("scheme " + scheme)) << url;
    EXPECT_THAT(r.error().message, HasSubstr("only http and https")) << url;
  }
  auto none = fetch("example.org/page");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::invalid_argument);
  EXPECT_THAT(none.error().message, HasSubstr("http://"));
  EXPECT_TRUE(fetcher_.requests.empty()) << "nothing refused reaches the network";
  // Upper-case schemes are schemes all the same.
  fetcher_.next = page("text/plain", "ok");
  EXPECT_TRUE(fetch("HTTPS://example.org/").ok());
}

TEST_F(WebFetchTest, WithoutNetworkItIsUnavailable) {
  ctx_.services = nullptr;
  auto r = fetch("https://example.org/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_EQ(r.error().message, "web_fetch has no network in this process");
  Services clock_only;
  ctx_.services = &clock_only;
  EXPECT_EQ(fetch("https://example.org/").error().code, ErrorCode::unavailable);
}

TEST_F(WebFetchTest, SchemaErrorsNameTheArgument) {
  for (const json& args : {json::object(), json{{"url", 42}}, json{{"url", ""}},
                           json{{"url", "https://example.org/" + std::string(2048, 'a')}}}) {
    auto r = cap_->invoke(ctx_, args);
    ASSERT_FALSE(r.ok()) << args.dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_THAT(r.error().message, HasSubstr("arguments.url")) << args.dump();
  }
  auto extra = cap_->invoke(ctx_, json{{"url", "https://example.org/"}, {"method", "POST"}});
  ASSERT_FALSE(extra.ok());
  EXPECT_THAT(extra.error().message, HasSubstr("method"));
  EXPECT_TRUE(fetcher_.requests.empty());
}

TEST_F(WebFetchTest, SettingsDefaultsReachTheFetcher) {
  const json schema = cap_->settings_schema();
  ASSERT_TRUE(check_schema(schema).ok());
  EXPECT_EQ(with_defaults(schema, json::object()), (json{{"max_bytes", 1048576},
                                                         {"timeout_ms", 10000},
                                                         {"max_redirects", 5},
                                                         {"allow_private", false},
                                                         {"max_text_chars", 20000}}));
  EXPECT_FALSE(validate(schema, json{{"max_redirects", -1}}, "settings").ok());
  EXPECT_FALSE(validate(schema, json{{"proxy", "x"}}, "settings").ok());

  fetcher_.next = page("text/plain", "ok");
  ASSERT_TRUE(fetch("https://example.org/a").ok());
  ASSERT_EQ(fetcher_.requests.size(), 1u);
  const FetchRequest& d = fetcher_.requests[0];
  EXPECT_EQ(d.url, "https://example.org/a");
  EXPECT_EQ(d.max_bytes, 1048576u);
  EXPECT_EQ(d.timeout, std::chrono::milliseconds(10'000));
  EXPECT_EQ(d.max_redirects, 5);
  EXPECT_FALSE(d.allow_private);

  ctx_.settings = {
      {"max_bytes", 4096}, {"timeout_ms", 500}, {"max_redirects", 0}, {"allow_private", true}};
  ASSERT_TRUE(fetch("https://example.org/b").ok());
  const FetchRequest& s = fetcher_.requests.back();
  EXPECT_EQ(s.max_bytes, 4096u);
  EXPECT_EQ(s.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(s.max_redirects, 0);
  EXPECT_TRUE(s.allow_private);

  // The call's deadline is the tighter bound.
  ctx_.settings = json::object();
  ctx_.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  ASSERT_TRUE(fetch("https://example.org/c").ok());
  EXPECT_LE(fetcher_.requests.back().timeout, std::chrono::milliseconds(2000));
  EXPECT_GT(fetcher_.requests.back().timeout, std::chrono::milliseconds(1000));
}

TEST_F(WebFetchTest, FlagsAndTheFetchCommand) {
  EXPECT_TRUE(cap_->flags().needs_network);
  EXPECT_EQ(cap_->flags().side_effects, SideEffects::none);
  EXPECT_FALSE(cap_->flags().admin_only);
  const auto specs = cap_->commands();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].name, "fetch");
  EXPECT_EQ(specs[0].usage, "/fetch URL");
  EXPECT_EQ(registry_.find_command("fetch"), cap_);

  auto url_of = [&](std::string_view text) {
    auto r = cap_->parse_command("fetch", text);
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? (*r)["url"].get<std::string>() : std::string();
  };
  EXPECT_EQ(url_of("  https://example.org/x  "), "https://example.org/x");
  EXPECT_EQ(url_of("http://example.org"), "http://example.org");
  EXPECT_EQ(url_of("example.org/page"), "https://example.org/page");
  EXPECT_EQ(url_of("localhost:8080/x"), "https://localhost:8080/x");
  EXPECT_EQ(url_of("ftp://example.org"), "ftp://example.org");  // refused by invoke, by name
  EXPECT_EQ(url_of("mailto:someone@example.org"), "mailto:someone@example.org");
  auto empty = cap_->parse_command("fetch", "   ");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.error().message, HasSubstr("/fetch URL"));
}

}  // namespace web_fetch_test
}  // namespace parley::capabilities
