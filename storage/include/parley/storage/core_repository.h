// The core block: a few facts about a user that are always in the prompt (name, pronouns, time
// zone, a few identity facts), small and bounded, that the user sees and edits themselves
// (/core). One text value per (user, key).
//
// Thread safety: all methods are safe from any thread. Writes go through the write queue.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parley/base/clock.h"
#include "parley/base/result.h"
#include "parley/storage/read_pool.h"
#include "parley/storage/write_queue.h"

namespace parley::storage {

class CoreRepository {
 public:
  static constexpr size_t kMaxKeys = 12;
  static constexpr size_t kMaxKey = 40;     // bytes
  static constexpr size_t kMaxValue = 200;  // bytes
  static constexpr size_t kMaxTotal = 800;  // bytes of keys and values together

  CoreRepository(WriteQueue& writes, ReadPool& reads, const Clock& clock)
      : writes_(writes), reads_(reads), clock_(clock) {}

  // Sets (or replaces) `key`: a word of letters, digits, '_' or '-', lower-cased here. Refused
  // with invalid_argument (naming the limit) past kMaxKeys keys or kMaxTotal bytes, or for an
  // empty or too long key or value.
  void set(int64_t user_id, std::string key, std::string value, WriteCallback done);
  // Removes `key`; not_found when absent.
  void unset(int64_t user_id, std::string key, WriteCallback done);
  // The user's block, by key.
  Result<std::vector<std::pair<std::string, std::string>>> get(int64_t user_id);

 private:
  WriteQueue& writes_;
  ReadPool& reads_;
  const Clock& clock_;
};

}  // namespace parley::storage
