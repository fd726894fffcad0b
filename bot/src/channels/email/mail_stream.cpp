#include "channels/email/mail_stream.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include <array>

namespace parley::bot::channels::email {

namespace asio = net::asio;
using boost::system::error_code;

namespace {

constexpr size_t kMaxLine = 64 * 1024;

}  // namespace

bool loopback_address(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  error_code ec;
  const auto a = asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

MailStream::MailStream(const net::Executor& executor, asio::ssl::context& tls)
    : executor_(executor), tls_context_(tls), stream_(std::make_unique<Ssl>(Tcp(executor), tls)) {}

MailStream::~MailStream() = default;

asio::awaitable<Status> MailStream::connect(const std::string& host, uint16_t port, MailTls tls) {
  if (tls == MailTls::none && !loopback_address(host)) {
    co_return fail(ErrorCode::invalid_argument,
                   fmt::format("{}: an unencrypted connection (tls: none) is allowed only to a "
                               "loopback address; use tls: starttls or implicit",
                               host));
  }
  host_ = host;
  buffer_.clear();
  tls_active_ = false;
  stream_ = std::make_unique<Ssl>(Tcp(executor_), tls_context_);  // a fresh TLS session
  asio::ip::tcp::resolver resolver(stream_->get_executor());
  error_code ec;
  const auto endpoints = co_await resolver.async_resolve(
      host, std::to_string(port), asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return fail(ErrorCode::unavailable, fmt::format("resolving {}: {}", host, ec.message()));
  auto& tcp = stream_->next_layer();
  tcp.expires_after(timeout_);
  co_await tcp.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return fail(ErrorCode::unavailable,
                   fmt::format("connecting to {}:{}: {}", host, port, ec.message()));
  }
  if (tls == MailTls::implicit) {
    Status st = co_await start_tls();
    co_return st;
  }
  co_return Status{};
}

asio::awaitable<Status> MailStream::start_tls() {
  // SSL_set_tlsext_host_name, without the macro's C cast.
  if (SSL_ctrl(stream_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               static_cast<void*>(const_cast<char*>(host_.c_str()))) != 1) {
    co_return fail(ErrorCode::unavailable, "TLS: cannot set the server name");
  }
  stream_->set_verify_callback(asio::ssl::host_name_verification(host_));
  stream_->next_layer().expires_after(timeout_);
  error_code ec;
  co_await stream_->async_handshake(asio::ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return fail(ErrorCode::unavailable, fmt::format("TLS with {}: {}", host_, ec.message()));
  tls_active_ = true;
  buffer_.clear();  // nothing read before the handshake may be trusted
  co_return Status{};
}

asio::awaitable<Result<size_t>> MailStream::fill() {
  std::array<char, 16 * 1024> chunk{};
  error_code ec;
  stream_->next_layer().expires_after(timeout_);
  size_t n = 0;
  if (tls_active_) {
    n = co_await stream_->async_read_some(asio::buffer(chunk),
                                          asio::redirect_error(asio::use_awaitable, ec));
  } else {
    n = co_await stream_->next_layer().async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    const std::string what = ec == boost::beast::error::timeout ? "no answer in time"
                             : ec == asio::error::eof           ? "the server closed the connection"
                                                                : ec.message();
    co_return fail(ErrorCode::unavailable, fmt::format("{}: {}", host_, what));
  }
  buffer_.append(chunk.data(), n);
  co_return n;
}

asio::awaitable<Result<std::string>> MailStream::read_line() {
  for (;;) {
    if (const size_t lf = buffer_.find('\n'); lf != std::string::npos) {
      std::string line = buffer_.substr(0, lf);
      buffer_.erase(0, lf + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      co_return line;
    }
    if (buffer_.size() > kMaxLine) {
      co_return fail(ErrorCode::invalid_argument,
                     fmt::format("{}: a line longer than {} bytes", host_, kMaxLine));
    }
    auto got = co_await fill();
    if (!got) co_return fail(std::move(got).error());
  }
}

asio::awaitable<Result<std::string>> MailStream::read_exact(size_t n) {
  while (buffer_.size() < n) {
    auto got = co_await fill();
    if (!got) co_return fail(std::move(got).error());
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  co_return out;
}

asio::awaitable<Status> MailStream::write(const std::string& data) {
  error_code ec;
  stream_->next_layer().expires_after(timeout_);
  if (tls_active_) {
    co_await asio::async_write(*stream_, asio::buffer(data),
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {
    co_await asio::async_write(stream_->next_layer(), asio::buffer(data),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) co_return fail(ErrorCode::unavailable, fmt::format("{}: {}", host_, ec.message()));
  co_return Status{};
}

void MailStream::close() {
  error_code ec;
  stream_->next_layer().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_->next_layer().close();
}

}  // namespace parley::bot::channels::email
