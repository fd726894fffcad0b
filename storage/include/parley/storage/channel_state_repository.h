// Channel state: what a channel keeps across restarts under its own keys (a Discord shard's
// session and its identifies per day; an IMAP mailbox's cursor). One text value per (channel,
// key), replaced whole; the channel owns its format. Never a secret.
//
// Thread safety: all methods are safe from any thread. Writes go through the write queue.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <string>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class ChannelStateRepository {
 public:
  ChannelStateRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  // Sets (or replaces) the value; `done` after the commit, on the writer's completion thread.
  void put(std::string channel, std::string key, std::string value, WriteCallback done);
  std::future<Result<WriteAck>> put(std::string channel, std::string key, std::string value);
  // Adds `delta` to an integer value (0 when absent) and returns the new value in ack.row_id.
  void add(std::string channel, std::string key, int64_t delta, WriteCallback done);
  // Removes the key (no error when it is absent).
  std::future<Result<WriteAck>> erase(std::string channel, std::string key);
  // The value, or nullopt when the key is absent.
  Result<std::optional<std::string>> get(const std::string& channel, const std::string& key);

 private:
  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

}  // namespace parley::storage
