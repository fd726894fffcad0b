// WebFetcher against a local test site (tests/fakes/http_site.h), and the address classifier.
//
// The site listens on 127.0.0.1, so by default — private addresses not allowed — every fetch of
// it must be refused before a byte is sent: by literal, by a name that resolves to loopback, and
// through a cached connection. With a policy that lets the site's own port through, a redirect
// to another loopback port or to the cloud metadata address is refused on that hop. With
// private addresses allowed: pages, redirects (relative and absolute, each scheme checked),
// loops stopped, the size cap and the time cap. End to end: the web_fetch capability over it.
#include "parley/bot/clients/http/web_fetcher.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "fakes/http_site.h"
#include "parley/capabilities/builtins.h"

namespace parley::bot::http {
namespace web_fetcher_test {

using capabilities::FetchRequest;
using capabilities::FetchResponse;
using fakes::HttpSite;
using fakes::SitePage;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

class WebFetcherTest : public ::testing::Test {
 protected:
  WebFetcherTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~WebFetcherTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  Result<FetchResponse> fetch(FetchRequest r, const WebFetcher* fetcher = nullptr) {
    std::promise<Result<FetchResponse>> p;
    auto f = p.get_future();
    (fetcher != nullptr ? *fetcher : fetcher_).fetch(std::move(r), [&p](Result<FetchResponse> res) {
      p.set_value(std::move(res));
    });
    return f.get();
  }
  static FetchRequest request(std::string url, bool allow_private = true) {
    FetchRequest r;
    r.url = std::move(url);
    r.timeout = milliseconds(5000);
    r.allow_private = allow_private;
    return r;
  }
  Error error_of(FetchRequest r, const WebFetcher* fetcher = nullptr) {
    auto res = fetch(std::move(r), fetcher);
    EXPECT_FALSE(res.ok()) << "status " << (res.ok() ? res->status : 0);
    return res.ok() ? Error{} : res.error();
  }
  std::string at(uint16_t port, std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
  }

