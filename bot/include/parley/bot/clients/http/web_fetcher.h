// WebFetcher: the HttpFetcher (capabilities/http_fetcher.h) behind web_fetch, over the
// process's one CurlMulti. It keeps that interface's contract:
//
// - Only http and https, for the first URL and for every redirect. curl never follows a
//   redirect itself: WebFetcher does, at most FetchRequest::max_redirects times, resolving each
//   Location against the URL that sent it (curl's URL API) and checking the result again.
// - Unless allow_private, every socket of every hop goes through public_address_only() from
//   CurlMulti's open-socket hook: the address checked is the one about to be connected to
//   (after DNS, for each address curl tries), so a name that resolves to 127.0.0.1 — or a
//   server redirecting to one — is refused just like the literal. Such transfers use no cached
//   connection and no proxy (see http::Request::allow_address).
// - The body is capped at max_bytes: a longer one is answered with its first max_bytes bytes
//   and truncated = true (not an error: the start of a long page is still worth reading).
// - FetchRequest::timeout bounds the whole fetch, redirects included (deadline_exceeded).
//
// Errors: permission_denied (an address or scheme refused), deadline_exceeded, unavailable
// (connection or transport failures), resource_exhausted (too many redirects), cancelled
// (CurlMulti shut down), invalid_argument (a URL that does not parse). Each names the URL.
//
// Thread safety: fetch() may be called from any thread. `done` runs on the executor given to
// the constructor, never inside fetch(). REQUIRES: the CurlMulti outlives every fetch started
// (until its `done` ran, or the io_context stopped for good).
#pragma once

#include <sys/socket.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "parley/base/result.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/bot/net.h"
#include "parley/capabilities/http_fetcher.h"

namespace parley::bot::http {

// What an IP address is, as far as the fetch guard cares. Everything but `global` is refused
// unless private addresses are allowed.
enum class AddressKind {
  global,           // ordinary public unicast
  loopback,         // 127.0.0.0/8, ::1
  private_network,  // 10/8, 172.16/12, 192.168/16, fc00::/7 (ULA), fec0::/10 (site-local)
  link_local,       // 169.254/16, fe80::/10
  metadata,         // 169.254.169.254: the cloud instance metadata service (link-local)
  unspecified,      // 0.0.0.0/8, ::
  shared,           // 100.64/10: carrier-grade NAT (and some clouds' internal services)
  multicast,        // 224/4, ff00::/8
  broadcast,        // 255.255.255.255
  reserved,         // 240/4, 192.0.0/24, 198.18/15, documentation ranges, 100::/64, 2001:db8::/32
};

// "a loopback address", "a private address", … for messages.
std::string_view describe(AddressKind kind) noexcept;

// Pure. IPv6 forms that carry an IPv4 address — IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
// (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) — are classified by that address.
AddressKind classify_address(const net::asio::ip::address& address);

// The IP address of an AF_INET or AF_INET6 socket address; nullopt for other families.
std::optional<net::asio::ip::address> to_address(const sockaddr* address);

// The guard WebFetcher hands to CurlMulti: true for a global address; else false with `why`
// saying what it is ("127.0.0.1 is a loopback address"). Non-IP families are refused.
bool public_address_only(const sockaddr* address, std::string& why);

// Decides whether a socket may connect to `address`; false with `why` refuses it.
using AddressPolicy = std::function<bool(const sockaddr* address, std::string& why)>;

class WebFetcher final : public capabilities::HttpFetcher {
 public:
  // `executor` runs the completions. `policy` guards every socket of a fetch that does not
  // allow private addresses; tests narrow it, the process keeps the default.
  WebFetcher(CurlMulti& multi, net::Executor executor, AddressPolicy policy = public_address_only)
      : multi_(multi), executor_(std::move(executor)), policy_(std::move(policy)) {}

  void fetch(capabilities::FetchRequest request,
             std::function<void(Result<capabilities::FetchResponse>)> done) const override;

  static constexpr std::string_view kUserAgent = "parley-web-fetch/0.1";

 private:
  CurlMulti& multi_;
  net::Executor executor_;
  AddressPolicy policy_;
};

}  // namespace parley::bot::http
