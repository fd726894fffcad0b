#include "parley/bot/clients/http/web_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <exception>
#include <memory>

namespace parley::bot::http {

namespace asio = net::asio;
using capabilities::FetchRequest;
using capabilities::FetchResponse;

std::string_view describe(AddressKind kind) noexcept {
  switch (kind) {
    case AddressKind::global: return "a public address";
    case AddressKind::loopback: return "a loopback address";
    case AddressKind::private_network: return "a private address";
    case AddressKind::link_local: return "a link-local address";
    case AddressKind::metadata: return "a link-local address (the cloud metadata service)";
    case AddressKind::unspecified: return "an unspecified address";
    case AddressKind::shared: return "a shared (carrier-grade NAT) address";
    case AddressKind::multicast: return "a multicast address";
    case AddressKind::broadcast: return "the broadcast address";
    case AddressKind::reserved: return "a reserved address";
  }
  return "an unknown kind of address";
}

namespace {

// True when the first `bits` bits of `a` and `prefix` agree.
template <size_t N>
bool in_prefix(const std::array<unsigned char, N>& a, std::array<unsigned char, N> prefix,
               unsigned bits) {
  for (size_t i = 0; bits > 0; ++i, bits = bits >= 8 ? bits - 8 : 0) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<unsigned char>(0xFFu << (8 - take));
    if ((a[i] & mask) != (prefix[i] & mask)) return false;
  }
  return true;
}

using V4 = std::array<unsigned char, 4>;
using V6 = std::array<unsigned char, 16>;

AddressKind classify_v4(const V4& a) {
  struct Range {
    V4 prefix;
    unsigned bits;
    AddressKind kind;
  };
  // The most specific first: 169.254.169.254 is link-local too.
  static constexpr std::array kRanges = {
      Range{{169, 254, 169, 254}, 32, AddressKind::metadata},
      Range{{255, 255, 255, 255}, 32, AddressKind::broadcast},
      Range{{0, 0, 0, 0}, 8, AddressKind::unspecified},  // "this network"
      Range{{127, 0, 0, 0}, 8, AddressKind::loopback},
      Range{{10, 0, 0, 0}, 8, AddressKind::private_network},
      Range{{172, 16, 0, 0}, 12, AddressKind::private_network},
      Range{{192, 168, 0, 0}, 16, AddressKind::private_network},
      Range{{169, 254, 0, 0}, 16, AddressKind::link_local},
      Range{{100, 64, 0, 0}, 10, AddressKind::shared},
      Range{{224, 0, 0, 0}, 4, AddressKind::multicast},
      Range{{240, 0, 0, 0}, 4, AddressKind::reserved},
      Range{{192, 0, 0, 0}, 24, AddressKind::reserved},     // IETF protocol assignments
      Range{{192, 0, 2, 0}, 24, AddressKind::reserved},     // documentation
      Range{{198, 51, 100, 0}, 24, AddressKind::reserved},  // documentation
      Range{{203, 0, 113, 0}, 24, AddressKind::reserved},   // documentation
      Range{{198, 18, 0, 0}, 15, AddressKind::reserved},    // benchmarking
  };
  for (const auto& r : kRanges) {
    if (in_prefix(a, r.prefix, r.bits)) return r.kind;
  }
  return AddressKind::global;
}

V4 v4_at(const V6& a, size_t offset) {
  return {a[offset], a[offset + 1], a[offset + 2], a[offset + 3]};
}

AddressKind classify_v6(const V6& a) {
  const V6 zero{};
  V6 loopback{};
  loopback[15] = 1;
  if (a == zero) return AddressKind::unspecified;
  if (a == loopback) return AddressKind::loopback;
  // IPv4 inside IPv6: judged by the IPv4 address.
  V6 mapped{};
  mapped[10] = 0xFF;
  mapped[11] = 0xFF;
  if (in_prefix(a, mapped, 96) || in_prefix(a, zero, 96)) return classify_v4(v4_at(a, 12));
  if (in_prefix(a, V6{0x00, 0x64, 0xFF, 0x9B}, 96)) return classify_v4(v4_at(a, 12));  // NAT64
  if (in_prefix(a, V6{0x20, 0x02}, 16)) return classify_v4(v4_at(a, 2));               // 6to4
  if (in_prefix(a, V6{0xFC}, 7)) return AddressKind::private_network;
  if (in_prefix(a, V6{0xFE, 0x80}, 10)) return AddressKind::link_local;
  if (in_prefix(a, V6{0xFE, 0xC0}, 10)) return AddressKind::private_network;  // site-local
  if (in_prefix(a, V6{0xFF}, 8)) return AddressKind::multicast;
  if (in_prefix(a, V6{0x20, 0x01, 0x0D, 0xB8}, 32)) return AddressKind::reserved;  // docs
  if (in_prefix(a, V6{0x01, 0x00}, 64)) return AddressKind::reserved;              // discard-only
  return AddressKind::global;
}

struct UrlDeleter {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
using UrlPtr = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlStringDeleter {
  void operator()(char* s) const noexcept { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

struct ParsedUrl {
  std::string url;     // normalized, absolute
  std::string scheme;  // lower-case
};

// `reference` resolved against `base` (empty: `reference` must be absolute), as curl resolves a
// Location. Any scheme is accepted here, so that the caller can name the one it refuses.
Result<ParsedUrl> resolve_url(const std::string& base, const std::string& reference) {
  UrlPtr u(curl_url());
  if (!u) return fail(ErrorCode::internal, "curl_url failed");
  constexpr unsigned kFlags = CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE | CURLU_ALLOW_SPACE;
  if (!base.empty()) {
    if (const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, base.c_str(), kFlags);
        rc != CURLUE_OK) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("'{}' is not a valid URL ({})", base, curl_url_strerror(rc)));
    }
  }
  if (const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, reference.c_str(), kFlags);
      rc != CURLUE_OK) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("'{}' is not a valid URL ({})", reference, curl_url_strerror(rc)));
  }
  char* raw = nullptr;
  if (const CURLUcode rc = curl_url_get(u.get(), CURLUPART_URL, &raw, 0); rc != CURLUE_OK) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("'{}' is not a valid URL ({})", reference, curl_url_strerror(rc)));
  }
  const CurlString url(raw);
  raw = nullptr;
  if (const CURLUcode rc = curl_url_get(u.get(), CURLUPART_SCHEME, &raw, 0); rc != CURLUE_OK) {
    return fail(ErrorCode::invalid_argument,
                fmt::format("'{}' has no scheme ({})", reference, curl_url_strerror(rc)));
  }
  const CurlString scheme(raw);
  ParsedUrl out{url.get(), scheme.get()};
  for (char& c : out.scheme) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One fetch: its hops one after another, each started from the previous one's completion.
