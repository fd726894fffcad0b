// bench_storage: throughput and latency figures of parley's storage layer.
//
// Groups (all by default; pick some with --only):
//   ingest   durable message ingest through the write queue (64 producers, each waiting for its
//            ack before the next write; every 4th message also adds an FTS-indexed memory),
//            against the usual ways on one connection: autocommit INSERTs in WAL mode, one
//            transaction per write with a rollback journal (journal_mode=DELETE), and one bulk
//            transaction (the ceiling); plus the queue's rate over each of them. Then the queue
//            with producers shaped like parley's: 256 turns in flight on two event loops,
//            each write submitted with a callback, no thread waiting (ingest_queue_evented).
//   latency  ack latency (submit → commit callback) under an open-loop load of 5,000 msgs/s.
//   cache    a hot-cache hit (MessageRepository::recent) against a SQLite point read with a
//            warm prepared statement; the LRU hit rate of a Zipf(1.1) workload.
//   fts      memory recall (FTS5 scoped to the user, bm25 top 10) over 1M memories, against a
//            LIKE scan of the user's rows and an unscoped FTS match filtered by user afterwards.
//
// Figures go to stdout, one per line as `name value unit` (or one JSON object with --json);
// context (row counts, durations, parameters) goes to stderr. Every measurement uses a fresh
// database in a temporary directory. --quick shrinks every size for a CI smoke run (< ~8 s).
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <iterator>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_report.h"
#include "bench_util.h"
#include "parley/storage/lru_cache.h"
#include "parley/storage/migrations.h"
#include "parley/storage/records.h"
#include "parley/storage/sqlite.h"
#include "parley/storage/store.h"

namespace {

namespace fs = std::filesystem;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
namespace storage = parley::storage;
using Rng = std::mt19937_64;

// ---- Parameters ----

constexpr uint64_t kSeed = 20'240'611;
constexpr int64_t kBaseMs = 1'700'000'000'000;  // created_at of the first generated row
constexpr std::string_view kChannel = "bench";
constexpr std::string_view kAuthor = "bench-user";
constexpr size_t kConversations = 8;      // ingest and latency spread messages over these
constexpr size_t kMemoryEvery = 4;        // every 4th ingested message also adds a memory
constexpr size_t kProducers = 64;         // ingest_queue producer threads
constexpr double kOfferedRate = 5'000.0;  // latency: messages per second, open loop
constexpr size_t kCacheDbConversations = 100;
constexpr size_t kWarmConversations = 8;  // cache_hit_ns cycles over these
constexpr size_t kZipfKeys = 100'000;
constexpr size_t kZipfCacheEntries = 10'000;
constexpr double kZipfKeyS = 1.1;
constexpr double kWordZipfS = 1.0;         // word frequencies in generated text
constexpr size_t kFtsBuildChunk = 50'000;  // memories per build transaction
constexpr size_t kRecallLimit = 10;
constexpr size_t kMinText = 40;
constexpr size_t kMaxText = 200;

// Every size that --quick shrinks.
struct Sizes {
  size_t ingest_messages;      // queue, naive and bulk
  double naive_budget_s;       // the naive run stops early past this
  size_t delete_journal_rows;  // a subset: one fsync'd transaction per write is slow
  double delete_journal_budget_s;
  double latency_seconds;
  size_t cache_db_messages;
  size_t cache_calls;
  size_t point_reads;
  size_t zipf_warmup;
  size_t zipf_accesses;
  size_t fts_memories;
  size_t fts_users;
  size_t fts_queries;
  double fts_global_budget_s;  // the unscoped match is slow: as many pairs as fit
};

constexpr Sizes kFullSizes{.ingest_messages = 200'000,
                           .naive_budget_s = 30.0,
                           .delete_journal_rows = 5'000,
                           .delete_journal_budget_s = 60.0,
                           .latency_seconds = 3.0,
                           .cache_db_messages = 100'000,
                           .cache_calls = 1'000'000,
                           .point_reads = 200'000,
                           .zipf_warmup = 200'000,
                           .zipf_accesses = 1'000'000,
                           .fts_memories = 1'000'000,
                           .fts_users = 10'000,
                           .fts_queries = 2'000,
                           .fts_global_budget_s = 20.0};

constexpr Sizes kQuickSizes{.ingest_messages = 5'000,
                            .naive_budget_s = 1.0,
                            .delete_journal_rows = 100,
                            .delete_journal_budget_s = 1.0,
                            .latency_seconds = 0.5,
                            .cache_db_messages = 5'000,
                            .cache_calls = 50'000,
                            .point_reads = 5'000,
                            .zipf_warmup = 20'000,
                            .zipf_accesses = 50'000,
                            .fts_memories = 20'000,
                            .fts_users = 200,
                            .fts_queries = 100,
                            .fts_global_budget_s = 1.0};

// ---- Errors, timing, statistics ----

template <typename T>
T must(parley::Result<T> r, std::string_view what) {
  if (!r) throw BenchError(fmt::format("{}: {}", what, r.error().describe()));
  return std::move(r).value();
}

void must_ok(const parley::Status& s, std::string_view what) {
  if (!s) throw BenchError(fmt::format("{}: {}", what, s.error().describe()));
}

// Collects failed acks from many threads; reports the first.
class FailureLog {
 public:
  void check(const parley::Result<storage::WriteAck>& r, std::string_view what) {
    if (r.ok() && r->inserted) return;
    std::lock_guard lock(mu_);
    if (count_++ == 0) {
      first_ = r.ok() ? fmt::format("{}: row {} was not inserted", what, r->row_id)
                      : fmt::format("{}: {}", what, r.error().describe());
    }
  }
  void raise_if_any(std::string_view context) const {
    std::lock_guard lock(mu_);
    if (count_ > 0) {
      throw BenchError(fmt::format("{}: {} failed writes, first: {}", context, count_, first_));
    }
  }

 private:
  mutable std::mutex mu_;
  size_t count_ = 0;   // GUARDED_BY(mu_)
  std::string first_;  // GUARDED_BY(mu_)
};

double per_second(size_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// ---- Output ----

// ---- Files ----

// Removes a database and its side files.
void remove_db(const fs::path& db) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(db.string() + suffix, ec);
  }
}

