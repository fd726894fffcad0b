#include "parley/bot/clients/http/curl_multi.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace parley::bot::http {

namespace asio = net::asio;

std::string_view to_string(Failure f) noexcept {
  switch (f) {
    case Failure::none: return "none";
    case Failure::connect_timeout: return "connect timeout";
    case Failure::first_byte_timeout: return "first-byte timeout";
    case Failure::idle_timeout: return "idle timeout";
    case Failure::deadline: return "deadline exceeded";
    case Failure::connect: return "connection failed";
    case Failure::transport: return "transport error";
    case Failure::tls: return "TLS failure";
    case Failure::too_large: return "response too large";
    case Failure::aborted: return "aborted";
    case Failure::cancelled: return "cancelled";
  }
  return "unknown";
}

std::string Response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
};

void ensure_curl_global() { static const CurlGlobal kGlobal; }

struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const noexcept { curl_slist_free_all(s); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

std::chrono::microseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t);
}

}  // namespace

struct Transfer {
  Transfer(const asio::strand<net::Executor>& strand, Request r, OnBody b, net::Executor ex,
           OnDone d)
      : request(std::move(r)),
        on_body(std::move(b)),
        completion(std::move(ex)),
        done(std::move(d)),
        timer(strand) {}

  Request request;
  OnBody on_body;
  net::Executor completion;
  OnDone done;
  EasyPtr easy;
  SlistPtr headers;
  Response response;
  asio::steady_timer timer;
  Clock::time_point started = Clock::now();
  Clock::time_point last_activity = started;
  bool in_new_response = true;  // the next header line starts a response (status line)
  bool finished = false;
  Failure forced = Failure::none;  // set by our callbacks or timer before curl is told
  // Where to note that the first byte came: its deadline moves earlier (first byte → idle).
  std::vector<CURL*>* rearm = nullptr;
  size_t* open_sockets = nullptr;  // the multi's count, for open_socket
  std::string forced_message;
  std::string refused;  // why Request::allow_address refused addresses ("; "-separated)
  std::array<char, CURL_ERROR_SIZE> error_buffer{};
};

struct Socket {
  Socket(const asio::strand<net::Executor>& strand, int fd) : descriptor(strand, fd) {}
  asio::posix::stream_descriptor descriptor;
  int what = 0;  // CURL_POLL_IN / OUT / INOUT
  bool read_pending = false;
  bool write_pending = false;
  bool gone = false;
};

struct CurlMulti::Impl : std::enable_shared_from_this<CurlMulti::Impl> {
  Impl(const net::Executor& ex, Options o)
      : strand(asio::make_strand(ex)), timer(strand), options(o) {}

  asio::strand<net::Executor> strand;
  asio::steady_timer timer;
  Options options;
  // Sockets curl has open for connections (in use, connecting, or kept alive), counted by the
  // open and close socket callbacks; before `multi`, whose cleanup closes the last of them.
  size_t open_sockets = 0;
  static constexpr size_t kReuseWalkCostly = 256;
  MultiPtr multi;
  std::unordered_map<CURL*, std::shared_ptr<Transfer>> transfers;
  std::unordered_map<int, std::shared_ptr<Socket>> sockets;
  std::vector<CURL*> rearm;  // transfers whose first byte just came
  // curl's timeout (timer_callback): the wait armed, and a 0 ms timeout posted.
  Clock::time_point timer_due;
  bool timer_armed = false;
  uint64_t timer_generation = 0;
  bool run_posted = false;
  bool closed = false;
  std::atomic<size_t> active{0};
  std::atomic<size_t> socket_count{0};
  std::atomic<uint64_t> started{0};
  std::atomic<bool> accepting{true};

  void init() {
    ensure_curl_global();
    multi.reset(curl_multi_init());
    curl_multi_setopt(multi.get(), CURLMOPT_SOCKETFUNCTION, &Impl::socket_callback);
    curl_multi_setopt(multi.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi.get(), CURLMOPT_TIMERFUNCTION, &Impl::timer_callback);
    curl_multi_setopt(multi.get(), CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (options.max_connects > 0) {
      curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, options.max_connects);
    }
  }

