#include "parley/bot/channels/console/console.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>

#include "parley/base/text.h"

namespace parley::bot::channels {

namespace asio = net::asio;

namespace {

// Writes all of `bytes` to `fd`; 0, or the errno of the failure. Waits out EAGAIN: a terminal's
// descriptors often share one open file description, and something may have made it
// non-blocking.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 1000);
    } else {
      return n < 0 ? errno : EIO;
    }
  }
  return 0;
}

// A dup of `fd` that is closed on exec; -1 with errno on failure.
int dup_cloexec(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

// LineEditor: libedit's readline emulation in callback mode on one terminal, as an RAII guard
// over libedit's process-global state (the editor, its streams, the history, the line
// callback). Only one exists at a time: open() refuses a second. While it exists the terminal
// is in libedit's raw mode; the destructor puts it back and erases the prompt line.
//
// Lines are handed to `sink` from inside read_char(); the sink must not destroy the editor
// (libedit still runs after it returns): it queues the line, and the owner acts on it after
// read_char() returns.
// Thread safety: none; the owner calls it from one strand.
class LineEditor {
 public:
  using Sink = std::function<void(std::optional<std::string>)>;  // nullopt: end of input

  static Result<std::unique_ptr<LineEditor>> open(int in_fd, int out_fd, const std::string& prompt,
                                                  const std::filesystem::path& history, Sink sink) {
    bool expected = false;
    if (!in_use.compare_exchange_strong(expected, true)) {
      return fail(ErrorCode::already_exists,
                  "another line-editing console is open (libedit supports one per process)");
    }
    std::unique_ptr<LineEditor> e(new LineEditor(out_fd, prompt, history, std::move(sink)));
    const int in = dup_cloexec(in_fd);
    const int out = dup_cloexec(out_fd);
    e->in_ = in >= 0 ? ::fdopen(in, "r") : nullptr;
    e->out_ = out >= 0 ? ::fdopen(out, "w") : nullptr;
    if (e->in_ == nullptr || e->out_ == nullptr) {
      const int err = errno;
      if (e->in_ == nullptr && in >= 0) ::close(in);
      if (e->out_ == nullptr && out >= 0) ::close(out);
      return fail(ErrorCode::unavailable,
                  fmt::format("cannot set up line editing on the terminal: {}",
                              std::system_category().message(err)));
    }
    rl_instream = e->in_;
    rl_outstream = e->out_;
    rl_readline_name = "parley";
    rl_catch_signals = 0;  // the process handles SIGINT/SIGTERM (and stops the channel)
    if (rl_initialize() != 0) {
      rl_instream = nullptr;
      rl_outstream = nullptr;
      return fail(ErrorCode::unavailable,
                  "cannot set up line editing: libedit's rl_initialize failed");
    }
    // rl_initialize ended the previous editor (restoring the terminal through its streams):
    // those can be closed now.
    close_retired();
    using_history();
    if (!history.empty()) {
      stifle_history(kHistoryEntries);
      std::error_code ec;
      if (std::filesystem::exists(history, ec) && read_history(history.c_str()) != 0) {
        spdlog::warn("could not read the console history from {}", history.string());
      }
    }
    current = e.get();
    rl_callback_handler_install(e->prompt_.c_str(), &LineEditor::on_line);
    e->installed_ = true;
    return e;
  }

  ~LineEditor() {
    if (installed_) {
      rl_callback_handler_remove();  // back to the terminal's normal mode
      current = nullptr;
      // libedit redraws the prompt after every line; erase it so that what follows starts clean.
      (void)write_all(out_fd_, "\r\x1b[K");
      std::fflush(out_);
      // libedit's editor still refers to these streams until the next rl_initialize.
      close_retired();
      retired_in = in_;
      retired_out = out_;
    } else {
      if (in_ != nullptr) std::fclose(in_);
      if (out_ != nullptr) std::fclose(out_);
    }
    in_use = false;
  }

  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Reads what one key sent; call when the terminal is readable.
  void read_char() {
    line_done_ = false;
    rl_callback_read_char();
    if (line_done_) {
      // Start the next line afresh. libedit versions differ in whether the callback interface
      // clears the finished line and prints the prompt again; leaving and re-entering its
      // unbuffered mode does both in every version.
      rl_callback_handler_remove();
      rl_callback_handler_install(prompt_.c_str(), &LineEditor::on_line);
    }
  }

  // Writes `text` (whole lines) where the prompt was, then redraws the prompt and the line
  // being edited below it. 0, or the errno of the failed write.
  int print_above(std::string_view text) {
    std::fflush(out_);
    std::string bytes = "\r\x1b[K";
    bytes += text;
    const int err = write_all(out_fd_, bytes);
    rl_forced_update_display();
    return err;
  }

 private:
  static constexpr int kHistoryEntries = 1000;

  LineEditor(int out_fd, std::string prompt, std::filesystem::path history, Sink sink)
      : out_fd_(out_fd),
        prompt_(std::move(prompt)),
        history_(std::move(history)),
        sink_(std::move(sink)) {}

  static void close_retired() {
    if (retired_in != nullptr) std::fclose(retired_in);
    if (retired_out != nullptr) std::fclose(retired_out);
    retired_in = nullptr;
    retired_out = nullptr;
  }

  // libedit's line callback: `line` is malloc'ed (ours to free), null at end of input.
  static void on_line(char* line) {
    const std::unique_ptr<char, decltype(&std::free)> owned(line, &std::free);
    LineEditor* self = current;
    if (self == nullptr) return;
    if (line == nullptr) {
      self->sink_(std::nullopt);
      return;
    }
    if (!trim(line).empty() && !self->history_.empty()) {
      add_history(line);
      if (write_history(self->history_.c_str()) != 0 && !self->history_warned_) {
        self->history_warned_ = true;
        spdlog::warn("could not save the console history to {}", self->history_.string());
      }
    }
    self->line_done_ = true;
    self->sink_(std::string(line));
  }

  static inline std::atomic<bool> in_use{false};
  static inline LineEditor* current = nullptr;  // the one editor (see in_use)
  static inline FILE* retired_in = nullptr;     // the streams of the last editor, still
  static inline FILE* retired_out = nullptr;    // referred to by libedit's globals

  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  int out_fd_;
  std::string prompt_;
  std::filesystem::path history_;
  Sink sink_;
  bool installed_ = false;
  bool line_done_ = false;  // read_char() finished a line
  bool history_warned_ = false;
};

// Writes `files` under `dir` as "<outbox id>-<name>" (owner-only: an export holds everything the
// bot knows about someone), each through a temporary file and a rename, and returns a line per
// file for the console: where it is, or why it is not.
std::string save_files(const std::filesystem::path& dir, int64_t outbox_id,
                       const std::vector<storage::OutboxFile>& files) {
  std::string lines;
  for (const auto& f : files) {
    if (dir.empty()) {
      lines += fmt::format("\n📎 {} ({} bytes) was not saved: no folder for files is set",
                           f.filename, f.content.size());
      continue;
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (!ec) {
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
    const auto path = dir / fmt::format("{}-{}", outbox_id, f.filename);
    const auto temp = dir / fmt::format(".{}-{}.part", outbox_id, f.filename);
    std::string why;
    if (ec) {
      why = fmt::format("cannot make {}: {}", dir.string(), ec.message());
    } else {
      const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) {
        why = fmt::format("cannot write {}: {}", temp.string(), std::strerror(errno));
      } else {
        int err = write_all(fd, f.content);
        if (err == 0 && ::fsync(fd) != 0) err = errno;
        ::close(fd);
        if (err == 0 && ::rename(temp.c_str(), path.c_str()) != 0) err = errno;
        if (err != 0) {
          why = fmt::format("cannot write {}: {}", path.string(), std::strerror(err));
          ::unlink(temp.c_str());
        }
      }
    }
    if (why.empty()) {
      lines += fmt::format("\n📎 {}: {} ({} bytes)", f.filename, path.string(), f.content.size());
    } else {
      spdlog::error("console: file {} of reply {} not saved: {}", f.filename, outbox_id, why);
      lines += fmt::format("\n📎 {} was not saved: {}", f.filename, why);
    }
  }
  return lines;
}

}  // namespace

struct ConsoleChannel::State : std::enable_shared_from_this<State> {
  enum class Mode { editor, stream, file };

  State(const net::Executor& executor, ConsoleOptions o)
      : strand(asio::make_strand(executor)), options(std::move(o)) {}
  ~State() {
    close_input();
    if (out_fd >= 0) ::close(out_fd);
  }

  Status open();
  void read_next();
  void on_readable(const boost::system::error_code& ec);
  void on_read(const boost::system::error_code& ec, size_t n);
  void read_file_chunk();
  void take_lines();
  void handle_line(std::string line);
  void end_input();
  void close_input();
  int print(std::string_view text);
  void print_error(const std::string& what);
  // One line through the bot, and its reply onto the console.
  static asio::awaitable<void> deliver(std::shared_ptr<State> self,
                                       pipeline::InboundMessage message);

  asio::strand<net::Executor> strand;
  const ConsoleOptions options;
  Inbox* inbox = nullptr;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> editing{false};
  std::atomic<size_t> active{0};
  // Held while a delivery starts and while on_eof runs; stop() takes it, so that once stop()
  // returns neither happens again. Recursive: on_eof may call stop().
  std::recursive_mutex gate;
  int out_fd = -1;  // a dup of options.output_fd; set by open(), then read-only

  // Only on the strand (or in open(), before reading starts):
  Mode mode = Mode::stream;
  std::optional<asio::posix::stream_descriptor> in;
  int file_fd = -1;
  std::string buffer;  // read, not yet split into lines (stream and file modes)
  std::unique_ptr<LineEditor> editor;
  std::deque<std::optional<std::string>> typed;  // lines the editor handed over
  bool ended = false;
};

Status ConsoleChannel::State::open() {
  const int in_fd = options.input_fd;
  struct stat st {};
  if (::fstat(in_fd, &st) != 0) {
    return fail(ErrorCode::unavailable, fmt::format("console input (fd {}): {}", in_fd,
                                                    std::system_category().message(errno)));
  }
  out_fd = dup_cloexec(options.output_fd);
  if (out_fd < 0) {
    return fail(ErrorCode::unavailable, fmt::format("console output (fd {}): {}", options.output_fd,
                                                    std::system_category().message(errno)));
  }
  const int dup_in = dup_cloexec(in_fd);
  if (dup_in < 0) {
    return fail(ErrorCode::unavailable, fmt::format("console input (fd {}): {}", in_fd,
                                                    std::system_category().message(errno)));
  }
  if (S_ISREG(st.st_mode)) {
    mode = Mode::file;
    file_fd = dup_in;
    return {};
  }
  if (options.line_editing && ::isatty(in_fd) == 1 && ::isatty(options.output_fd) == 1) {
    auto e = LineEditor::open(
        in_fd, out_fd, options.prompt, options.history_file,
        [this](std::optional<std::string> line) { typed.push_back(std::move(line)); });
    if (!e) {
      ::close(dup_in);
      return fail(e.error());
    }
    editor = std::move(*e);
    editing = true;
    mode = Mode::editor;
  } else {
    mode = Mode::stream;
  }
  boost::system::error_code ec;
  in.emplace(strand);
  in->assign(dup_in, ec);
  if (ec == boost::system::errc::operation_not_permitted && mode == Mode::stream) {
    // epoll refuses this kind of file (/dev/null, …): ordinary reads do.
    in.reset();
    mode = Mode::file;
    file_fd = dup_in;
    return {};
  }
  if (ec) {
    in.reset();
    ::close(dup_in);
    editor.reset();
    editing = false;
    return fail(ErrorCode::unavailable,
                fmt::format("console input (fd {}): {}", in_fd, ec.message()));
  }
  return {};
}

void ConsoleChannel::State::read_next() {
  if (stopped || ended) return;
  auto self = shared_from_this();
  switch (mode) {
    case Mode::editor:
      in->async_wait(asio::posix::stream_descriptor::wait_read,
                     asio::bind_executor(strand, [self](const boost::system::error_code& ec) {
                       self->on_readable(ec);
                     }));
      break;
    case Mode::stream:
      asio::async_read_until(
          *in, asio::dynamic_buffer(buffer, ConsoleChannel::kMaxLineBytes), '\n',
          asio::bind_executor(strand, [self](const boost::system::error_code& ec, size_t n) {
            self->on_read(ec, n);
          }));
      break;
    case Mode::file:
      // One chunk per handler, so that send() and stop() get their turn on the strand.
      asio::post(strand, [self] { self->read_file_chunk(); });
      break;
  }
}

void ConsoleChannel::State::on_readable(const boost::system::error_code& ec) {
  if (ec || stopped || ended || !editor) return;
  int available = 0;
  if (::ioctl(in->native_handle(), FIONREAD, &available) == 0 && available == 0) {
    end_input();  // readable with nothing to read: the terminal hung up
    return;
  }
  editor->read_char();
  while (!typed.empty() && !ended) {
    auto line = std::move(typed.front());
    typed.pop_front();
    if (!line) {
      end_input();  // Ctrl-D on an empty line
      break;
    }
    handle_line(std::move(*line));
  }
  read_next();
}

void ConsoleChannel::State::on_read(const boost::system::error_code& ec, size_t n) {
  if (ec == asio::error::operation_aborted || stopped || ended) return;
  if (!ec) {
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    handle_line(std::move(line));
    read_next();
    return;
  }
  if (ec == asio::error::eof) {
    if (!buffer.empty()) handle_line(std::exchange(buffer, {}));  // a last line without newline
  } else if (ec == asio::error::not_found) {
    print_error(fmt::format("an input line is longer than {} bytes; input closed",
                            ConsoleChannel::kMaxLineBytes));
  } else {
    print_error(fmt::format("reading the console input failed: {}; input closed", ec.message()));
  }
  end_input();
}

void ConsoleChannel::State::read_file_chunk() {
  if (stopped || ended || file_fd < 0) return;
  std::array<char, 16384> chunk{};
  ssize_t n = 0;
  do {
    n = ::read(file_fd, chunk.data(), chunk.size());
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    buffer.append(chunk.data(), static_cast<size_t>(n));
    take_lines();
    if (!ended && buffer.size() > ConsoleChannel::kMaxLineBytes) {
      print_error(fmt::format("an input line is longer than {} bytes; input closed",
                              ConsoleChannel::kMaxLineBytes));
      end_input();
    }
    read_next();
    return;
  }
  if (n == 0) {
    if (!buffer.empty()) handle_line(std::exchange(buffer, {}));
  } else {
    print_error(fmt::format("reading the console input failed: {}; input closed",
                            std::system_category().message(errno)));
  }
  end_input();
}

void ConsoleChannel::State::take_lines() {
  size_t start = 0;
  for (size_t nl = buffer.find('\n'); nl != std::string::npos && !ended;
       nl = buffer.find('\n', start)) {
    handle_line(buffer.substr(start, nl - start));
    start = nl + 1;
  }
  buffer.erase(0, start);
}

void ConsoleChannel::State::handle_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto text = trim(line);
  if (text.empty()) return;
  for (const auto& quit : options.quit_lines) {
    if (text == quit) {
      end_input();
      return;
    }
  }
  const std::lock_guard lock(gate);
  if (stopped) return;
  pipeline::InboundMessage message;
  message.channel = "console";
  message.conversation = options.conversation;
  message.author = options.user;
  message.author_name = options.user_name.empty() ? options.user : options.user_name;
  message.text = std::move(line);
  active.fetch_add(1);
  auto self = shared_from_this();
  asio::co_spawn(strand, deliver(self, std::move(message)), [self](const std::exception_ptr& e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("console: delivering a message failed: {}", ex.what());
        self->print_error(fmt::format("that message could not be handled: {}", ex.what()));
      }
    }
    self->active.fetch_sub(1);
  });
}

