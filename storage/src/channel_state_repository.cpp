#include "parley/storage/channel_state_repository.h"

#include <utility>

namespace parley::storage {

namespace {

WriteJob put_job(std::string channel, std::string key, std::string value, int64_t now) {
  WriteJob job;
  job.what = "channel state put";
  job.apply = [channel = std::move(channel), key = std::move(key), value = std::move(value),
               now](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO channel_state(channel, key, value, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(channel, key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(channel, key, value, now);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{0, true};
  };
  return job;
}

}  // namespace

void ChannelStateRepository::put(std::string channel, std::string key, std::string value,
                                 WriteCallback done) {
  WriteJob job = put_job(std::move(channel), std::move(key), std::move(value), clock_.now_ms());
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> ChannelStateRepository::put(std::string channel, std::string key,
                                                          std::string value) {
  return writes_.submit_for_future(
      put_job(std::move(channel), std::move(key), std::move(value), clock_.now_ms()));
}

void ChannelStateRepository::add(std::string channel, std::string key, int64_t delta,
                                 WriteCallback done) {
  WriteJob job;
  job.what = "channel state add";
  job.apply = [channel = std::move(channel), key = std::move(key), delta,
               now = clock_.now_ms()](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached(
        "INSERT INTO channel_state(channel, key, value, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(channel, key) DO UPDATE SET "
        "value = CAST(CAST(value AS INTEGER) + ? AS TEXT), updated_at = excluded.updated_at "
        "RETURNING CAST(value AS INTEGER)");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(channel, key, std::to_string(delta), now, delta);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{(*st)->column_int64(0), true};
  };
  job.done = std::move(done);
  writes_.submit(std::move(job));
}

std::future<Result<WriteAck>> ChannelStateRepository::erase(std::string channel, std::string key) {
  WriteJob job;
  job.what = "channel state erase";
  job.apply = [channel = std::move(channel),
               key = std::move(key)](Connection& conn) -> Result<WriteAck> {
    auto st = conn.cached("DELETE FROM channel_state WHERE channel = ? AND key = ?");
    if (!st) return fail(std::move(st).error());
    (*st)->bind_all(channel, key);
    auto row = (*st)->step();
    if (!row) return fail(std::move(row).error());
    return WriteAck{0, false};
  };
  return writes_.submit_for_future(std::move(job));
}

Result<std::optional<std::string>> ChannelStateRepository::get(const std::string& channel,
                                                               const std::string& key) {
  auto conn = reads_.acquire();
  auto st = conn->cached("SELECT value FROM channel_state WHERE channel = ? AND key = ?");
  if (!st) return fail(std::move(st).error());
  (*st)->bind_all(channel, key);
  auto row = (*st)->step();
  if (!row) return fail(std::move(row).error());
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>((*st)->column_text(0));
}

}  // namespace parley::storage