  // --- curl callbacks (run inside curl_multi_* calls, on the strand) ----------------------

  static int socket_callback(CURL* /*easy*/, curl_socket_t fd, int what, void* userp,
                             void* socketp) noexcept {
    auto* self = static_cast<Impl*>(userp);
    try {
      if (what == CURL_POLL_REMOVE) {
        self->forget_socket(fd);
        return 0;
      }
      std::shared_ptr<Socket> sock;
      if (socketp != nullptr) {
        sock = self->sockets[fd];
      } else {
        sock = std::make_shared<Socket>(self->strand, fd);
        self->sockets[fd] = sock;
        self->socket_count.store(self->sockets.size(), std::memory_order_relaxed);
        curl_multi_assign(self->multi.get(), fd, sock.get());
      }
      if (!sock) return 0;
      sock->what = what;
      self->arm(sock, fd);
    } catch (const std::exception& e) {
      spdlog::error("curl socket callback: {}", e.what());
      return -1;
    }
    return 0;
  }

  // curl asks for its timeout several times per transfer. Arming a timer each time costs a
  // cancellation and a timerfd_settime; instead a timeout of 0 is a post, and a wait already
  // armed for an earlier time is left alone: when it fires, socket_action(TIMEOUT) finds
  // nothing due yet and curl asks again with what remains. Waking curl early is harmless (so is
  // the wait left armed when curl cancels its timeout); waking it late is not, and never happens.
  // Never call socket_action from inside this callback: the post or the wait defers it.
  static int timer_callback(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) return 0;
    if (timeout_ms == 0) {
      if (!self->run_posted) {
        self->run_posted = true;
        asio::post(self->strand, [w = self->weak_from_this()] {
          auto impl = w.lock();
          if (!impl) return;
          impl->run_posted = false;
          if (!impl->closed) impl->action(CURL_SOCKET_TIMEOUT, 0);
        });
      }
      return 0;
    }
    const auto due = Clock::now() + std::chrono::milliseconds(timeout_ms);
    if (self->timer_armed && self->timer_due <= due) return 0;
    self->timer_armed = true;
    self->timer_due = due;
    const uint64_t generation = ++self->timer_generation;
    self->timer.expires_at(due);
    self->timer.async_wait(
        [w = self->weak_from_this(), generation](const boost::system::error_code& ec) {
          auto impl = w.lock();
          if (!impl || generation != impl->timer_generation) return;  // re-armed since
          impl->timer_armed = false;
          if (ec || impl->closed) return;
          impl->action(CURL_SOCKET_TIMEOUT, 0);
        });
    return 0;
  }

  static size_t header_callback(char* data, size_t size, size_t n, void* userp) noexcept {
    auto* t = static_cast<Transfer*>(userp);
    const size_t len = size * n;
    std::string_view line(data, len);
    t->last_activity = Clock::now();
    try {
      if (!t->response.got_first_byte) {
        t->response.got_first_byte = true;
        t->response.first_byte = since(t->started);
        t->rearm->push_back(t->easy.get());
      }
      if (t->in_new_response && line.starts_with("HTTP/")) {
        t->response.headers.clear();  // a 100 Continue or a redirect's headers
        t->in_new_response = false;
      }
      if (line == "\r\n" || line == "\n") {
        t->in_new_response = true;
        return len;
      }
      const auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
          value.remove_prefix(1);
        }
        while (!value.empty() &&
               (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
          value.remove_suffix(1);
        }
        t->response.headers[std::move(name)] = std::string(value);
      }
    } catch (...) {
      return 0;  // out of memory: abort the transfer
    }
    return len;
  }

  static size_t write_callback(char* data, size_t size, size_t n, void* userp) noexcept {
    auto* t = static_cast<Transfer*>(userp);
    const size_t len = size * n;
    t->last_activity = Clock::now();
    if (t->response.status == 0) {
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &t->response.status);
    }
    t->response.body_bytes += len;
    try {
      if (t->on_body) {
        if (!t->on_body(t->response.status, std::string_view(data, len))) {
          t->forced = Failure::aborted;
          return 0;
        }
        return len;
      }
      if (t->response.body.size() + len > t->request.max_body_bytes) {
        t->response.body.append(data, t->request.max_body_bytes - t->response.body.size());
        t->forced = Failure::too_large;
        t->forced_message =
            "response body larger than " + std::to_string(t->request.max_body_bytes) + " bytes";
        return 0;
      }
      t->response.body.append(data, len);
    } catch (const std::exception& e) {
      t->forced = Failure::aborted;
      t->forced_message = std::string("body callback failed: ") + e.what();
      return 0;
    }
    return len;
  }

  // CURLOPT_OPENSOCKETFUNCTION and CURLOPT_CLOSESOCKETFUNCTION: what curl would do, counted.
  static curl_socket_t open_socket(void* clientp, curlsocktype /*purpose*/,
                                   curl_sockaddr* address) noexcept {
    const curl_socket_t fd =
        ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd != CURL_SOCKET_BAD) ++*static_cast<size_t*>(clientp);
    return fd;
  }
  static int close_socket(void* clientp, curl_socket_t fd) noexcept {
    auto* self = static_cast<Impl*>(clientp);
    if (self->open_sockets > 0) --self->open_sockets;
    return ::close(fd);
  }

  // The opening function of requests with allow_address: curl calls it for every address it
  // tries, so the check sees what is connected to, never just a name.
  static curl_socket_t open_checked_socket(void* clientp, curlsocktype purpose,
                                           curl_sockaddr* address) noexcept {
    auto* t = static_cast<Transfer*>(clientp);
    std::string why;
    try {
      sockaddr_storage copy{};
      std::memcpy(&copy, &address->addr,
                  std::min<size_t>(address->addrlen, sizeof(sockaddr_storage)));
      bool allowed = purpose == CURLSOCKTYPE_IPCXN;
      if (allowed) {
        allowed = t->request.allow_address(reinterpret_cast<const sockaddr*>(&copy), why);
      } else {
        why = "not an outgoing IP connection";
      }
      if (!allowed) {
        if (why.empty()) why = "the address is not allowed";
        if (t->refused.find(why) == std::string::npos) {
          t->refused += (t->refused.empty() ? "" : "; ") + why;
        }
        return CURL_SOCKET_BAD;
      }
    } catch (const std::exception& e) {
      t->refused = std::string("the address check failed: ") + e.what();
      return CURL_SOCKET_BAD;
    }
    return open_socket(t->open_sockets, purpose, address);
  }

  // --- socket watching ------------------------------------------------------------------

  void forget_socket(int fd) {
    auto it = sockets.find(fd);
    if (it == sockets.end()) return;
    auto sock = it->second;
    sockets.erase(it);
    socket_count.store(sockets.size(), std::memory_order_relaxed);
    sock->gone = true;
    boost::system::error_code ignored;
    sock->descriptor.cancel(ignored);
    (void)sock->descriptor.release();  // curl owns the fd and closes it
  }

  void arm(const std::shared_ptr<Socket>& sock, int fd) {
    if ((sock->what & CURL_POLL_IN) != 0 && !sock->read_pending) {
      sock->read_pending = true;
      sock->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_read,
          [w = weak_from_this(), sock, fd](const boost::system::error_code& ec) {
            sock->read_pending = false;
            auto impl = w.lock();
            if (ec || sock->gone || !impl || impl->closed) return;
            impl->on_ready(sock, fd, CURL_CSELECT_IN);
          });
    }
    if ((sock->what & CURL_POLL_OUT) != 0 && !sock->write_pending) {
      sock->write_pending = true;
      sock->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_write,
          [w = weak_from_this(), sock, fd](const boost::system::error_code& ec) {
            sock->write_pending = false;
            auto impl = w.lock();
            if (ec || sock->gone || !impl || impl->closed) return;
            impl->on_ready(sock, fd, CURL_CSELECT_OUT);
          });
    }
  }

  void on_ready(const std::shared_ptr<Socket>& sock, int fd, int event) {
    action(fd, event);
    if (sock->gone || closed) return;
    // Asio's epoll reactor is edge-triggered: if curl left bytes unread, no new edge comes.
    // Ask the kernel directly before waiting for one.
    if ((sock->what & CURL_POLL_IN) != 0 && event == CURL_CSELECT_IN) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        asio::post(strand, [w = weak_from_this(), sock, fd] {
          auto impl = w.lock();
          if (!impl || impl->closed || sock->gone) return;
          impl->on_ready(sock, fd, CURL_CSELECT_IN);
        });
        return;
      }
    }
    arm(sock, fd);
  }

  void action(curl_socket_t fd, int event) {
    int running = 0;
    curl_multi_socket_action(multi.get(), fd, event, &running);
    collect();
    for (CURL* easy : rearm) {
      if (auto it = transfers.find(easy); it != transfers.end()) arm_deadline(it->second);
    }
    rearm.clear();
  }

  void collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = transfers.find(msg->easy_handle);
      if (it == transfers.end()) continue;
      auto t = it->second;
      finish(t, msg->data.result);
    }
  }

  // --- transfers ------------------------------------------------------------------------

  void add(const std::shared_ptr<Transfer>& t) {
    if (closed) {
      t->forced = Failure::cancelled;
      t->forced_message = "the HTTP client is shut down";
      complete(t);
      return;
    }
    if (!configure(*t)) {
      complete(t);
      return;
    }
    transfers.emplace(t->easy.get(), t);
    active.store(transfers.size(), std::memory_order_relaxed);
    started.fetch_add(1, std::memory_order_relaxed);
    if (const CURLMcode rc = curl_multi_add_handle(multi.get(), t->easy.get()); rc != CURLM_OK) {
      transfers.erase(t->easy.get());
      active.store(transfers.size(), std::memory_order_relaxed);
      t->forced = Failure::transport;
      t->forced_message = curl_multi_strerror(rc);
      complete(t);
      return;
    }
    arm_deadline(t);
  }

  // Finished transfers' easy handles, reset, for the next ones: curl_easy_init allocates and
  // initialises ~20 KiB (the handle and its receive buffer) that curl_easy_reset keeps.
  static constexpr size_t kIdleEasyMax = 16;
  std::vector<EasyPtr> idle_easy;

  EasyPtr take_easy() {
    if (idle_easy.empty()) return EasyPtr(curl_easy_init());
    EasyPtr e = std::move(idle_easy.back());
    idle_easy.pop_back();
    return e;
  }

  void recycle(EasyPtr e) {
    if (!e || closed || idle_easy.size() >= kIdleEasyMax) return;
    curl_easy_reset(e.get());  // every option back to its default; the multi keeps connections
    idle_easy.push_back(std::move(e));
  }

  bool configure(Transfer& t) {
    t.easy = take_easy();
    if (!t.easy) {
      t.forced = Failure::transport;
      t.forced_message = "curl_easy_init failed";
      return false;
    }
    CURL* e = t.easy.get();
    const auto& r = t.request;
    t.rearm = &rearm;
    t.open_sockets = &open_sockets;
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer.data());
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    // Waiting for a connection that might multiplex only pays off where HTTP/2 can be
    // negotiated (TLS); for plain http:// it would hold a cold burst back a whole round trip.
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, r.url.starts_with("https://") ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::header_callback);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::write_callback);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);  // a connection outlives its transfer
    if (r.allow_address) {
      curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::open_checked_socket);
      curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t);
    } else {
      curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Impl::open_socket);
      curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &open_sockets);
    }
    if (r.allow_address) {
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);  // a cached connection was not checked
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(e, CURLOPT_PROXY, "");  // not even one from the environment
    }
    // curl (7.88) walks every connection to a host to find one to reuse, and walks them all
    // again to find the oldest idle one to close whenever a connection comes back to a full
    // cache: with thousands in use at once over HTTP/1.1, once per transfer each, those walks
    // took half the CPU of ten thousand conversations at once. When there are many connections
    // and none can be idle, the first is skipped; a connection opened beyond the cache's size
    // is closed when its transfer ends (as the cache would have done), never returned to it.
    // (So after such a burst the cache may start empty: the connections returned to it early
    // were closed while it was over its size.) HTTP/2 multiplexes: its few connections never
    // reach these bounds.
    if (open_sockets >= kReuseWalkCostly && open_sockets <= transfers.size()) {
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    }
    if (options.max_connects > 0 && open_sockets >= static_cast<size_t>(options.max_connects)) {
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    curl_slist* list = nullptr;
    auto append = [&](const char* h) {
      curl_slist* next = curl_slist_append(list, h);
      if (next != nullptr) list = next;
    };
    for (const auto& h : r.headers) append(h.c_str());
    append("Expect:");  // no 100-continue round trip for large bodies
    t.headers.reset(list);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    // POST, PUT and PATCH carry the body (sent as curl sends a POST's, under the method's name).
    if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    }
    if (r.method != "GET" && r.method != "POST") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    return true;
  }

  // One timer per transfer, armed for the nearest of its deadlines and re-checked lazily when
  // it fires (activity only moves a deadline later), so busy streams do not re-arm it per read.
  Clock::time_point next_expiry(const Transfer& t) const {
    const auto& r = t.request;
    const auto phase = t.response.got_first_byte ? t.last_activity + r.idle_timeout
                                                 : t.started + r.first_byte_timeout;
    return std::min(phase, r.deadline);
  }

  void arm_deadline(const std::shared_ptr<Transfer>& t) {
    t->timer.expires_at(next_expiry(*t));
    t->timer.async_wait([w = weak_from_this(), t](const boost::system::error_code& ec) {
      auto impl = w.lock();
      if (ec || !impl || t->finished) return;
      const auto now = Clock::now();
      if (now < impl->next_expiry(*t)) {
        impl->arm_deadline(t);
        return;
      }
      const auto& r = t->request;
      if (now >= r.deadline) {
        t->forced = Failure::deadline;
        t->forced_message = "the call's deadline passed";
      } else if (!t->response.got_first_byte) {
        t->forced = Failure::first_byte_timeout;
        t->forced_message = fmt::format("no response within {} ms", r.first_byte_timeout.count());
      } else {
        t->forced = Failure::idle_timeout;
        t->forced_message =
            fmt::format("nothing received for {} ms mid-response", r.idle_timeout.count());
      }
      impl->remove(t);
    });
  }

  void remove(const std::shared_ptr<Transfer>& t) {
    curl_multi_remove_handle(multi.get(), t->easy.get());
    transfers.erase(t->easy.get());
    active.store(transfers.size(), std::memory_order_relaxed);
    complete(t);
  }

  void finish(const std::shared_ptr<Transfer>& t, CURLcode rc) {
    if (t->forced == Failure::none && rc != CURLE_OK) {
      t->forced_message =
          t->error_buffer[0] != '\0' ? t->error_buffer.data() : curl_easy_strerror(rc);
      curl_off_t connect_us = 0;
      curl_easy_getinfo(t->easy.get(), CURLINFO_CONNECT_TIME_T, &connect_us);
      switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
          t->forced = connect_us == 0 ? Failure::connect_timeout : Failure::deadline;
          break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: t->forced = Failure::connect; break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS: t->forced = Failure::tls; break;
        default: t->forced = Failure::transport; break;
      }
      if (t->forced == Failure::connect && !t->refused.empty()) {
        t->forced_message = "refused: " + t->refused;
      }
    }
    remove(t);
  }

  void complete(const std::shared_ptr<Transfer>& t) {
    if (t->finished) return;
    t->finished = true;
    t->timer.cancel();
    Response& resp = t->response;
    if (t->easy && resp.status == 0) {
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &resp.status);
    }
    resp.failure = t->forced;
    resp.error = std::move(t->forced_message);
    resp.total = since(t->started);
    // Give curl's handle back now: the completion may be long in coming on a busy executor.
    recycle(std::move(t->easy));
    t->headers.reset();
    t->on_body = nullptr;
    asio::post(t->completion,
               [done = std::move(t->done), r = std::move(resp)]() mutable { done(std::move(r)); });
  }

  void close_all() {
    closed = true;
    accepting = false;
    timer.cancel();
    std::vector<std::shared_ptr<Transfer>> all;
    all.reserve(transfers.size());
    for (auto& [_, t] : transfers) all.push_back(t);
    // Oldest first: curl finds a connection to close by walking its host's list from the oldest
    // one, so thousands removed in any other order cost a walk of thousands each.
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a->started < b->started; });
    for (auto& t : all) {
      t->forced = Failure::cancelled;
      t->forced_message = "the HTTP client is shutting down";
      remove(t);
    }
    idle_easy.clear();
    // Removing the handles closed their connections; close the cached ones too.
    multi.reset();
    for (auto& [_, sock] : sockets) {
      sock->gone = true;
      boost::system::error_code ignored;
      sock->descriptor.cancel(ignored);
      (void)sock->descriptor.release();
    }
    sockets.clear();
    socket_count = 0;
  }
};