// A database path in `dir` that does not exist yet (each measurement gets a fresh one).
fs::path fresh_db(const TempDir& dir, const std::string& name) {
  const fs::path p = dir.path() / (name + ".db");
  remove_db(p);
  return p;
}

// Removes a database once its measurement is done, unless the directory is kept.
void done_with(const TempDir& dir, const fs::path& db) {
  if (!dir.kept()) remove_db(db);
}

// ---- Generated text ----

// Content words, roughly most common first (their frequencies follow Zipf's law).
// clang-format off
constexpr std::string_view kContentWords[] = {
    "like", "love", "work", "coffee", "time", "week", "home", "friend", "family", "dog", "weekend",
    "morning", "birthday", "sister", "brother", "mother", "father", "music", "book", "movie",
    "game", "project", "meeting", "team", "city", "trip", "travel", "food", "dinner", "lunch",
    "breakfast", "tea", "cat", "car", "house", "garden", "school", "job", "office", "doctor",
    "appointment", "gym", "running", "walk", "park", "beach", "summer", "winter", "holiday",
    "vacation", "flight", "train", "bike", "hiking", "mountain", "lake", "river", "sea", "pizza",
    "pasta", "sushi", "chocolate", "cake", "cookies", "bread", "cheese", "wine", "beer", "water",
    "juice", "vegetarian", "vegan", "allergic", "peanuts", "gluten", "spicy", "sweet", "salty",
    "favorite", "color", "blue", "green", "red", "yellow", "black", "white", "song", "band",
    "concert", "guitar", "piano", "drums", "violin", "singing", "dancing", "painting", "drawing",
    "photography", "camera", "phone", "laptop", "computer", "code", "programming", "python", "rust",
    "javascript", "database", "server", "cloud", "deadline", "report", "presentation", "client",
    "manager", "colleague", "boss", "salary", "promotion", "interview", "resume", "career",
    "university", "degree", "exam", "study", "homework", "teacher", "student", "class", "lesson",
    "language", "spanish", "french", "german", "japanese", "english", "chinese", "reading",
    "writing", "novel", "poetry", "history", "science", "math", "physics", "chemistry", "biology",
    "art", "museum", "gallery", "theater", "film", "series", "episode", "podcast", "news",
    "politics", "sports", "football", "soccer", "basketball", "tennis", "golf", "swimming", "yoga",
    "meditation", "sleep", "dream", "health", "diet", "vitamins", "medicine", "headache", "cold",
    "flu", "allergy", "dentist", "therapy", "stress", "anxiety", "happy", "tired", "busy",
    "excited", "nervous", "calm", "quiet", "loud", "early", "late", "tomorrow", "yesterday",
    "tonight", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "january", "february", "march", "april", "june", "july", "august", "september", "october",
    "november", "december", "anniversary", "wedding", "party", "gift", "present", "surprise",
    "card", "flowers", "plants", "tomatoes", "roses", "kitchen", "recipe", "cooking", "baking",
    "grill", "oven", "apartment", "rent", "moving", "neighbor", "landlord", "furniture", "sofa",
    "bed", "desk", "chair", "lamp", "window", "door", "keys", "wallet", "bag", "shoes", "jacket",
    "shirt", "dress", "glasses", "watch", "ring", "money", "budget", "savings", "bank", "loan",
    "mortgage", "taxes", "insurance", "bills", "shopping", "groceries", "market", "store", "order",
    "delivery", "package", "email", "message", "call", "reminder", "calendar", "schedule", "plan",
    "goal", "habit", "routine", "hobby", "chess", "puzzle", "knitting", "sewing", "woodworking",
    "fishing", "camping", "tent", "skiing", "snowboarding", "surfing", "climbing", "cycling",
    "marathon", "race", "coach", "training", "weights", "protein", "salad", "soup", "rice",
    "noodles", "tacos", "burger", "steak", "chicken", "fish", "eggs", "milk", "butter", "honey",
    "apple", "banana", "orange", "berries", "grapes", "lemon", "garlic", "onion", "pepper", "salt",
    "sugar", "daughter", "son", "wife", "husband", "partner", "grandmother", "grandfather", "aunt",
    "uncle", "cousin", "nephew", "niece", "baby", "kids", "puppy", "kitten", "parrot", "hamster",
    "horse"};

// Glue between content words (not used in queries).
constexpr std::string_view kFunctionWords[] = {
    "i", "my", "the", "a", "to", "and", "of", "in", "is", "for", "on", "with", "at", "our", "we",
    "was", "has", "every", "next", "really"};
// clang-format on
constexpr double kFunctionWordShare = 0.35;

// Sentences of 40–200 bytes and search queries over one Zipfian vocabulary.
class TextGen {
 public:
  TextGen() : words_(std::size(kContentWords), kWordZipfS) {}

  [[nodiscard]] std::string_view content_word(Rng& rng) const { return kContentWords[words_(rng)]; }

  [[nodiscard]] std::string sentence(Rng& rng) const {
    const size_t target = std::uniform_int_distribution<size_t>(kMinText, kMaxText)(rng);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::uniform_int_distribution<size_t> glue(0, std::size(kFunctionWords) - 1);
    std::string s;
    while (s.size() + 1 < target) {
      if (!s.empty()) s += ' ';
      s += coin(rng) < kFunctionWordShare ? kFunctionWords[glue(rng)] : content_word(rng);
    }
    if (s.size() + 1 > kMaxText) s.resize(s.rfind(' ', kMaxText - 1));
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    s += '.';
    return s;
  }

  // 1–3 distinct content words.
  [[nodiscard]] std::vector<std::string> query_words(Rng& rng) const {
    const size_t n = std::uniform_int_distribution<size_t>(1, 3)(rng);
    std::vector<std::string> words;
    while (words.size() < n) {
      std::string w(content_word(rng));
      if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(std::move(w));
    }
    return words;
  }

 private:
  ZipfSampler words_;
};

std::string join(const std::vector<std::string>& words, std::string_view sep) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += sep;
    out += w;
  }
  return out;
}

// ---- Ingest rows and fixtures ----