void ConsoleChannel::State::end_input() {
  if (ended) return;
  ended = true;
  close_input();
  const std::lock_guard lock(gate);
  if (!stopped && options.on_eof) options.on_eof();
}

void ConsoleChannel::State::close_input() {
  editor.reset();
  editing = false;
  typed.clear();
  if (in) {
    boost::system::error_code ignored;
    in->close(ignored);
    in.reset();
  }
  if (file_fd >= 0) {
    ::close(file_fd);
    file_fd = -1;
  }
}

int ConsoleChannel::State::print(std::string_view text) {
  std::string line(text);
  if (line.empty() || line.back() != '\n') line += '\n';
  if (editor) return editor->print_above(line);
  return write_all(out_fd, line);
}

void ConsoleChannel::State::print_error(const std::string& what) {
  if (const int err = print("parley: " + what); err != 0) {
    spdlog::error("console: cannot write to the output: {} (the message was: {})",
                  std::system_category().message(err), what);
  }
}

asio::awaitable<void> ConsoleChannel::State::deliver(std::shared_ptr<State> self,
                                                     pipeline::InboundMessage message) {
  Inbox& inbox = *self->inbox;
  const pipeline::TurnResult r = co_await inbox.deliver(message);
  if (r.error && r.outbox_id == 0) {
    self->print_error(
        fmt::format("that message was not taken (nothing was stored): {}", r.error->message));
    co_return;
  }
  if (r.outbox_id == 0) {
    // A refusal (its reply, unless the sender was already told) or a duplicate (nothing new).
    if (r.refused && !r.reply.empty()) (void)self->print(r.reply);
    co_return;
  }
  if (!r.primary) co_return;  // merged into a later message's turn, which prints the reply
  co_await inbox.sending(r.outbox_id);
  const std::string files = save_files(self->options.files_dir, r.outbox_id, r.files);
  if (const int err = self->print(r.reply + files); err != 0) {
    // Not shown: the entry stays begun (never sent twice); say so in the log.
    spdlog::error("console: reply {} could not be written: {}", r.outbox_id,
                  std::system_category().message(err));
    co_return;
  }
  inbox.sent(r.outbox_id);
}