CurlMulti::CurlMulti(const net::Executor& executor, Options options)
    : impl_(std::make_shared<Impl>(executor, options)) {
  impl_->init();
}

CurlMulti::~CurlMulti() {
  if (!impl_->closed) impl_->close_all();
}

void CurlMulti::start(Request request, OnBody on_body, net::Executor completion, OnDone done) {
  auto t = std::make_shared<Transfer>(impl_->strand, std::move(request), std::move(on_body),
                                      std::move(completion), std::move(done));
  asio::post(impl_->strand, [impl = impl_, t] { impl->add(t); });
}

void CurlMulti::shutdown() {
  impl_->accepting = false;
  asio::dispatch(impl_->strand, [impl = impl_] {
    if (!impl->closed) impl->close_all();
  });
}

void CurlMulti::close_now() {
  impl_->accepting = false;
  if (!impl_->closed) impl_->close_all();
}

MultiStats CurlMulti::stats() const {
  return MultiStats{impl_->active.load(std::memory_order_relaxed),
                    impl_->socket_count.load(std::memory_order_relaxed),
                    impl_->started.load(std::memory_order_relaxed)};
}

net::asio::awaitable<Response> async_fetch(CurlMulti& multi, Request request, OnBody on_body) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Response)>(
      // The check misses the moves below in a generic lambda (llvm-project#43943).
      // NOLINTNEXTLINE(performance-unnecessary-value-param): both are moved into start()
      [&multi](auto handler, Request req, OnBody body) {
        // The handler is move-only and the completion a std::function (copyable): park it in a
        // slot. It is moved out and the slot emptied *before* it runs — as Asio's own
        // operations do — because resuming may finish the coroutine and free what a leftover
        // moved-from handler would still touch when destroyed (seen with Boost 1.74 and a
        // strand executor under ASan).
        using Handler = decltype(handler);
        net::Executor ex = asio::get_associated_executor(handler);
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        multi.start(std::move(req), std::move(body), ex, [slot](Response r) {
          Handler h = std::move(**slot);
          slot->reset();
          std::move(h)(std::move(r));
        });
      },
      asio::use_awaitable, std::move(request), std::move(on_body));
}

}  // namespace parley::bot::http