// One ingested message; every kMemoryEvery-th also carries a memory.
struct IngestRow {
  std::string platform_id;
  std::string text;
  std::string memory;  // empty: no memory with this message
  size_t conversation = 0;
  int64_t created_at = 0;
};

std::vector<IngestRow> make_ingest_rows(size_t n) {
  Rng rng(kSeed);
  const TextGen gen;
  std::vector<IngestRow> rows(n);
  for (size_t i = 0; i < n; ++i) {
    IngestRow& row = rows[i];
    row.platform_id = fmt::format("msg-{}", i);
    row.text = gen.sentence(rng);
    if (i % kMemoryEvery == 0) row.memory = gen.sentence(rng);
    row.conversation = i % kConversations;
    row.created_at = kBaseMs + static_cast<int64_t>(i);
  }
  return rows;
}

// The user and conversations that ingested rows refer to.
struct Fixture {
  int64_t user_id = 0;
  std::vector<int64_t> conversations;
};

Fixture setup_store(storage::Store& store) {
  Fixture f;
  auto user = store.directory().ensure_user(std::string(kChannel), "user-1", "Bench User");
  f.user_id = must(user.get(), "ensure_user").row_id;
  for (size_t c = 0; c < kConversations; ++c) {
    auto conv =
        store.directory().ensure_conversation(std::string(kChannel), fmt::format("conv-{}", c));
    f.conversations.push_back(must(conv.get(), "ensure_conversation").row_id);
  }
  return f;
}

// The same rows as setup_store, written directly (for the single-connection ingests).
Fixture setup_connection(storage::Connection& conn, size_t conversations) {
  Fixture f;
  auto user = must(conn.prepare("INSERT INTO users(display_name, created_at) VALUES (?, ?)"),
                   "prepare user insert");
  must_ok(user.bind_all("Bench User", kBaseMs).run(), "insert user");
  f.user_id = conn.last_insert_rowid();
  auto ident = must(conn.prepare("INSERT INTO identities(user_id, channel, external_id, "
                                 "created_at) VALUES (?,?,?,?)"),
                    "prepare identity insert");
  must_ok(ident.bind_all(f.user_id, kChannel, "user-1", kBaseMs).run(), "insert identity");
  auto conv = must(conn.prepare("INSERT INTO conversations(channel, external_id, title, "
                                "created_at) VALUES (?,?,'',?)"),
                   "prepare conversation insert");
  for (size_t c = 0; c < conversations; ++c) {
    must_ok(conv.bind_all(kChannel, fmt::format("conv-{}", c), kBaseMs).run(),
            "insert conversation");
    f.conversations.push_back(conn.last_insert_rowid());
  }
  return f;
}

storage::NewMessage make_message(const IngestRow& row, const Fixture& f) {
  storage::NewMessage m;
  m.conversation_id = f.conversations[row.conversation];
  m.channel = std::string(kChannel);
  m.platform_id = row.platform_id;
  m.author = std::string(kAuthor);
  m.text = row.text;
  m.created_at = row.created_at;
  return m;
}

// The statements MessageRepository::append and MemoryRepository::add run.
constexpr std::string_view kInsertMessageSql =
    "INSERT INTO messages(conversation_id, channel, platform_id, role, author, text, "
    "created_at, metadata) VALUES (?,?,?,?,?,?,?,?) "
    "ON CONFLICT(channel, platform_id) DO NOTHING RETURNING id";
constexpr std::string_view kInsertMemorySql =
    "INSERT INTO memories(user_id, content, tags, importance, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?)";

int64_t count_rows(storage::Connection& conn, std::string_view table) {
  return must(conn.query_int64(fmt::format("SELECT count(*) FROM {}", table)), "count rows");
}

// ---- Group: ingest ----

// 64 producers, each appending one message (and every 4th a memory) and waiting for the ack.
double ingest_queue(const fs::path& db, const std::vector<IngestRow>& rows,
                    const std::string& synchronous = "NORMAL") {
  storage::StoreOptions options{.path = db};
  options.connection.synchronous = synchronous;
  auto store = must(storage::Store::open(options), "open store");
  const Fixture f = setup_store(*store);
  const auto before = store->writes().stats();

  std::atomic<size_t> next{0};
  FailureLog failures;
  const auto start = SteadyClock::now();
  std::vector<std::thread> producers;
  for (size_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (;;) {
        const size_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= rows.size()) return;
        const IngestRow& row = rows[i];
        auto message = store->messages().append(make_message(row, f));
        std::optional<std::future<parley::Result<storage::WriteAck>>> memory;
        if (!row.memory.empty()) {
          memory = store->memories().add(storage::NewMemory{
              .user_id = f.user_id, .content = row.memory, .tags = {}, .importance = 0});
        }
        failures.check(message.get(), "append message");
        if (memory) failures.check(memory->get(), "add memory");
      }
    });
  }
  for (auto& t : producers) t.join();
  const double seconds = seconds_since(start);
  failures.raise_if_any("ingest_queue");

  const auto after = store->writes().stats();
  const uint64_t batches = after.batches - before.batches;
  const uint64_t jobs = after.jobs_committed - before.jobs_committed;
  auto reader = store->reads().acquire();
  const int64_t messages = count_rows(*reader, "messages");
  const int64_t memories = count_rows(*reader, "memories");
  const auto want_memories = static_cast<int64_t>((rows.size() + kMemoryEvery - 1) / kMemoryEvery);
  if (messages != static_cast<int64_t>(rows.size()) || memories != want_memories) {
    throw BenchError(
        fmt::format("ingest_queue stored {} messages and {} memories, expected {} "
                    "and {}",
                    messages, memories, rows.size(), want_memories));
  }
  note(
      "ingest_queue: {} messages + {} memories by {} producers in {:.2f} s; {} batches, "
      "{:.1f} jobs/batch, largest {}",
      messages, memories, kProducers, seconds, batches,
      batches > 0 ? static_cast<double>(jobs) / static_cast<double>(batches) : 0.0,
      after.max_batch_size_seen);
  return per_second(rows.size(), seconds);
}

// Producers shaped like parley's: two event-loop threads (parley's io threads) carry
// kInFlight turns at once; a turn submits its write with a callback and goes on with the next
// only when the acknowledgement comes back to its loop (parley posts the writer's completion to
// the turn's executor). No thread waits for a write.
constexpr size_t kLoops = 2;
constexpr size_t kInFlight = 256;

