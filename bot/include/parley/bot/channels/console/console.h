// ConsoleChannel: the terminal as a channel (`parley chat`). Each non-empty line read from the
// input becomes an InboundMessage (channel "console", no platform id, the configured
// conversation and user) delivered to the Inbox; the reply is printed, bracketed by
// Inbox::sending() / Inbox::sent(). Reading never waits for a turn: lines typed while one runs
// are delivered at once (the bot merges the burst), each in its own coroutine, in input order.
// Pushed messages (reminders) are printed by send().
//
// Input:
// - a terminal (and output to a terminal), with line_editing: libedit's readline callback
//   interface (prompt, editing, history loaded from and saved to history_file), driven by
//   Asio readiness waits on a dup of the descriptor — no thread blocks in readline. libedit is
//   process-global: only one line-editing ConsoleChannel may exist at a time (start() refuses
//   a second one). The terminal is put back in its normal mode when reading stops.
// - a pipe (or a socket, or a terminal without line_editing): plain lines, no prompt.
// - a regular file (or /dev/null: anything epoll refuses): ordinary reads in chunks, each chunk
//   a separate handler on the channel's strand.
// A last line without a newline counts. Lines longer than kMaxLineBytes end the input with an
// error line. End of input (Ctrl-D), or a line equal to one of quit_lines, calls on_eof once.
//
// Output: replies and pushed messages are written to output_fd in whole lines; with line
// editing the prompt and the line being edited are redrawn below them.
//
// Ownership and lifetime: the channel's state lives until its last handler ends, so the
// ConsoleChannel (whose destructor calls stop()) may be destroyed while deliveries finish; the
// Inbox must outlive them — after stop(), wait for active() == 0. The descriptors given in the
// options are not closed (the channel reads and writes dups of them).
// REQUIRES: the execution context outlives the channel's handlers (stop it, or let it run out,
// before destroying it).
//
// Thread safety: every public method may be called from any thread. Reading, printing and the
// libedit calls run on one strand of the executor. on_eof runs on that strand; it may call
// stop(). Once stop() has returned, no new delivery starts and on_eof is not called.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parley/bot/channels/channel.h"
#include "parley/bot/net.h"

namespace parley::bot::channels {

struct ConsoleOptions {
  int input_fd = 0;
  int output_fd = 1;
  std::string user = "console";          // InboundMessage::author
  std::string user_name;                 // InboundMessage::author_name; empty: `user`
  std::string conversation = "console";  // InboundMessage::conversation (and send() targets)
  std::string prompt = "> ";             // shown with line editing only
  std::filesystem::path history_file;  // line editing: loaded at start, saved per line; empty: none
  bool line_editing = true;            // use libedit when input and output are terminals
  std::vector<std::string> quit_lines;  // e.g. "/quit": ends the input like Ctrl-D (not delivered)
  std::function<void()> on_eof;         // the input ended (see above); may be empty
  // Where files sent with a reply are written ("<outbox id>-<name>", owner-only), each printed
  // as "📎 name: path". Empty: they are not written, and the line says so.
  std::filesystem::path files_dir;
};

class ConsoleChannel final : public Channel {
 public:
  static constexpr size_t kMaxLineBytes = 1u << 20;

  ConsoleChannel(const net::Executor& executor, ConsoleOptions options);
  ~ConsoleChannel() override;
  ConsoleChannel(const ConsoleChannel&) = delete;
  ConsoleChannel& operator=(const ConsoleChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return "console"; }
  [[nodiscard]] bool can_push() const override { return true; }
  // Starts reading. Errors: the input descriptor is unusable, start() was already called, or
  // another line-editing console exists (already_exists).
  Status start(Inbox& inbox) override;
  void stop() override;
  // Prints message.text as its own line (not between other output), then a line per file
  // (written under files_dir); `done` with ok, or with unavailable when the output cannot be
  // written.
  void send(OutboundMessage message, std::function<void(Status)> done) override;

  // Deliveries started and not finished (their reply not yet printed).
  [[nodiscard]] size_t active() const;
  [[nodiscard]] size_t in_flight() const override { return active(); }
  [[nodiscard]] std::string banner() const override { return "console: this terminal"; }
  // Whether libedit reads the input (known after start()).
  [[nodiscard]] bool line_editing() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace parley::bot::channels
