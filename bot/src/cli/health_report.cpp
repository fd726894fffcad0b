#include "parley/bot/cli/health_report.h"

#include <fmt/format.h>

namespace parley::bot::cli {

std::string human_bytes(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const auto b = static_cast<double>(bytes);
  if (bytes < (1 << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  if (bytes < (1LL << 30)) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024.0));
  return fmt::format("{:.2f} GiB", b / (1024.0 * 1024.0 * 1024.0));
}

std::string health_text(const storage::Health& h) {
  const auto& q = h.queue;
  const auto& c = h.cache;
  return fmt::format(
      "database: {}\n"
      "schema version: {}\n"
      "health: {}\n"
      "size: {} (WAL {})\n"
      "write queue: depth {}, {} batches, {} committed, {} failed, {} rejected, last batch {} "
      "in {} us\n"
      "cache: {} entries, {} of {}, hit rate {:.1f}% ({} hits, {} misses, {} evictions)\n"
      "readers: {}; WAL checkpoints off the writer: {} (last {} us)\n",
      h.path.string(), h.schema_version,
      !h.queue.running            ? "writer stopped"
      : h.queue.last_batch_failed ? "last batch failed"
                                  : "ok",
      human_bytes(h.db_bytes), human_bytes(h.wal_bytes), q.queue_depth, q.batches, q.jobs_committed,
      q.jobs_failed, q.jobs_rejected, q.last_batch_size, q.last_commit_latency_us, c.entries,
      human_bytes(static_cast<int64_t>(c.bytes)), human_bytes(static_cast<int64_t>(c.max_bytes)),
      c.hit_rate() * 100.0, c.hits, c.misses, c.evictions, h.readers, h.checkpoints,
      h.last_checkpoint_us);
}

nlohmann::json health_json(const storage::Health& h) {
  const auto& q = h.queue;
  const auto& c = h.cache;
  return {
      {"path", h.path.string()},
      {"schema_version", h.schema_version},
      {"ok", h.ok()},
      {"db_bytes", h.db_bytes},
      {"wal_bytes", h.wal_bytes},
      {"readers", h.readers},
      {"checkpoints", h.checkpoints},
      {"last_checkpoint_us", h.last_checkpoint_us},
      {"write_queue",
       {{"depth", q.queue_depth},
        {"batches", q.batches},
        {"committed", q.jobs_committed},
        {"failed", q.jobs_failed},
        {"rejected", q.jobs_rejected},
        {"batches_failed", q.batches_failed},
        {"last_batch_size", q.last_batch_size},
        {"last_commit_latency_us", q.last_commit_latency_us},
        {"running", q.running}}},
      {"cache",
       {{"entries", c.entries},
        {"bytes", c.bytes},
        {"max_entries", c.max_entries},
        {"max_bytes", c.max_bytes},
        {"hits", c.hits},
        {"misses", c.misses},
        {"evictions", c.evictions},
        {"hit_rate", c.hit_rate()}}},
  };
}

}  // namespace parley::bot::cli
