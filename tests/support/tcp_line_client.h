// A blocking TCP client for line protocols (SMTP, LMTP, IMAP) in tests: connects to 127.0.0.1,
// sends bytes, reads CRLF- or LF-terminated lines; every read and write has a deadline. Failures
// (refused, timed out, closed by the server) throw std::runtime_error naming what was awaited.
//
// Ownership: owns its socket (closed when destroyed). Thread safety: one thread at a time.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley::testing {

// A file descriptor, closed when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

inline sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Whether something accepts TCP connections on 127.0.0.1:port (the connection is closed at once).
inline bool loopback_port_open(std::uint16_t port) {
  const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = loopback_address(port);
  return fd.valid() && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
}

class TcpLineClient {
 public:
  explicit TcpLineClient(std::uint16_t port,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), port_(port) {
    if (!fd_.valid()) fail("socket");
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const sockaddr_in a = loopback_address(port);
    if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      fail("connect");
    }
  }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("send");
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Sends `line` and CRLF.
  void send_line(std::string_view line) { send(std::string(line) + "\r\n"); }

  // The next line, without its line end.
  std::string read_line() {
    for (;;) {
      const size_t eol = buffer_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) throw std::runtime_error(where() + ": closed by the server" + pending());
      if (n < 0) fail("recv");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    const int e = errno;
    throw std::runtime_error(where() + ": " + what + ": " +
                             (e == EAGAIN ? "timed out" : std::system_category().message(e)) +
                             pending());
  }
  [[nodiscard]] std::string where() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string pending() const {
    return buffer_.empty() ? "" : " (unfinished line: " + buffer_ + ")";
  }

  UniqueFd fd_;
  std::uint16_t port_;
  std::string buffer_;
};

}  // namespace parley::testing