class Loop {
 public:
  void post(std::function<void()> fn) {
    {
      const std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  void run(std::atomic<size_t>& left) {
    std::unique_lock lock(mu_);
    while (left.load() > 0) {
      if (queue_.empty()) {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
        continue;
      }
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

double ingest_queue_evented(const fs::path& db, const std::vector<IngestRow>& rows) {
  auto store = must(storage::Store::open(storage::StoreOptions{.path = db}), "open store");
  const Fixture f = setup_store(*store);
  const auto before = store->writes().stats();
  std::array<Loop, kLoops> loops;
  std::atomic<size_t> next{0};
  std::atomic<size_t> left{rows.size()};  // messages not yet acknowledged
  FailureLog failures;
  // One turn: the next row's message (and memory), then itself again once acknowledged.
  std::function<void(size_t)> turn = [&](size_t loop) {
    const size_t i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= rows.size()) return;
    const IngestRow& row = rows[i];
    if (!row.memory.empty()) {
      store->memories().add(
          storage::NewMemory{
              .user_id = f.user_id, .content = row.memory, .tags = {}, .importance = 0},
          [&failures](parley::Result<storage::WriteAck> r) { failures.check(r, "add memory"); });
    }
    store->messages().append(make_message(row, f), [&, loop](parley::Result<storage::WriteAck> r) {
      failures.check(r, "append message");
      loops[loop].post([&turn, loop] { turn(loop); });
      left.fetch_sub(1);
    });
  };
  const auto start = SteadyClock::now();
  for (size_t t = 0; t < kInFlight; ++t) {
    loops[t % kLoops].post([&turn, loop = t % kLoops] { turn(loop); });
  }
  std::vector<std::thread> threads;
  for (auto& l : loops) threads.emplace_back([&l, &left] { l.run(left); });
  for (auto& t : threads) t.join();
  const double seconds = seconds_since(start);
  store->writes().stop();  // the memories' writes too, before counting
  failures.raise_if_any("ingest_queue_evented");
  const auto after = store->writes().stats();
  auto reader = store->reads().acquire();
  const int64_t messages = count_rows(*reader, "messages");
  if (messages != static_cast<int64_t>(rows.size())) {
    throw BenchError(
        fmt::format("ingest_queue_evented stored {} messages, expected {}", messages, rows.size()));
  }
  const uint64_t batches = after.batches - before.batches;
  const uint64_t jobs = after.jobs_committed - before.jobs_committed;
  note(
      "ingest_queue_evented: {} messages by {} turns in flight on {} loops in {:.2f} s; {} "
      "batches, {:.1f} jobs/batch",
      messages, kInFlight, kLoops, seconds, batches,
      batches > 0 ? static_cast<double>(jobs) / static_cast<double>(batches) : 0.0);
  return per_second(rows.size(), seconds);
}

enum class DirectMode { autocommit, txn_per_write, one_txn };

struct DirectRun {
  size_t rows = 0;  // messages written (memories follow every 4th)
  double seconds = 0;
};

// The same rows written from one thread on one connection with reused prepared statements.
// Stops after `budget_s` (at a row boundary) when that comes first.
DirectRun ingest_direct(const fs::path& db, const std::vector<IngestRow>& rows, size_t limit,
                        const storage::ConnectionOptions& options, DirectMode mode,
                        double budget_s) {
  auto conn = must(storage::Connection::open(db, options), "open connection");
  must(storage::migrate(conn), "migrate");
  const Fixture f = setup_connection(conn, kConversations);
  auto message = must(conn.prepare(kInsertMessageSql), "prepare message insert");
  auto memory = must(conn.prepare(kInsertMemorySql), "prepare memory insert");
  auto begin = must(conn.prepare(mode == DirectMode::one_txn ? "BEGIN IMMEDIATE" : "BEGIN"),
                    "prepare BEGIN");
  auto commit = must(conn.prepare("COMMIT"), "prepare COMMIT");
  const bool txn_per_write = mode == DirectMode::txn_per_write;
  auto write = [&](storage::Statement& st) {
    if (txn_per_write) must_ok(begin.run(), "BEGIN");
    must_ok(st.run(), "insert");
    if (txn_per_write) must_ok(commit.run(), "COMMIT");
  };

  DirectRun run;
  const size_t n = std::min(limit, rows.size());
  const auto start = SteadyClock::now();
  if (mode == DirectMode::one_txn) must_ok(begin.run(), "BEGIN");
  for (size_t i = 0; i < n; ++i) {
    const IngestRow& row = rows[i];
    message.bind_all(f.conversations[row.conversation], kChannel, row.platform_id, "user", kAuthor,
                     row.text, row.created_at, "{}");
    write(message);
    if (!row.memory.empty()) {
      memory.bind_all(f.user_id, row.memory, "", 0, row.created_at, row.created_at);
      write(memory);
    }
    run.rows = i + 1;
    if (budget_s > 0 && (i & 63) == 0 && seconds_since(start) > budget_s) break;
  }
  if (mode == DirectMode::one_txn) must_ok(commit.run(), "COMMIT");
  run.seconds = seconds_since(start);

  const int64_t stored = count_rows(conn, "messages");
  if (stored != static_cast<int64_t>(run.rows)) {
    throw BenchError(fmt::format("direct ingest stored {} of {} messages", stored, run.rows));
  }
  return run;
}

void report_direct(const char* label, const DirectRun& run, size_t planned) {
  note("{}: {} messages + {} memories in {:.2f} s{}", label, run.rows,
       (run.rows + kMemoryEvery - 1) / kMemoryEvery, run.seconds,
       run.rows < planned ? fmt::format(" (stopped at the time budget; planned {})", planned)
                          : std::string());
}

void bench_ingest(const TempDir& dir, const Sizes& sizes, Report& report) {
  const auto gen_start = SteadyClock::now();
  const std::vector<IngestRow> rows = make_ingest_rows(sizes.ingest_messages);
  note("ingest: generated {} messages ({} with a memory) in {:.2f} s", rows.size(),
       (rows.size() + kMemoryEvery - 1) / kMemoryEvery, seconds_since(gen_start));

  fs::path db = fresh_db(dir, "ingest_queue");
  const double queue = ingest_queue(db, rows);
  done_with(dir, db);
  report.add("ingest_queue_msgs_per_s", queue, "msgs/s", 0);

  // storage.synchronous: full (an fsync of the WAL per commit: survives power loss too).
  db = fresh_db(dir, "ingest_queue_full");
  const double full = ingest_queue(db, rows, "FULL");
  done_with(dir, db);
  report.add("ingest_queue_full_msgs_per_s", full, "msgs/s", 0);
  report.add("ratio_queue_full_vs_normal", full / queue, "x", 2);

  db = fresh_db(dir, "ingest_naive");
  const DirectRun naive = ingest_direct(db, rows, rows.size(), storage::ConnectionOptions{},
                                        DirectMode::autocommit, sizes.naive_budget_s);
  done_with(dir, db);
  report_direct("ingest_naive (WAL, synchronous=NORMAL, autocommit)", naive, rows.size());
  const double naive_rate = per_second(naive.rows, naive.seconds);
  report.add("ingest_naive_msgs_per_s", naive_rate, "msgs/s", 0);

  db = fresh_db(dir, "ingest_delete_journal");
  const DirectRun journal =
      ingest_direct(db, rows, sizes.delete_journal_rows, storage::ConnectionOptions{.wal = false},
                    DirectMode::txn_per_write, sizes.delete_journal_budget_s);
  done_with(dir, db);
  report_direct(
      "ingest_delete_journal (journal_mode=DELETE, synchronous=NORMAL, "
      "BEGIN/INSERT/COMMIT per write)",
      journal, sizes.delete_journal_rows);
  const double journal_rate = per_second(journal.rows, journal.seconds);
  report.add("ingest_delete_journal_msgs_per_s", journal_rate, "msgs/s", 0);

  db = fresh_db(dir, "ingest_bulk");
  const DirectRun bulk =
      ingest_direct(db, rows, rows.size(), storage::ConnectionOptions{}, DirectMode::one_txn, 0.0);
  done_with(dir, db);
  report_direct("ingest_bulk (WAL, one transaction)", bulk, rows.size());
  const double bulk_rate = per_second(bulk.rows, bulk.seconds);
  report.add("ingest_bulk_msgs_per_s", bulk_rate, "msgs/s", 0);

  // The queue again, with producers shaped like parley's (see ingest_queue_evented).
  db = fresh_db(dir, "ingest_queue_evented");
  const double evented = ingest_queue_evented(db, rows);
  done_with(dir, db);
  report.add("ingest_queue_evented_msgs_per_s", evented, "msgs/s", 0);
  report.add("ratio_evented_vs_naive", evented / naive_rate, "x", 2);
  report.add("ratio_evented_vs_bulk", evented / bulk_rate, "x", 2);

  report.add("ratio_queue_vs_naive", queue / naive_rate, "x", 2);
  report.add("ratio_queue_vs_delete_journal", queue / journal_rate, "x", 2);
  report.add("ratio_queue_vs_bulk", queue / bulk_rate, "x", 2);
}

// ---- Group: latency ----

// One pacer thread offers kOfferedRate messages/s (open loop, fixed schedule) through the
// callback form of append; latency = callback time − submit time.
void bench_latency(const TempDir& dir, const Sizes& sizes, Report& report) {
  const fs::path db = fresh_db(dir, "latency");
  {
    auto store = must(storage::Store::open(storage::StoreOptions{.path = db}), "open store");
    const Fixture f = setup_store(*store);
    const auto n = static_cast<size_t>(kOfferedRate * sizes.latency_seconds);
    std::vector<storage::NewMessage> messages;
    messages.reserve(n);
    for (const IngestRow& row : make_ingest_rows(n)) messages.push_back(make_message(row, f));

    std::vector<SteadyClock::time_point> submitted(n), acked(n);
    std::atomic<size_t> failed{0};
    std::latch all_acked(static_cast<std::ptrdiff_t>(n));
    const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / kOfferedRate));
    SteadyClock::duration max_lag{0};

    const auto start = SteadyClock::now();
    std::thread pacer([&] {
      auto due = SteadyClock::now();
      for (size_t i = 0; i < n; ++i) {
        std::this_thread::sleep_until(due);
        submitted[i] = SteadyClock::now();
        max_lag = std::max(max_lag, submitted[i] - due);
        store->messages().append(std::move(messages[i]),
                                 [&, i](parley::Result<storage::WriteAck> r) {
                                   acked[i] = SteadyClock::now();
                                   if (!r.ok()) failed.fetch_add(1);
                                   all_acked.count_down();
                                 });
        due += interval;
      }
    });
    pacer.join();
    const double offered_s = seconds_since(start);
    all_acked.wait();
    if (failed.load() > 0) throw BenchError(fmt::format("latency: {} acks failed", failed.load()));

    std::vector<double> us(n);
    for (size_t i = 0; i < n; ++i) us[i] = micros(acked[i] - submitted[i]);
    std::sort(us.begin(), us.end());
    const auto stats = store->writes().stats();
    note(
        "latency: {} messages offered at {:.0f}/s over {:.2f} s (pacer max lag {:.0f} us); "
        "mean ack {:.0f} us; {} batches in all, largest {}",
        n, kOfferedRate, offered_s, micros(max_lag), mean(us), stats.batches,
        stats.max_batch_size_seen);
    report.add("ack_latency_p50_us", percentile_sorted(us, 0.50), "us", 0);
    report.add("ack_latency_p99_us", percentile_sorted(us, 0.99), "us", 0);
    report.add("ack_latency_max_us", us.back(), "us", 0);
  }
  done_with(dir, db);
}

// ---- Group: cache ----

// A database of `messages` messages over kCacheDbConversations conversations (one bulk
// transaction).
void build_message_db(const fs::path& db, size_t messages) {
  auto conn = must(storage::Connection::open(db), "open connection");
  must(storage::migrate(conn), "migrate");
  const Fixture f = setup_connection(conn, kCacheDbConversations);
  Rng rng(kSeed + 1);
  const TextGen gen;
  auto txn = must(storage::Transaction::begin(conn), "BEGIN");
  auto insert = must(conn.prepare(kInsertMessageSql), "prepare message insert");
  for (size_t i = 0; i < messages; ++i) {
    insert.bind_all(f.conversations[i % kCacheDbConversations], kChannel, fmt::format("msg-{}", i),
                    "user", kAuthor, gen.sentence(rng), kBaseMs + static_cast<int64_t>(i), "{}");
    must_ok(insert.run(), "insert message");
  }
  must_ok(txn.commit(), "COMMIT");
}

// Zipf(1.1) accesses over kZipfKeys keys against an LRU of kZipfCacheEntries: get, put on miss.
double zipf_hit_rate(const Sizes& sizes) {
  using Cache = storage::LruCache<int64_t, std::shared_ptr<const int>>;
  Cache cache(storage::CacheLimits{.max_entries = kZipfCacheEntries,
                                   .max_bytes = std::numeric_limits<size_t>::max() / 2},
              [](const int64_t&, const std::shared_ptr<const int>&) { return size_t{64}; });
  Rng rng(kSeed + 2);
  const ZipfSampler zipf(kZipfKeys, kZipfKeyS);
  std::vector<int64_t> key_of_rank(kZipfKeys);  // popularity ranks shuffled over the keys
  std::iota(key_of_rank.begin(), key_of_rank.end(), int64_t{0});
  std::shuffle(key_of_rank.begin(), key_of_rank.end(), rng);
  const auto value = std::make_shared<const int>(1);

  auto access = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) {
      const int64_t key = key_of_rank[zipf(rng)];
      if (!cache.get(key)) cache.put(key, value);
    }
  };
  access(sizes.zipf_warmup);
  const auto before = cache.stats();
  const auto start = SteadyClock::now();
  access(sizes.zipf_accesses);
  const double seconds = seconds_since(start);
  const auto after = cache.stats();
  const uint64_t hits = after.hits - before.hits;
  const uint64_t misses = after.misses - before.misses;
  note(
      "cache_hit_rate: Zipf(s={}) over {} keys, {} entries; {} warm-up + {} measured "
      "accesses ({} hits, {} misses, {} evictions, {:.0f} ns/access incl. sampling)",
      kZipfKeyS, kZipfKeys, kZipfCacheEntries, sizes.zipf_warmup, sizes.zipf_accesses, hits, misses,
      after.evictions - before.evictions, seconds * 1e9 / static_cast<double>(sizes.zipf_accesses));
  return static_cast<double>(hits) / static_cast<double>(hits + misses);
}