// Lives as long as a transfer or a posted completion holds it.
class Fetch : public std::enable_shared_from_this<Fetch> {
 public:
  using Done = std::function<void(Result<FetchResponse>)>;

  Fetch(CurlMulti& multi, net::Executor executor, AddressPolicy policy, FetchRequest request,
        Done done)
      : multi_(multi),
        executor_(std::move(executor)),
        policy_(std::move(policy)),
        request_(std::move(request)),
        done_(std::move(done)),
        deadline_(Clock::now() + request_.timeout) {}

  void start() {
    auto first = resolve_url("", request_.url);
    if (!first) {
      finish(fail(std::move(first).error()));
      return;
    }
    if (auto st = check_scheme(*first, nullptr); !st.ok()) {
      finish(fail(std::move(st).error()));
      return;
    }
    url_ = std::move(first->url);
    hop();
  }

 private:
  Status check_scheme(const ParsedUrl& target, const std::string* from) const {
    if (target.scheme == "http" || target.scheme == "https") return {};
    if (from == nullptr) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("{}: the scheme '{}' is not fetched (only http and https)",
                              target.url, target.scheme));
    }
    return fail(ErrorCode::permission_denied,
                fmt::format("{} redirected to {}: refused, the scheme '{}' is not fetched (only "
                            "http and https)",
                            *from, target.url, target.scheme));
  }

  void hop() {
    Request r;
    r.url = url_;
    r.headers = {fmt::format("User-Agent: {}", WebFetcher::kUserAgent),
                 "Accept: text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8"};
    r.connect_timeout = request_.timeout;
    r.first_byte_timeout = request_.timeout;
    r.idle_timeout = request_.timeout;
    r.deadline = deadline_;
    r.max_body_bytes = request_.max_bytes;
    auto refused = std::make_shared<bool>(false);
    if (!request_.allow_private) {
      r.allow_address = [refused, policy = policy_](const sockaddr* address, std::string& why) {
        if (policy(address, why)) return true;
        *refused = true;
        return false;
      };
    }
    multi_.start(std::move(r), {}, executor_, [self = shared_from_this(), refused](Response resp) {
      self->on_response(std::move(resp), *refused);
    });
  }

  void on_response(Response resp, bool refused) {
    Result<FetchResponse> result = fail(ErrorCode::internal, "unset");
    try {
      if (!answer(std::move(resp), refused, result)) return;  // another hop started
    } catch (const std::exception& e) {
      result = fail(ErrorCode::internal, fmt::format("{}: {}", url_, e.what()));
    }
    finish(std::move(result));
  }

  // Sets `result` and returns true when the fetch is over; false when it went on to another
  // hop.
  bool answer(Response resp, bool refused, Result<FetchResponse>& result) {
    if (resp.failure != Failure::none && resp.failure != Failure::too_large) {
      result = fail(failure_error(resp, refused));
      return true;
    }
    const std::string location = resp.header("location");
    if (is_redirect(resp.status) && !location.empty() && resp.failure == Failure::none) {
      if (redirects_ >= request_.max_redirects) {
        result = fail(ErrorCode::resource_exhausted,
                      fmt::format("{}: stopped after {} redirect(s); the last one, from {}, "
                                  "pointed to {}",
                                  request_.url, redirects_, url_, location));
        return true;
      }
      auto next = resolve_url(url_, location);
      if (!next) {
        result =
            fail(ErrorCode::invalid_argument, fmt::format("{} redirected to an invalid URL: {}",
                                                          url_, std::move(next).error().message));
        return true;
      }
      if (auto st = check_scheme(*next, &url_); !st.ok()) {
        result = fail(std::move(st).error());
        return true;
      }
      ++redirects_;
      url_ = std::move(next->url);
      hop();
      return false;
    }
    FetchResponse out;
    out.status = resp.status;
    out.final_url = url_;
    out.content_type = resp.header("content-type");
    out.body = std::move(resp.body);
    out.truncated = resp.failure == Failure::too_large;
    result = std::move(out);
    return true;
  }

  Error failure_error(const Response& resp, bool refused) const {
    switch (resp.failure) {
      case Failure::connect:
        if (refused) {
          return Error{ErrorCode::permission_denied, fmt::format("{}: {}", url_, resp.error)};
        }
        return Error{ErrorCode::unavailable,
                     fmt::format("{}: cannot connect: {}", url_, resp.error)};
      case Failure::connect_timeout:
      case Failure::first_byte_timeout:
      case Failure::idle_timeout:
      case Failure::deadline:
        return Error{ErrorCode::deadline_exceeded,
                     fmt::format("{}: no complete answer within {} ms ({})", url_,
                                 request_.timeout.count(), resp.error)};
      case Failure::cancelled:
        return Error{ErrorCode::cancelled, fmt::format("{}: {}", url_, resp.error)};
      case Failure::transport:
      case Failure::tls:
        return Error{ErrorCode::unavailable, fmt::format("{}: {}", url_, resp.error)};
      case Failure::none:
      case Failure::too_large:
      case Failure::aborted: break;
    }
    return Error{ErrorCode::internal,
                 fmt::format("{}: {}: {}", url_, to_string(resp.failure), resp.error)};
  }

  // Posted, so that `done` never runs inside fetch().
  void finish(Result<FetchResponse> result) {
    asio::post(executor_, [done = std::move(done_), r = std::move(result)]() mutable {
      try {
        done(std::move(r));
      } catch (const std::exception& e) {
        spdlog::error("web fetch: the completion threw: {}", e.what());
      }
    });
  }

  CurlMulti& multi_;
  net::Executor executor_;
  AddressPolicy policy_;
  FetchRequest request_;
  Done done_;
  Clock::time_point deadline_;
  std::string url_;  // the current hop's
  int redirects_ = 0;
};

}  // namespace

AddressKind classify_address(const asio::ip::address& address) {
  if (address.is_v4()) return classify_v4(address.to_v4().to_bytes());
  return classify_v6(address.to_v6().to_bytes());
}

std::optional<asio::ip::address> to_address(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    V4 bytes{};
    std::memcpy(bytes.data(), &in.sin_addr, bytes.size());
    return asio::ip::address(asio::ip::make_address_v4(bytes));
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    V6 bytes{};
    std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
    return asio::ip::address(asio::ip::make_address_v6(bytes));
  }
  return std::nullopt;
}

bool public_address_only(const sockaddr* address, std::string& why) {
  const auto ip = to_address(address);
  if (!ip) {
    why = "not an IP address";
    return false;
  }
  const AddressKind kind = classify_address(*ip);
  if (kind == AddressKind::global) return true;
  why = fmt::format("{} is {}", ip->to_string(), describe(kind));
  return false;
}

void WebFetcher::fetch(FetchRequest request,
                       std::function<void(Result<FetchResponse>)> done) const {
  std::make_shared<Fetch>(multi_, executor_, policy_, std::move(request), std::move(done))->start();
}

}  // namespace parley::bot::http
