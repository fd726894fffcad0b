#include "clients/mcp/stdio_transport.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace parley::bot::mcp {

namespace asio = net::asio;
using std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kReapPoll{20};
// After the child's stdin closes, how long it has to exit on its own before SIGTERM (the
// spec's order: close stdin, then SIGTERM, then SIGKILL).
constexpr std::chrono::milliseconds kStdinGrace{500};

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read, write;
};

// strerror's text without its thread-safety problem (glibc's strerrordesc_np).
std::string errno_text(int e) {
  const char* d = ::strerrordesc_np(e);
  return d != nullptr ? d : "error " + std::to_string(e);
}

Result<Pipe> make_pipe(const char* what) {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    return fail(ErrorCode::resource_exhausted,
                std::string("pipe for the child's ") + what + ": " + errno_text(errno));
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { posix_spawn_file_actions_init(&fa); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
};

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
};

// A write to a pipe whose reader died raises SIGPIPE, whose default action ends the whole
// process. Pipes have no MSG_NOSIGNAL, so the disposition is set to ignore — once, and only
// when nobody chose one; children get the default back (POSIX_SPAWN_SETSIGDEF).
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  });
}

std::vector<std::string> child_environment(const McpServerConfig& config) {
  std::map<std::string, std::string> env;
  for (const char* name : {"PATH", "HOME", "LANG"}) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): parley sets no variables after start-up
    if (const char* v = std::getenv(name)) env[name] = v;
  }
  for (const auto& [k, v] : config.env) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) {
    std::string entry = k;
    entry += '=';
    entry += v;
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

void ChildProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  // Last resort (the client was destroyed without stop()): no grace, and a blocking reap,
  // which SIGKILL makes short.
  signal_group(SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = 0;
}

void ChildProcess::signal_group(int signal) const {
  if (pid_ <= 0) return;
  if (::kill(-pid_, signal) != 0) ::kill(pid_, signal);
}

bool ChildProcess::try_reap(std::string& status) {
  if (pid_ <= 0) return true;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return false;
  if (r < 0) {
    status = std::string("could not be waited for: ") + errno_text(errno);
  } else if (WIFEXITED(st)) {
    status = "exited with status " + std::to_string(WEXITSTATUS(st));
  } else if (WIFSIGNALED(st)) {
    status = "killed by signal " + std::to_string(WTERMSIG(st)) + " (" +
             (::sigdescr_np(WTERMSIG(st)) != nullptr ? ::sigdescr_np(WTERMSIG(st)) : "?") + ")";
  } else {
    status = "ended";
  }
  // Strays the child left in its group (e.g. a wrapper's own children) go with it.
  ::kill(-pid_, SIGKILL);
  pid_ = 0;
  return true;
}

StdioTransport::StdioTransport(asio::strand<net::Executor> strand, McpServerConfig config,
                               TransportEvents events)
    : strand_(std::move(strand)),
      config_(std::move(config)),
      events_(std::move(events)),
      in_(strand_),
      out_(strand_),
      err_(strand_),
      reap_timer_(strand_),
      stderr_window_(steady_clock::now()) {}

Status StdioTransport::open() {
  ignore_sigpipe_once();
  auto in = make_pipe("stdin");
  if (!in) return fail(std::move(in).error());
  auto out = make_pipe("stdout");
  if (!out) return fail(std::move(out).error());
  auto err = make_pipe("stderr");
  if (!err) return fail(std::move(err).error());

  FileActions fa;
  posix_spawn_file_actions_adddup2(&fa.fa, in->read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa.fa, out->write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa.fa, err->write.get(), STDERR_FILENO);
  if (!config_.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&fa.fa, config_.cwd.c_str());
  }
  // Only stdin, stdout and stderr reach the child, whatever the process opened without
  // O_CLOEXEC (listening sockets, the database).
  posix_spawn_file_actions_addclosefrom_np(&fa.fa, STDERR_FILENO + 1);
  SpawnAttr attr;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  posix_spawnattr_setsigmask(&attr.attr, &none);
  posix_spawnattr_setsigdefault(&attr.attr, &defaults);
  // Its own process group: a terminal's Ctrl-C does not reach it, and stop() can signal the
  // child together with whatever it started.
  posix_spawnattr_setpgroup(&attr.attr, 0);
  posix_spawnattr_setflags(
      &attr.attr,
      static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));

  std::vector<std::string> args{config_.command};
  args.insert(args.end(), config_.args.begin(), config_.args.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = child_environment(config_);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc =
      ::posix_spawnp(&pid, config_.command.c_str(), &fa.fa, &attr.attr, argv.data(), envp.data());
  if (rc != 0) {
    return fail(ErrorCode::unavailable, "could not start '" + config_.command + "'" +
                                            (config_.cwd.empty() ? "" : " in " + config_.cwd) +
                                            ": " + errno_text(rc));
  }
  child_.adopt(pid);
  in_.assign(in->write.release());
  out_.assign(out->read.release());
  err_.assign(err->read.release());
  spdlog::info("mcp server '{}': started '{}' (pid {})", config_.name, config_.command, pid);
  read_stdout();
  read_stderr();
  return {};
}

void StdioTransport::send(nlohmann::json message, steady_clock::time_point /*deadline*/) {
  if (closing_ || finished_ || !in_.is_open()) return;
  std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  writes_.push_back(std::move(line));
  if (!writing_) write_next();
}

