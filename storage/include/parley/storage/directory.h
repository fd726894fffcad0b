// Directory: users, their per-channel identities, and conversations. Lookups that create what
// is missing go through the write queue, so two channels meeting the same new identity at once
// still produce one user.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <future>
#include <string>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/hot_cache.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class Directory {
 public:
  // `cache`: a conversation created here starts in it with an empty history, so that its
  // first turn reads no history from SQLite.
  Directory(WriteQueue& writes, ReadPool& reads, const Clock& clock, HotCache* cache = nullptr)
      : writes_(writes), reads_(reads), clock_(clock), cache_(cache) {}

  // The user behind (channel, external_id), creating user and identity on first sight.
  // ack.row_id is the user id; ack.inserted says whether it was created.
  std::future<Result<WriteAck>> ensure_user(std::string channel, std::string external_id,
                                            std::string display_name);
  // The conversation (channel, external_id), created on first sight.
  std::future<Result<WriteAck>> ensure_conversation(std::string channel, std::string external_id,
                                                    std::string title = {});
  // The same, completing through `done` (after the commit, on the writer's completion thread;
  // at once on the calling thread for an empty channel or id).
  void ensure_user(std::string channel, std::string external_id, std::string display_name,
                   WriteCallback done);
  void ensure_conversation(std::string channel, std::string external_id, std::string title,
                           WriteCallback done);

  // Read-only lookups; not_found when absent.
  Result<int64_t> find_user(const std::string& channel, const std::string& external_id);
  Result<int64_t> find_conversation(const std::string& channel, const std::string& external_id);
  // How people know the user: "channel:external_id" of their first identity ("http:alice");
  // not_found when the user has none.
  Result<std::string> identity_of(int64_t user_id);

  // Records that the access policy turned (channel, external_id) away: ack.inserted is true
  // the first time ever (tell them once), ack.row_id counts the attempts. No message text kept.
  void note_refusal(std::string channel, std::string external_id, WriteCallback done);

 private:
  Result<WriteJob> user_job(std::string channel, std::string external_id, std::string display_name);
  Result<WriteJob> conversation_job(std::string channel, std::string external_id,
                                    std::string title);

  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
  HotCache* cache_;
};

}  // namespace parley::storage