ConsoleChannel::ConsoleChannel(const net::Executor& executor, ConsoleOptions options)
    : state_(std::make_shared<State>(executor, std::move(options))) {}

ConsoleChannel::~ConsoleChannel() { stop(); }

Status ConsoleChannel::start(Inbox& inbox) {
  if (state_->started.exchange(true)) {
    return fail(ErrorCode::already_exists, "the console channel was already started");
  }
  state_->inbox = &inbox;
  PARLEY_TRY(state_->open());
  asio::post(state_->strand, [self = state_] { self->read_next(); });
  return {};
}

void ConsoleChannel::stop() {
  {
    const std::lock_guard lock(state_->gate);
    if (state_->stopped.exchange(true)) return;
  }
  asio::post(state_->strand, [self = state_] { self->close_input(); });
}

void ConsoleChannel::send(OutboundMessage message, std::function<void(Status)> done) {
  asio::post(state_->strand, [self = state_, message = std::move(message), done = std::move(done)] {
    const std::string files = save_files(self->options.files_dir, message.outbox_id, message.files);
    if (const int err = self->print(message.text + files); err != 0) {
      done(fail(ErrorCode::unavailable, fmt::format("cannot write to the console: {}",
                                                    std::system_category().message(err))));
      return;
    }
    done({});
  });
}

size_t ConsoleChannel::active() const { return state_->active.load(); }

bool ConsoleChannel::line_editing() const { return state_->editing.load(); }

}  // namespace parley::bot::channels
