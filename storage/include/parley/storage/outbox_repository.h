// The outbox: replies owed. A reply is written here (pending) before it is sent and marked sent
// after; at start-up, a reply still pending whose send may already have begun is marked
// `unknown` rather than sent again — never twice.
//
// Thread safety: all methods are safe from any thread. Writes go through the write queue.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/outbox_file.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

struct OutboxEntry {
  int64_t id = 0;
  std::optional<int64_t> conversation_id;
  std::string channel;
  std::string target;  // where the channel sends it (a channel id, an address, a session)
  std::string body;
  std::string state;  // pending | sent | unknown
  int64_t attempts = 0;
  int64_t created_at = 0;
  std::vector<OutboxFile> files;  // loaded by get() only
};

// A stored file found by its token, with the entry it went out with.
struct OutboxFileFound {
  OutboxFile file;
  int64_t outbox_id = 0;
  std::string channel;
  int64_t created_at = 0;
};

class OutboxRepository {
 public:
  OutboxRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  // A pending entry; ack.row_id is its id.
  std::future<Result<WriteAck>> add(std::optional<int64_t> conversation_id, std::string channel,
                                    std::string target, std::string body);
  // Records that a send is starting (attempts + 1): after a crash from here on, the send may
  // have happened.
  std::future<Result<WriteAck>> begin_send(int64_t id);
  std::future<Result<WriteAck>> mark_sent(int64_t id);
  // The same three, completing through `done` after the commit (on the writer's completion
  // thread), for callers that must not block.
  // `files` are stored with the entry, in the same transaction (tokens are made here).
  // `reply_to`: the user message a reply answers (the last of its turn); 0 for anything else.
  void add(std::optional<int64_t> conversation_id, std::string channel, std::string target,
           std::string body, WriteCallback done, std::vector<OutboxFile> files = {},
           int64_t reply_to = 0);
  // A reply in several parts (a platform's message size), one pending entry per part, all in
  // one transaction, so that each part is bracketed and sent on its own: after a crash between
  // two parts, only the part whose send had begun is `unknown`; the rest are still owed. The
  // ids are consecutive: ack.row_id is the first part's, the last is row_id + parts - 1.
  // `bodies` must not be empty. `files` go with the last part.
  void add_parts(std::optional<int64_t> conversation_id, std::string channel, std::string target,
                 std::vector<std::string> bodies, WriteCallback done,
                 std::vector<OutboxFile> files = {});
  // The jobs add() and add_parts() submit, for a joint write (write_queue.h: joint) with what
  // must commit with them — a reply's message and its entries, in one transaction.
  WriteJob make_add_job(std::optional<int64_t> conversation_id, std::string channel,
                        std::string target, std::string body, std::vector<OutboxFile> files = {},
                        int64_t reply_to = 0);
  WriteJob make_add_parts_job(std::optional<int64_t> conversation_id, std::string channel,
                              std::string target, std::vector<std::string> bodies,
                              std::vector<OutboxFile> files = {}, int64_t reply_to = 0);
  void begin_send(int64_t id, WriteCallback done);
  void mark_sent(int64_t id, WriteCallback done);
  // A send that failed for certain (nothing left): stays pending, with the error.
  std::future<Result<WriteAck>> mark_failed(int64_t id, std::string error);
  // At start-up: pending entries whose send had begun become `unknown`; returns how many.
  Result<int64_t> settle_after_restart();

  Result<std::vector<OutboxEntry>> pending(size_t limit = 100);
  // Pending entries of one channel with ids above `after_id`, oldest first.
  Result<std::vector<OutboxEntry>> pending_for(const std::string& channel, int64_t after_id = 0,
                                               size_t limit = 100);
  // One entry with its files.
  Result<OutboxEntry> get(int64_t id);
  // The first entry of a conversation replying to `message_id` or a later message, with its
  // files; entries written before replies said what they answer are found by time instead: the
  // first made at or after `since_ms` (the reply's message, written just before its entry).
  Result<std::optional<OutboxEntry>> first_reply(int64_t conversation_id, int64_t message_id,
                                                 int64_t since_ms);
  // The file whose token is `token` (not_found when none is).
  Result<OutboxFileFound> file(const std::string& token);
  // Deletes the files of entries no longer owed (sent or unknown) made before `before_ms`:
  // their URLs stop answering. Returns how many were deleted.
  std::future<Result<WriteAck>> prune_files(int64_t before_ms);

 private:
  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

}  // namespace parley::storage