void StdioTransport::write_next() {
  if (writes_.empty() || !in_.is_open()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(in_, asio::buffer(writes_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      self->writes_.pop_front();
                      if (ec) {
                        // The reader side closed: the child is going away, and the stdout EOF
                        // that follows reports it.
                        self->writing_ = false;
                        self->writes_.clear();
                        return;
                      }
                      self->write_next();
                    });
}

void StdioTransport::read_stdout() {
  out_.async_read_some(asio::buffer(out_buf_),
                       [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                         if (n > 0) self->on_stdout(std::string_view(self->out_buf_.data(), n));
                         if (ec) {
                           self->begin_reap();
                           return;
                         }
                         self->read_stdout();
                       });
}

void StdioTransport::read_stderr() {
  err_.async_read_some(asio::buffer(err_buf_),
                       [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                         if (n > 0) self->on_stderr(std::string_view(self->err_buf_.data(), n));
                         if (ec) {
                           if (!self->err_line_.empty()) self->stderr_line(self->err_line_);
                           self->err_line_.clear();
                           return;
                         }
                         self->read_stderr();
                       });
}

void StdioTransport::on_stdout(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    if (!discarding_) {
      if (out_line_.size() + piece.size() > config_.max_message_bytes) {
        spdlog::warn("mcp server '{}': a line on stdout is longer than {} bytes: dropped",
                     config_.name, config_.max_message_bytes);
        discarding_ = true;
        out_line_.clear();
      } else {
        out_line_.append(piece);
      }
    }
    if (nl == std::string_view::npos) return;
    bytes.remove_prefix(nl + 1);
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    std::string line = std::move(out_line_);
    out_line_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto message = nlohmann::json::parse(line, nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
      // Servers that print banners to stdout break the protocol; the line is skipped, with
      // its start shown so that the culprit can be found.
      spdlog::warn("mcp server '{}': stdout line is not a JSON-RPC message, skipped: {:.120}",
                   config_.name, line);
      continue;
    }
    if (closing_ || finished_) continue;
    events_.on_message(std::move(message));
  }
}

void StdioTransport::on_stderr(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (err_line_.size() < 4096) err_line_.append(bytes.substr(0, std::min(nl, size_t{4096})));
    if (nl == std::string_view::npos) return;
    bytes.remove_prefix(nl + 1);
    stderr_line(err_line_);
    err_line_.clear();
  }
}

void StdioTransport::stderr_line(std::string_view line) {
  auto now = steady_clock::now();
  if (now - stderr_window_ >= std::chrono::minutes(1)) {
    if (stderr_dropped_ > 0) {
      spdlog::warn("mcp server '{}': {} stderr lines not logged (over {} a minute)", config_.name,
                   stderr_dropped_, config_.max_stderr_lines_per_minute);
    }
    stderr_window_ = now;
    stderr_logged_ = 0;
    stderr_dropped_ = 0;
  }
  if (stderr_logged_ >= config_.max_stderr_lines_per_minute) {
    ++stderr_dropped_;
    return;
  }
  ++stderr_logged_;
  spdlog::info("mcp server '{}' stderr: {}", config_.name, line);
}

void StdioTransport::close(std::function<void()> closed) {
  closed_ = std::move(closed);
  closing_ = true;
  if (finished_) {
    auto c = std::move(closed_);
    closed_ = {};
    if (c) asio::post(strand_, std::move(c));
    return;
  }
  // Closing stdin is the polite request to exit; begin_reap escalates if it is ignored.
  boost::system::error_code ignored;
  in_.close(ignored);
  begin_reap();
}

void StdioTransport::kill_now() {
  finished_ = true;
  closing_ = true;
  closed_ = {};
  child_.kill_and_reap();
}

void StdioTransport::begin_reap() {
  if (reaping_) return;
  reaping_ = true;
  reap_started_ = steady_clock::now();
  escalation_ = 0;
  poll_reap();
}

void StdioTransport::poll_reap() {
  std::string status;
  if (child_.try_reap(status)) {
    finish(status);
    return;
  }
  auto waited = steady_clock::now() - reap_started_;
  if (escalation_ == 0 && waited >= kStdinGrace) {
    child_.signal_group(SIGTERM);
    escalation_ = 1;
  } else if (escalation_ == 1 && waited >= kStdinGrace + config_.stop_grace) {
    spdlog::warn("mcp server '{}': still running {} ms after SIGTERM: SIGKILL", config_.name,
                 config_.stop_grace.count());
    child_.signal_group(SIGKILL);
    escalation_ = 2;
  }
  reap_timer_.expires_after(kReapPoll);
  reap_timer_.async_wait(
      [self = shared_from_this()](boost::system::error_code) { self->poll_reap(); });
}

void StdioTransport::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  boost::system::error_code ignored;
  in_.close(ignored);
  out_.close(ignored);
  // stderr stays open until its EOF (the group is gone: it comes at once), so that the last
  // lines a crashing server wrote — usually why — are logged.
  writes_.clear();
  spdlog::info("mcp server '{}': child {}", config_.name, status);
  if (closing_) {
    auto c = std::move(closed_);
    closed_ = {};
    if (c) c();
    return;
  }
  events_.on_closed("its process " + status, false);
}

}  // namespace parley::bot::mcp
