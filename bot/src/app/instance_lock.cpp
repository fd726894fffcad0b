#include "app/instance_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace parley::bot::app {

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status InstanceLock::acquire(const std::filesystem::path& db) {
  path_ = db.string() + ".lock";
  if (db.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(db.parent_path(), ec);
  }
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    return fail(ErrorCode::unavailable,
                fmt::format("cannot open {}: {}", path_, std::system_category().message(errno)));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    std::array<char, 32> pid{};
    const auto n = ::pread(fd_, pid.data(), pid.size() - 1, 0);
    const std::string who =
        n > 0 ? std::string(pid.data(), static_cast<size_t>(n)) : std::string("?");
    holder_ = who.substr(0, who.find('\n'));
    ::close(fd_);
    fd_ = -1;
    return fail(ErrorCode::already_exists,
                fmt::format("another parley (pid {}) is already serving {}; two processes on one "
                            "bot would answer every message twice. Stop it first, or use "
                            "`parley ask` beside it.",
                            holder_, db.string()));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)::pwrite(fd_, pid.data(), pid.size(), 0);
  return {};
}

}  // namespace parley::bot::app
