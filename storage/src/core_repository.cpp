#include "parley/storage/core_repository.h"

#include <fmt/format.h>

#include <algorithm>

namespace parley::storage {

namespace {

bool key_ok(const std::string& key) {
  return !key.empty() && key.size() <= CoreRepository::kMaxKey &&
         std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
         });
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}

}  // namespace

void CoreRepository::set(int64_t user_id, std::string key, std::string value, WriteCallback done) {
  key = lower(std::move(key));
  if (!key_ok(key)) {
    done(fail(ErrorCode::invalid_argument,
              fmt::format("core: a key is one word of letters, digits, _ or - (at most {} "
                          "characters), not '{}'",
                          kMaxKey, key)));
    return;
  }
  if (value.empty() || value.size() > kMaxValue) {
    done(fail(ErrorCode::invalid_argument,
              fmt::format("core: {} needs a value of 1 to {} characters", key, kMaxValue)));
    return;
  }
  const int64_t now = clock_.now_ms();
  WriteJob job;
  job.what = "set core";
  job.apply = [user_id, key, value, now](Connection& conn) -> Result<WriteAck> {
    // The block as it would be, checked against its bounds in the same transaction.
    auto st = conn.cached(
        "SELECT count(*), coalesce(sum(length(key) + length(value)), 0) FROM memory_core WHERE "
        "user_id = ? AND key <> ?");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(user_id, key);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    const auto others = static_cast<size_t>((*st)->column_int64(0));
    const auto bytes = static_cast<size_t>((*st)->column_int64(1));
    (*st)->reset();
    if (others + 1 > kMaxKeys) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("core: at most {} entries; remove one first", kMaxKeys));
    }
    if (bytes + key.size() + value.size() > kMaxTotal) {
      return fail(ErrorCode::invalid_argument,
                  fmt::format("core: the block would be over {} characters; shorten or remove "
                              "an entry first",
                              kMaxTotal));
    }
    auto put = conn.cached(
        "INSERT INTO memory_core(user_id, key, value, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(user_id, key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at");
    if (!put) return fail(std::move(put).error());
    PARLEY_TRY((*put)->bind_all(user_id, key, value, now).run());
    return WriteAck{user_id, true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

void CoreRepository::unset(int64_t user_id, std::string key, WriteCallback done) {
  key = lower(std::move(key));
  WriteJob job;
  job.what = "unset core";
  job.apply = [user_id, key](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("DELETE FROM memory_core WHERE user_id = ? AND key = ?");
    if (!st) return fail(std::move(st).error());
    PARLEY_TRY((*st)->bind_all(user_id, key).run());
    if (conn.changes() == 0) {
      return fail(ErrorCode::not_found, fmt::format("core: no entry '{}'", key));
    }
    return WriteAck{user_id, false};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

Result<std::vector<std::pair<std::string, std::string>>> CoreRepository::get(int64_t user_id) {
  std::vector<std::pair<std::string, std::string>> out;
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT key, value FROM memory_core WHERE user_id = ? ORDER BY key");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(user_id);
  for (;;) {
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    if (!*row) break;
    out.emplace_back((*st)->column_text(0), (*st)->column_text(1));
  }
  return out;
}

}  // namespace parley::storage