// Average ns per recent() of conversations whose history is cached (after one warm-up call
// each).
double cache_hit_ns(storage::Store& store, size_t calls) {
  std::vector<int64_t> warm;
  for (size_t c = 1; c <= kWarmConversations; ++c) {
    const auto id = static_cast<int64_t>(c);
    const auto history = must(store.messages().recent(id), "recent (warm-up)");
    if (history->size() != store.messages().history_limit()) {
      throw BenchError(fmt::format("conversation {} has {} cached messages, expected {}", id,
                                   history->size(), store.messages().history_limit()));
    }
    warm.push_back(id);
  }
  const auto before = store.cache().stats();
  size_t sink = 0;
  const auto start = SteadyClock::now();
  for (size_t i = 0; i < calls; ++i) {
    auto history = store.messages().recent(warm[i % warm.size()]);
    if (!history) throw BenchError("recent: " + history.error().describe());
    sink += (*history)->size();
  }
  const double ns = seconds_since(start) * 1e9 / static_cast<double>(calls);
  const auto after = store.cache().stats();
  note(
      "cache_hit_ns: {} recent() calls over {} cached conversations ({} hits, {} misses; {} "
      "messages seen)",
      calls, warm.size(), after.hits - before.hits, after.misses - before.misses, sink);
  return ns;
}

