#include "parley/bot/config/file_watcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace parley::bot::config {

namespace asio = net::asio;

struct FileWatcher::Impl : std::enable_shared_from_this<FileWatcher::Impl> {
  Impl(const net::Executor& ex, std::filesystem::path f, std::function<void()> cb,
       std::chrono::milliseconds d)
      : strand(asio::make_strand(ex)),
        stream(strand),
        timer(strand),
        file(std::move(f)),
        on_change(std::move(cb)),
        debounce(d) {}

  asio::strand<net::Executor> strand;
  asio::posix::stream_descriptor stream;
  asio::steady_timer timer;
  std::filesystem::path file;
  std::function<void()> on_change;
  std::chrono::milliseconds debounce;
  std::array<char, size_t{16} * 1024> buffer{};
  bool stopped = false;

  void read() {
    stream.async_read_some(
        asio::buffer(buffer),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          if (ec || self->stopped) return;
          self->parse(n);
          self->read();
        });
  }

  void parse(size_t n) {
    const std::string name = file.filename().string();
    bool ours = false;
    size_t at = 0;
    while (at + sizeof(inotify_event) <= n) {
      inotify_event ev{};
      std::memcpy(&ev, buffer.data() + at, sizeof ev);
      const char* event_name = buffer.data() + at + sizeof(inotify_event);
      if (ev.len > 0 && name == event_name) ours = true;
      if ((ev.mask & IN_Q_OVERFLOW) != 0) ours = true;  // events were lost: check anyway
      at += sizeof(inotify_event) + ev.len;
    }
    if (!ours) return;
    timer.expires_after(debounce);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      try {
        self->on_change();
      } catch (const std::exception& e) {
        spdlog::error("reloading {} failed: {}", self->file.string(), e.what());
      }
    });
  }
};

FileWatcher::FileWatcher(const net::Executor& executor, std::filesystem::path file,
                         std::function<void()> on_change, std::chrono::milliseconds debounce)
    : impl_(std::make_shared<Impl>(executor, std::move(file), std::move(on_change), debounce)) {}

void FileWatcher::trigger() {
  asio::post(impl_->strand, [impl = impl_] {
    if (!impl->stopped) impl->on_change();
  });
}

FileWatcher::~FileWatcher() { stop(); }

Status FileWatcher::start() {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return fail(ErrorCode::unavailable,
                fmt::format("inotify: {}", std::system_category().message(errno)));
  }
  auto dir = impl_->file.parent_path();
  if (dir.empty()) dir = ".";
  constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  if (inotify_add_watch(fd, dir.c_str(), kMask) < 0) {
    const int err = errno;
    ::close(fd);
    return fail(ErrorCode::unavailable, fmt::format("cannot watch {} for changes: {}", dir.string(),
                                                    std::system_category().message(err)));
  }
  impl_->stream.assign(fd);
  asio::post(impl_->strand, [impl = impl_] { impl->read(); });
  return {};
}

void FileWatcher::stop() {
  asio::post(impl_->strand, [impl = impl_] {
    if (impl->stopped) return;
    impl->stopped = true;
    boost::system::error_code ignored;
    impl->timer.cancel();
    impl->stream.close(ignored);
  });
}

}  // namespace parley::bot::config