  HttpSite site_;  // first: outlives the client's connections
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  CurlMulti multi_;
  WebFetcher fetcher_{multi_, ioc_.get_executor()};
  std::thread thread_;
};

// --- Refused by default -----------------------------------------------------------------------

TEST_F(WebFetcherTest, LoopbackSiteIsRefusedByDefault) {
  site_.set("/page", SitePage::html("<p>secret</p>"));
  FetchRequest r;  // the defaults: allow_private = false
  r.url = site_.url("/page");
  const Error e = error_of(r);
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("refused: 127.0.0.1 is a loopback address"));
  EXPECT_THAT(e.message, HasSubstr(site_.url("/page")));
  EXPECT_EQ(site_.request_count(), 0u) << "not a byte reached the site";
}

TEST_F(WebFetcherTest, NameResolvingToLoopbackIsRefusedOnTheResolvedAddress) {
  site_.set("/page", SitePage::html("<p>secret</p>"));
  const Error e =
      error_of(request("http://localhost:" + std::to_string(site_.port()) + "/page", false));
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  // Whichever addresses localhost has here (127.0.0.1, ::1), each was checked and refused.
  EXPECT_THAT(e.message, HasSubstr("is a loopback address"));
  EXPECT_THAT(e.message, ::testing::AnyOf(HasSubstr("127.0.0.1"), HasSubstr("::1")));
  EXPECT_EQ(site_.request_count(), 0u);
}

TEST_F(WebFetcherTest, OtherSpellingsOfInternalAddressesAreRefused) {
  const std::string port = std::to_string(site_.port());
  struct Case {
    std::string url;
    std::string said;
  };
  for (const auto& c : {Case{"http://[::1]:" + port + "/", "::1 is a loopback address"},
                        Case{"http://[::ffff:127.0.0.1]:" + port + "/", "is a loopback address"},
                        Case{"http://2130706433:" + port + "/", "127.0.0.1 is a loopback"},
                        Case{"http://0x7f.1:" + port + "/", "127.0.0.1 is a loopback"},
                        Case{"http://0.0.0.0:" + port + "/", "0.0.0.0 is an unspecified"},
                        Case{"http://169.254.169.254/latest/meta-data/", "cloud metadata"},
                        Case{"http://10.0.0.1:9/", "10.0.0.1 is a private address"},
                        Case{"http://192.168.1.1:9/", "192.168.1.1 is a private address"},
                        Case{"http://100.64.0.1:9/", "carrier-grade NAT"},
                        Case{"http://[fe80::1]:9/", "fe80::1 is a link-local address"},
                        Case{"http://[fd00::1]:9/", "fd00::1 is a private address"}}) {
    const Error e = error_of(request(c.url, false));
    EXPECT_EQ(e.code, ErrorCode::permission_denied) << c.url << ": " << e.message;
    EXPECT_THAT(e.message, HasSubstr(c.said)) << c.url;
  }
  EXPECT_EQ(site_.request_count(), 0u);
}

TEST_F(WebFetcherTest, CachedConnectionIsNotReusedPastTheCheck) {
  site_.set("/page", SitePage::html("<p>secret</p>"));
  // Another client of the multi (no guard) leaves a kept-alive connection to the site…
  std::promise<Response> p;
  Request plain;
  plain.url = site_.url("/page");
  multi_.start(plain, {}, ioc_.get_executor(), [&p](Response r) { p.set_value(std::move(r)); });
  ASSERT_EQ(p.get_future().get().status, 200);
  ASSERT_EQ(site_.request_count(), 1u);
  // …which a guarded fetch must not pick up.
  const Error e = error_of(request(site_.url("/page"), false));
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_EQ(site_.request_count(), 1u);
}

// Lets through 127.0.0.1 on the site's own port only; judges everything else like the process.
AddressPolicy only_port(uint16_t port) {
  return [port](const sockaddr* address, std::string& why) {
    if (address->sa_family == AF_INET) {
      sockaddr_in in{};
      std::memcpy(&in, address, sizeof in);
      if (ntohs(in.sin_port) == port && ntohl(in.sin_addr.s_addr) == INADDR_LOOPBACK) return true;
    }
    return public_address_only(address, why);
  };
}

TEST_F(WebFetcherTest, EveryRedirectHopIsCheckedAgain) {
  HttpSite inner;
  inner.set("/secret", SitePage::text("internal"));
  site_.set("/to-inner", SitePage::redirect(inner.url("/secret")));
  site_.set("/to-metadata", SitePage::redirect("http://169.254.169.254/latest/meta-data/"));
  site_.set("/to-localhost",
            SitePage::redirect("http://localhost:" + std::to_string(inner.port()) + "/secret"));
  site_.set("/ok", SitePage::text("public"));
  const WebFetcher guarded(multi_, ioc_.get_executor(), only_port(site_.port()));

  auto ok = fetch(request(site_.url("/ok"), false), &guarded);
  ASSERT_TRUE(ok.ok()) << ok.error().describe();  // the policy lets the site itself through
  EXPECT_EQ(ok->body, "public");

  Error e = error_of(request(site_.url("/to-inner"), false), &guarded);
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("refused: 127.0.0.1 is a loopback address"));
  EXPECT_THAT(e.message, HasSubstr(inner.url("/secret")));

  e = error_of(request(site_.url("/to-localhost"), false), &guarded);
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("is a loopback address"));

  e = error_of(request(site_.url("/to-metadata"), false), &guarded);
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("169.254.169.254 is a link-local address"));

  EXPECT_EQ(inner.request_count(), 0u) << "no redirect reached the inner site";
}

// --- Private addresses allowed: the site can be fetched ----------------------------------------

TEST_F(WebFetcherTest, PageWithStatusTypeAndBody) {
  site_.set("/page", SitePage::html("<html><title>T</title><p>hello</p></html>"));
  auto r = fetch(request(site_.url("/page")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->final_url, site_.url("/page"));
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r->body, "<html><title>T</title><p>hello</p></html>");
  EXPECT_FALSE(r->truncated);
}

TEST_F(WebFetcherTest, BinaryAndErrorStatusesAreResponses) {
  const std::string png = "\x89PNG\r\n\x1A\n" + std::string(500, '\0');
  site_.set("/img", SitePage::bytes(png, "image/png"));
  auto img = fetch(request(site_.url("/img")));
  ASSERT_TRUE(img.ok()) << img.error().describe();
  EXPECT_EQ(img->content_type, "image/png");
  EXPECT_EQ(img->body, png);
  auto missing = fetch(request(site_.url("/nothing-here")));
  ASSERT_TRUE(missing.ok()) << missing.error().describe();
  EXPECT_EQ(missing->status, 404);
}