// Average ns per point read by primary key (random existing ids) on a read-only connection
// with one warm prepared statement: bind, step, read every column, reset.
double sqlite_point_read_ns(const fs::path& db, storage::Store& store, size_t reads) {
  const int64_t max_id =
      must(store.reads().acquire()->query_int64("SELECT max(id) FROM messages"), "max id");
  Rng rng(kSeed + 3);
  std::uniform_int_distribution<int64_t> pick(1, max_id);
  std::vector<int64_t> ids(reads);
  for (auto& id : ids) id = pick(rng);

  auto conn =
      must(storage::Connection::open(db, {.mode = storage::ConnectionOptions::Mode::read_only}),
           "open read-only connection");
  auto get = must(conn.prepare("SELECT id, conversation_id, channel, platform_id, role, author, "
                               "text, created_at, metadata FROM messages WHERE id = ?"),
                  "prepare point read");
  size_t text_bytes = 0;
  auto read_all = [&] {
    for (const int64_t id : ids) {
      get.bind_all(id);
      if (!must(get.step(), "point read")) throw BenchError(fmt::format("no message {}", id));
      storage::StoredMessage m;
      m.id = get.column_int64(0);
      m.conversation_id = get.column_int64(1);
      m.channel = get.column_text(2);
      if (!get.column_is_null(3)) m.platform_id = get.column_text(3);
      m.role = get.column_text(4);
      m.author = get.column_text(5);
      m.text = get.column_text(6);
      m.created_at = get.column_int64(7);
      m.metadata = get.column_text(8);
      text_bytes += m.text.size();
      get.reset();
    }
  };
  read_all();  // warm: statement, page cache, mmap
  auto start = SteadyClock::now();
  read_all();
  const double ns = seconds_since(start) * 1e9 / static_cast<double>(ids.size());

  // For context: the same reads through the repository (read pool + cached statement).
  start = SteadyClock::now();
  for (const int64_t id : ids) must(store.messages().get(id), "messages().get");
  const double repo_ns = seconds_since(start) * 1e9 / static_cast<double>(ids.size());
  note(
      "sqlite_point_read_ns: {} random ids in 1..{} (after one warm-up pass; {} text bytes "
      "read); the same through messages().get(): {:.0f} ns/read",
      ids.size(), max_id, text_bytes, repo_ns);
  return ns;
}

void bench_cache(const TempDir& dir, const Sizes& sizes, Report& report) {
  const fs::path db = fresh_db(dir, "cache");
  const auto build_start = SteadyClock::now();
  build_message_db(db, sizes.cache_db_messages);
  note("cache: built {} messages over {} conversations in {:.2f} s", sizes.cache_db_messages,
       kCacheDbConversations, seconds_since(build_start));
  {
    auto store = must(storage::Store::open(storage::StoreOptions{.path = db}), "open store");
    const double cache_ns = cache_hit_ns(*store, sizes.cache_calls);
    const double sqlite_ns = sqlite_point_read_ns(db, *store, sizes.point_reads);
    report.add("cache_hit_ns", cache_ns, "ns", 1);
    report.add("sqlite_point_read_ns", sqlite_ns, "ns", 1);
    report.add("ratio_cache_vs_sqlite", sqlite_ns / cache_ns, "x", 1);
  }
  done_with(dir, db);
  report.add("cache_hit_rate", zipf_hit_rate(sizes), "ratio", 4);
}

// ---- Group: fts ----

// `memories` memories spread uniformly over `users` users, written in large transactions on a
// WAL connection; the triggers fill memories_fts.
void build_memory_db(const fs::path& db, const Sizes& sizes) {
  auto conn = must(storage::Connection::open(db), "open connection");
  must(storage::migrate(conn), "migrate");
  {
    auto txn = must(storage::Transaction::begin(conn), "BEGIN");
    auto user = must(conn.prepare("INSERT INTO users(id, display_name, created_at) "
                                  "VALUES (?, ?, ?)"),
                     "prepare user insert");
    for (size_t u = 1; u <= sizes.fts_users; ++u) {
      must_ok(user.bind_all(static_cast<int64_t>(u), fmt::format("user {}", u), kBaseMs).run(),
              "insert user");
    }
    must_ok(txn.commit(), "COMMIT");
  }
  Rng rng(kSeed + 4);
  const TextGen gen;
  std::uniform_int_distribution<int64_t> pick_user(1, static_cast<int64_t>(sizes.fts_users));
  std::uniform_int_distribution<int> pick_importance(0, 2);
  auto insert = must(conn.prepare(kInsertMemorySql), "prepare memory insert");
  for (size_t done = 0; done < sizes.fts_memories;) {
    auto txn = must(storage::Transaction::begin(conn), "BEGIN");
    const size_t end = std::min(done + kFtsBuildChunk, sizes.fts_memories);
    for (; done < end; ++done) {
      // Drawn in a fixed order (argument evaluation order is unspecified).
      const int64_t user = pick_user(rng);
      const std::string content = gen.sentence(rng);
      const int importance = pick_importance(rng);
      const int64_t at = kBaseMs + static_cast<int64_t>(done);
      insert.bind_all(user, content, "", importance, at, at);
      must_ok(insert.run(), "insert memory");
    }
    must_ok(txn.commit(), "COMMIT");
  }
}

void explain(storage::Connection& conn, std::string_view label, std::string_view sql) {
  auto st = must(conn.prepare(fmt::format("EXPLAIN QUERY PLAN {}", sql)), "explain");
  std::string plan;
  while (must(st.step(), "explain step")) {
    if (!plan.empty()) plan += "; ";
    plan += st.column_text(3);
  }
  note("{} plan: {}", label, plan);
}

struct RecallPair {
  int64_t user_id = 0;
  std::vector<std::string> words;
};

// Random users, each with a query of 1–3 Zipf-drawn content words.
std::vector<RecallPair> make_recall_pairs(size_t n, size_t users, Rng& rng) {
  const TextGen gen;
  std::uniform_int_distribution<int64_t> pick_user(1, static_cast<int64_t>(users));
  std::vector<RecallPair> pairs(n);
  for (auto& p : pairs) {
    p.user_id = pick_user(rng);
    p.words = gen.query_words(rng);
  }
  return pairs;
}

// Per-query latencies (ascending, microseconds) and hit counts of one approach.
struct QueryTimes {
  std::vector<double> us;
  std::vector<double> hits;
};

// Runs `query` (which returns its hit count) over `warmup` untimed, then over `pairs` in order
// until all are done or `budget_s` has passed (0: no budget).
QueryTimes time_queries(const std::vector<RecallPair>& warmup, const std::vector<RecallPair>& pairs,
                        double budget_s, const std::function<size_t(const RecallPair&)>& query) {
  for (const auto& pair : warmup) (void)query(pair);
  QueryTimes t;
  const auto start = SteadyClock::now();
  for (const auto& pair : pairs) {
    const auto t0 = SteadyClock::now();
    const size_t hits = query(pair);
    t.us.push_back(micros(SteadyClock::now() - t0));
    t.hits.push_back(static_cast<double>(hits));
    if (budget_s > 0 && seconds_since(start) > budget_s) break;
  }
  std::sort(t.us.begin(), t.us.end());
  return t;
}

// Steps a statement to completion, reading column `text_column` (when >= 0) of each row, and
// resets it. Returns the row count.
size_t drain(storage::Statement& st, int text_column) {
  size_t n = 0;
  while (must(st.step(), "query step")) {
    if (text_column >= 0) (void)st.column_text(text_column);
    ++n;
  }
  st.reset();
  return n;
}

double share_nonzero(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  const auto n = std::count_if(v.begin(), v.end(), [](double x) { return x > 0; });
  return static_cast<double>(n) / static_cast<double>(v.size());
}

constexpr std::string_view kLikeSql =
    "SELECT id, content FROM memories WHERE user_id = ? AND content LIKE ? LIMIT 10";
constexpr std::string_view kGlobalSql =
    "SELECT m.id FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
    "WHERE memories_fts MATCH ? AND m.user_id = ? ORDER BY bm25(memories_fts) LIMIT 10";
// recall()'s query without bm25: separates matching inside the index from ranking.
constexpr std::string_view kUnrankedSql =
    "SELECT m.id FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
    "WHERE memories_fts MATCH ? ORDER BY m.importance DESC LIMIT 10";