TEST_F(WebFetcherTest, RedirectsRelativeAndAbsoluteAreFollowed) {
  site_.set("/start", SitePage::redirect("/hop1", 301));
  site_.set("/hop1", SitePage::redirect("next/hop2?x=1", 302));  // relative to /hop1
  site_.set("/next/hop2", SitePage::redirect("../hop3", 303));   // → /hop3
  site_.set("/hop3", SitePage::redirect(site_.url("/final"), 307));
  site_.set("/final", SitePage::redirect("//127.0.0.1:" + std::to_string(site_.port()) + "/end",
                                         308));  // scheme-relative
  site_.set("/end", SitePage::text("arrived"));
  auto r = fetch(request(site_.url("/start")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "arrived");
  EXPECT_EQ(r->final_url, site_.url("/end"));
  EXPECT_EQ(site_.requested(), (std::vector<std::string>{"/start", "/hop1", "/next/hop2?x=1",
                                                         "/hop3", "/final", "/end"}));
}

TEST_F(WebFetcherTest, RedirectToAnotherSchemeIsRefused) {
  site_.set("/to-ftp", SitePage::redirect("ftp://127.0.0.1/file"));
  site_.set("/to-file", SitePage::redirect("file:///etc/passwd"));
  Error e = error_of(request(site_.url("/to-ftp")));
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("the scheme 'ftp' is not fetched (only http and https)"));
  EXPECT_THAT(e.message, HasSubstr(site_.url("/to-ftp") + " redirected to ftp://127.0.0.1/file"));
  e = error_of(request(site_.url("/to-file")));
  EXPECT_EQ(e.code, ErrorCode::permission_denied);
  EXPECT_THAT(e.message, HasSubstr("'file'"));
  EXPECT_EQ(site_.request_count(), 2u);
}

TEST_F(WebFetcherTest, RedirectLoopStopsAtTheLimit) {
  site_.set("/loop", SitePage::redirect("/loop"));
  auto r = request(site_.url("/loop"));
  r.max_redirects = 3;
  const Error e = error_of(r);
  EXPECT_EQ(e.code, ErrorCode::resource_exhausted);
  EXPECT_THAT(e.message, HasSubstr("stopped after 3 redirect(s)"));
  EXPECT_EQ(site_.request_count(), 4u);  // the first request and three redirects

  r.max_redirects = 0;
  EXPECT_THAT(error_of(r).message, HasSubstr("stopped after 0 redirect(s)"));
  EXPECT_EQ(site_.request_count(), 5u);
}

TEST_F(WebFetcherTest, RedirectWithoutLocationIsTheAnswer) {
  SitePage p = SitePage::text("no location");
  p.status = 302;
  site_.set("/odd", p);
  auto r = fetch(request(site_.url("/odd")));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->status, 302);
}