void bench_fts(const TempDir& dir, const Sizes& sizes, Report& report) {
  const fs::path db = fresh_db(dir, "fts");
  const auto build_start = SteadyClock::now();
  build_memory_db(db, sizes);
  note("fts: built {} memories for {} users (~{} each) in {:.1f} s; database {:.0f} MiB",
       sizes.fts_memories, sizes.fts_users, sizes.fts_memories / sizes.fts_users,
       seconds_since(build_start), static_cast<double>(storage::file_size_or_zero(db)) / 1048576);
  {
    auto store = must(storage::Store::open(storage::StoreOptions{.path = db}), "open store");
    Rng rng(kSeed + 5);
    const auto warmup =
        make_recall_pairs(std::max<size_t>(sizes.fts_queries / 10, 20), sizes.fts_users, rng);
    const auto pairs = make_recall_pairs(sizes.fts_queries, sizes.fts_users, rng);

    // recall(): FTS5 scoped to the user inside the index, bm25 top 10.
    const QueryTimes recall = time_queries(warmup, pairs, 0, [&](const RecallPair& p) {
      return must(store->memories().recall(p.user_id, join(p.words, " "), kRecallLimit), "recall")
          .size();
    });

    // The alternatives, on a read-only connection with warm prepared statements.
    auto conn =
        must(storage::Connection::open(db, {.mode = storage::ConnectionOptions::Mode::read_only}),
             "open read-only connection");
    explain(conn, "like_scan", kLikeSql);
    explain(conn, "fts_global_filter", kGlobalSql);
    auto like_st = must(conn.prepare(kLikeSql), "prepare LIKE");
    auto global_st = must(conn.prepare(kGlobalSql), "prepare global MATCH");
    auto unranked_st = must(conn.prepare(kUnrankedSql), "prepare unranked MATCH");

    const QueryTimes like = time_queries(warmup, pairs, 0, [&](const RecallPair& p) {
      like_st.bind_all(p.user_id, "%" + p.words.front() + "%");
      return drain(like_st, 1);
    });
    const QueryTimes global =
        time_queries({warmup.front()}, pairs, sizes.fts_global_budget_s, [&](const RecallPair& p) {
          global_st.bind_all("\"" + join(p.words, "\" OR \"") + "\"", p.user_id);
          return drain(global_st, -1);
        });
    const QueryTimes unranked = time_queries(warmup, pairs, 0, [&](const RecallPair& p) {
      const std::string query = join(p.words, " ");
      unranked_st.bind_all(storage::MemoryRepository::match_expression(p.user_id, query));
      return drain(unranked_st, -1);
    });

    note(
        "fts_recall: {} (user, 1-3 word) pairs after {} warm-up; {:.2f} hits/query avg, "
        "{:.1f}% with a hit; mean {:.0f} us, max {:.0f} us",
        recall.us.size(), warmup.size(), mean(recall.hits), 100 * share_nonzero(recall.hits),
        mean(recall.us), recall.us.back());
    note(
        "fts_recall without bm25 (same scoped MATCH, ORDER BY importance): p50 {:.0f} us, "
        "p95 {:.0f} us; the rest of recall's time is ranking",
        percentile_sorted(unranked.us, 0.50), percentile_sorted(unranked.us, 0.95));
    note("like_scan: same pairs, first word; {:.2f} hits/query avg; p95 {:.0f} us", mean(like.hits),
         percentile_sorted(like.us, 0.95));
    note(
        "fts_global_filter: {} of {} pairs within the {:.0f} s budget; {:.2f} hits/query avg; "
        "p95 {:.0f} us, max {:.0f} us",
        global.us.size(), pairs.size(), sizes.fts_global_budget_s, mean(global.hits),
        percentile_sorted(global.us, 0.95), global.us.back());

    report.add("fts_recall_p50_us", percentile_sorted(recall.us, 0.50), "us", 0);
    report.add("fts_recall_p95_us", percentile_sorted(recall.us, 0.95), "us", 0);
    report.add("like_scan_p50_us", percentile_sorted(like.us, 0.50), "us", 0);
    report.add("fts_global_filter_p50_us", percentile_sorted(global.us, 0.50), "us", 0);
  }
  done_with(dir, db);
}

// ---- Main ----

struct Options {
  bool quick = false;
  bool json = false;
  bool keep = false;
  std::string dir;
  std::vector<std::string> only;

  [[nodiscard]] bool wants(std::string_view group) const {
    return only.empty() || std::find(only.begin(), only.end(), group) != only.end();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Throughput and latency figures of parley's storage layer."};
  app.add_flag("--quick", options.quick, "Small sizes for a smoke run (under ~8 s)");
  app.add_flag("--json", options.json, "Print the figures as one JSON object");
  app.add_option("--dir", options.dir,
                 "Where the temporary databases go (a new directory inside it; default: a "
                 "mkdtemp directory under the system temp directory)");
  app.add_option("--only", options.only, "Groups to run: ingest, latency, cache, fts")
      ->delimiter(',')
      ->check(CLI::IsMember(std::vector<std::string>{"ingest", "latency", "cache", "fts"}));
  app.add_flag("--keep", options.keep, "Keep the databases (and print where they are)");
  size_t ingest_messages = 0;
  app.add_option("--ingest-messages", ingest_messages,
                 "Messages of the ingest group (default: 200,000; --quick: 5,000)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  // Storage logs (e.g. "database migrated") go to stderr, never among the figures.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::warn);

  try {
    Sizes sizes = options.quick ? kQuickSizes : kFullSizes;
    if (ingest_messages > 0) sizes.ingest_messages = ingest_messages;
    const TempDir dir("parley-bench-", options.dir, options.keep);
    note("bench_storage: {} run, databases in {}, {} hardware threads",
         options.quick ? "quick" : "full", dir.path().string(),
         std::thread::hardware_concurrency());
    Report report(options.json);
    const auto start = SteadyClock::now();
    if (options.wants("ingest")) bench_ingest(dir, sizes, report);
    if (options.wants("latency")) bench_latency(dir, sizes, report);
    if (options.wants("cache")) bench_cache(dir, sizes, report);
    if (options.wants("fts")) bench_fts(dir, sizes, report);
    report.finish();
    note("bench_storage: done in {:.1f} s", seconds_since(start));
  } catch (const std::exception& e) {
    std::cerr << "bench_storage: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