TEST_F(WebFetcherTest, BodyOverTheCapIsCutAndMarked) {
  std::string big;
  for (int i = 0; big.size() < 200'000; ++i) big += std::to_string(i) + ' ';
  site_.set("/big", SitePage::text(big));
  auto r = request(site_.url("/big"));
  r.max_bytes = 10'000;
  auto res = fetch(r);
  ASSERT_TRUE(res.ok()) << res.error().describe();
  EXPECT_TRUE(res->truncated);
  EXPECT_EQ(res->body, big.substr(0, 10'000));

  site_.set("/exact", SitePage::text(big.substr(0, 10'000)));
  r.url = site_.url("/exact");
  res = fetch(r);
  ASSERT_TRUE(res.ok()) << res.error().describe();
  EXPECT_FALSE(res->truncated);
  EXPECT_EQ(res->body.size(), 10'000u);
}

TEST_F(WebFetcherTest, SlowBodyHitsTheTimeCap) {
  SitePage slow = SitePage::text(std::string(2000, 's'));
  slow.write_bytes = 100;
  slow.interval = milliseconds(100);  // 2 s in all, never idle for long
  site_.set("/slow", slow);
  auto r = request(site_.url("/slow"));
  r.timeout = milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  const Error e = error_of(r);
  EXPECT_EQ(e.code, ErrorCode::deadline_exceeded);
  EXPECT_THAT(e.message, HasSubstr("within 500 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

TEST_F(WebFetcherTest, LateHeadersHitTheTimeCap) {
  SitePage late = SitePage::text("late");
  late.delay_before_headers = milliseconds(3000);
  site_.set("/late", late);
  auto r = request(site_.url("/late"));
  r.timeout = milliseconds(300);
  EXPECT_EQ(error_of(r).code, ErrorCode::deadline_exceeded);
}

TEST_F(WebFetcherTest, TimeCapCoversEveryRedirect) {
  SitePage slow_redirect = SitePage::redirect("/next");
  slow_redirect.delay_before_headers = milliseconds(300);
  site_.set("/a", slow_redirect);
  site_.set("/next", slow_redirect);
  auto r = request(site_.url("/a"));
  r.timeout = milliseconds(800);  // each hop alone fits; the chain does not
  r.max_redirects = 10;
  EXPECT_EQ(error_of(r).code, ErrorCode::deadline_exceeded);
  EXPECT_LE(site_.request_count(), 4u);
}

TEST_F(WebFetcherTest, BadUrlsAndClosedPorts) {
  Error e = error_of(request("ftp://127.0.0.1/x"));
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  EXPECT_THAT(e.message, HasSubstr("'ftp'"));
  e = error_of(request("http://"));
  EXPECT_EQ(e.code, ErrorCode::invalid_argument);
  uint16_t port = 0;
  {
    HttpSite gone;
    port = gone.port();
  }
  e = error_of(request(at(port, "/")));
  EXPECT_EQ(e.code, ErrorCode::unavailable);
  EXPECT_THAT(e.message, Not(HasSubstr("refused:")));
}

TEST_F(WebFetcherTest, CompletionRunsOnTheExecutorNeverInsideFetch) {
  // Even an answer known at once (a refused scheme) comes from the io thread.
  std::promise<std::thread::id> p;
  fetcher_.fetch(request("gopher://x/"),
                 [&](const Result<FetchResponse>&) { p.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(p.get_future().get(), thread_.get_id());
}

// --- End to end: the web_fetch capability over WebFetcher ---------------------------------------

TEST_F(WebFetcherTest, WebFetchCapabilityReadsThePageOrRefusesIt) {
  capabilities::Registry registry;
  ASSERT_TRUE(capabilities::register_builtins(registry).ok());
  capabilities::Capability* web_fetch = registry.find("web_fetch");
  ASSERT_NE(web_fetch, nullptr);
  site_.set("/old", SitePage::redirect("/article"));
  site_.set("/article", SitePage::html("<html><head><title>An &quot;article&quot;</title>"
                                       "<script>track()</script></head><body><h1>News</h1>"
                                       "<p>Hello,&nbsp;<b>world</b>.</p></body></html>"));
  capabilities::Services services;
  services.http = &fetcher_;
  capabilities::InvokeContext ctx;
  ctx.services = &services;
  const nlohmann::json args = {{"url", site_.url("/old")}};

  // The process's defaults: the 127.0.0.1 site is refused.
  auto refused = web_fetch->invoke(ctx, args);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::permission_denied);
  EXPECT_THAT(refused.error().message, HasSubstr("refused: 127.0.0.1 is a loopback address"));
  EXPECT_EQ(site_.request_count(), 0u);

  ctx.settings = {{"allow_private", true}};
  auto r = web_fetch->invoke(ctx, args);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)["title"], "An \"article\"");
  EXPECT_EQ((*r)["text"], "News\n\nHello, world.");
  EXPECT_EQ((*r)["final_url"], site_.url("/article"));
  EXPECT_EQ((*r)["status"], 200);
}

// --- The address classifier ---------------------------------------------------------------------

TEST(AddressClassifier, Table) {
  struct Case {
    const char* address;
    AddressKind kind;
  };
  const std::vector<Case> cases = {
      // IPv4
      {"8.8.8.8", AddressKind::global},
      {"1.1.1.1", AddressKind::global},
      {"93.184.216.34", AddressKind::global},
      {"127.0.0.1", AddressKind::loopback},
      {"127.255.255.254", AddressKind::loopback},
      {"10.0.0.1", AddressKind::private_network},
      {"10.255.255.255", AddressKind::private_network},
      {"11.0.0.1", AddressKind::global},
      {"172.16.0.1", AddressKind::private_network},
      {"172.31.255.255", AddressKind::private_network},
      {"172.15.255.255", AddressKind::global},
      {"172.32.0.1", AddressKind::global},
      {"192.168.0.1", AddressKind::private_network},
      {"192.169.0.1", AddressKind::global},
      {"169.254.0.1", AddressKind::link_local},
      {"169.254.169.254", AddressKind::metadata},
      {"169.254.169.253", AddressKind::link_local},
      {"0.0.0.0", AddressKind::unspecified},
      {"0.1.2.3", AddressKind::unspecified},
      {"100.64.0.1", AddressKind::shared},
      {"100.127.255.255", AddressKind::shared},
      {"100.63.255.255", AddressKind::global},
      {"100.128.0.0", AddressKind::global},
      {"224.0.0.1", AddressKind::multicast},
      {"239.255.255.250", AddressKind::multicast},
      {"255.255.255.255", AddressKind::broadcast},
      {"240.0.0.1", AddressKind::reserved},
      {"192.0.2.1", AddressKind::reserved},
      {"198.18.0.1", AddressKind::reserved},
      // IPv6
      {"::1", AddressKind::loopback},
      {"::", AddressKind::unspecified},
      {"fe80::1", AddressKind::link_local},
      {"febf:ffff::1", AddressKind::link_local},
      {"fec0::1", AddressKind::private_network},
      {"fc00::1", AddressKind::private_network},
      {"fd12:3456::1", AddressKind::private_network},
      {"fe00::1", AddressKind::global},
      {"ff02::1", AddressKind::multicast},
      {"2001:db8::1", AddressKind::reserved},
      {"100::1", AddressKind::reserved},
      {"2606:4700:4700::1111", AddressKind::global},
      {"2a00:1450:4001::200e", AddressKind::global},
      // IPv4 inside IPv6
      {"::ffff:127.0.0.1", AddressKind::loopback},
      {"::ffff:10.1.2.3", AddressKind::private_network},
      {"::ffff:169.254.169.254", AddressKind::metadata},
      {"::ffff:0.0.0.0", AddressKind::unspecified},
      {"::ffff:100.64.0.1", AddressKind::shared},
      {"::ffff:8.8.8.8", AddressKind::global},
      {"::127.0.0.1", AddressKind::loopback},            // IPv4-compatible
      {"64:ff9b::a00:1", AddressKind::private_network},  // NAT64 of 10.0.0.1
      {"64:ff9b::808:808", AddressKind::global},
      {"2002:7f00:1::1", AddressKind::loopback},     // 6to4 of 127.0.0.1
      {"2002:a9fe:a9fe::1", AddressKind::metadata},  // 6to4 of 169.254.169.254
      {"2002:808:808::1", AddressKind::global},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(classify_address(net::asio::ip::make_address(c.address)), c.kind) << c.address;
  }
}

TEST(AddressClassifier, SocketAddressesAndWhy) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(80);
  ASSERT_EQ(inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr), 1);
  std::string why;
  EXPECT_FALSE(public_address_only(reinterpret_cast<const sockaddr*>(&v4), why));
  EXPECT_EQ(why, "127.0.0.1 is a loopback address");

  ASSERT_EQ(inet_pton(AF_INET, "93.184.216.34", &v4.sin_addr), 1);
  why.clear();
  EXPECT_TRUE(public_address_only(reinterpret_cast<const sockaddr*>(&v4), why));
  EXPECT_TRUE(why.empty());

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:169.254.169.254", &v6.sin6_addr), 1);
  EXPECT_FALSE(public_address_only(reinterpret_cast<const sockaddr*>(&v6), why));
  EXPECT_EQ(why, "::ffff:169.254.169.254 is a link-local address (the cloud metadata service)");
  ASSERT_EQ(inet_pton(AF_INET6, "2606:4700:4700::1111", &v6.sin6_addr), 1);
  EXPECT_TRUE(public_address_only(reinterpret_cast<const sockaddr*>(&v6), why));

  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_FALSE(public_address_only(reinterpret_cast<const sockaddr*>(&unix_address), why));
  EXPECT_EQ(why, "not an IP address");
  EXPECT_FALSE(to_address(reinterpret_cast<const sockaddr*>(&unix_address)).has_value());

  for (auto kind : {AddressKind::global, AddressKind::loopback, AddressKind::private_network,
                    AddressKind::link_local, AddressKind::metadata, AddressKind::unspecified,
                    AddressKind::shared, AddressKind::multicast, AddressKind::broadcast,
                    AddressKind::reserved}) {
    EXPECT_FALSE(describe(kind).empty());
  }
}

}  // namespace web_fetcher_test
}  // namespace parley::bot::http
