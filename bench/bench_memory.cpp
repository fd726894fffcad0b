// bench_memory: what parley's memory costs — recall latency over a large store, and the memory
// its vectors take.
//
// Groups (all by default; pick some with --only). Each is a section below, but extraction (in
// memory_extraction_figures.cpp).
//   recall   MemoryRepository::recall_ranked for one user holding 10,000 memories among 1,000,000
//            (1,000 users), top 5: hybrid (BM25 + the exact int8 scan of the user's vectors +
//            reciprocal rank fusion), BM25 alone (the same call without a query vector), and the
//            scan alone (the same call with a vector and a question of no words), over the
//            user's recall index in the hot cache. Question vectors are computed beforehand
//            (fake_embedding, 512 dimensions): no embedding call is timed. Cold: the first call
//            of all (nothing cached, SQLite's pages not read yet), then the median of a few calls
//            each after the hot cache was cleared (the index read again from SQLite, its pages
//            cached by then): with a vector (memories and vectors) and without (memories only).
//   vectors  the memory 10,000 vectors take: as stored (the quantised BLOBs, and the table's
//            pages when SQLite has dbstat), and held in this process (heap and resident set
//            growth once the user's vectors are decoded; the resident set is a lower bound, as
//            the allocator may reuse pages it already holds); and the int8 dot products alone
//            over the vectors held, without SQLite.
//   extraction  automatic memory extraction over a scripted conversation of 100 turns
//            (memory_extraction_figures.cpp): calls per 100 turns and per turn worth reading,
//            prompt tokens per call; with a pause every five turns and after every turn.
//
// The database is built once, on the first group's use (a group that never asks for it does
// not pay for it), by a bench-only bulk path: plain
// INSERTs in large transactions on one connection (the rows MemoryRepository::add and
// put_vector write, minus the ADD events of the trail), since 1,000,000 adds through the write
// queue would take most of the run. Every timed call goes through MemoryRepository.
//
// Figures go to stdout, one per line as `name value unit` (or one JSON object with --json);
// context (sizes, durations) goes to stderr. --quick: 1,000 of 20,000 memories, for a CI smoke
// run (a few seconds).
#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench_report.h"
#include "bench_util.h"
#include "fakes/fake_embedder.h"
#include "memory_extraction_figures.h"
#include "parley/storage/memory_repository.h"
#include "parley/storage/migrations.h"
#include "parley/storage/records.h"
#include "parley/storage/sqlite.h"
#include "parley/storage/store.h"
#include "parley/storage/vector_codec.h"

namespace {

namespace fs = std::filesystem;
using namespace parley::bench;  // the benches' own kit: bench_report.h, bench_util.h
namespace storage = parley::storage;
using Rng = std::mt19937_64;

// ---- Parameters ----

constexpr uint64_t kSeed = 20'250'301;
constexpr int64_t kBaseMs = 1'700'000'000'000;   // created_at of the first memory
constexpr int64_t kSpanMs = 365LL * 86'400'000;  // the memories span a year
constexpr int kDims = 512;
constexpr std::string_view kModel = "fake-embed";
constexpr size_t kLimit = 5;                 // recall's top k, as the tool asks
constexpr size_t kBuildChunk = 50'000;       // memories per build transaction
constexpr int kBuildCacheKib = 512 * 1024;   // the build connection's page cache
constexpr double kWordZipfS = 1.0;           // word frequencies in generated text
constexpr double kFunctionWordShare = 0.35;  // glue words among a memory's words
constexpr size_t kPerVectors = 10'000;       // the vectors figures are per this many
constexpr size_t kColdCalls = 5;             // recalls timed after the hot cache was cleared

struct Sizes {
  size_t memories_total;
  size_t memories_user;  // of the measured user
  size_t users;          // the measured user and the others
  size_t queries;
  size_t warmup;
};

constexpr Sizes kFullSizes{.memories_total = 1'000'000,
                           .memories_user = 10'000,
                           .users = 1'000,
                           .queries = 200,
                           .warmup = 20};
constexpr Sizes kQuickSizes{
    .memories_total = 20'000, .memories_user = 1'000, .users = 20, .queries = 60, .warmup = 10};

template <typename T>
T must(parley::Result<T> r, std::string_view what) {
  if (!r) throw BenchError(fmt::format("{}: {}", what, r.error().describe()));
  return std::move(r).value();
}

void must_ok(const parley::Status& s, std::string_view what) {
  if (!s) throw BenchError(fmt::format("{}: {}", what, s.error().describe()));
}

// ---- Generated memories and questions ----

// Content words, roughly most common first (drawn by Zipf's law).
// clang-format off
constexpr std::string_view kContentWords[] = {
    "likes", "loves", "work", "coffee", "sister", "weekend", "friend", "running", "morning",
    "dog", "family", "job", "music", "book", "dinner", "trip", "mother", "brother", "cooking",
    "garden", "office", "team", "manager", "project", "birthday", "tea", "cat", "car", "house",
    "flat", "city", "moved", "started", "stopped", "decided", "wants", "goal", "habit", "feeling",
    "happy", "tired", "anxious", "stressed", "calm", "excited", "lonely", "proud", "worried",
    "gym", "yoga", "swimming", "cycling", "hiking", "climbing", "football", "tennis", "chess",
    "piano", "guitar", "singing", "painting", "reading", "writing", "podcast", "series", "film",
    "concert", "festival", "museum", "beach", "mountains", "lake", "river", "forest", "park",
    "pizza", "sushi", "curry", "pasta", "salad", "soup", "bread", "cheese", "chocolate", "cake",
    "wine", "beer", "juice", "vegetarian", "vegan", "allergic", "peanuts", "gluten", "spicy",
    "breakfast", "lunch", "recipe", "baking", "sourdough", "restaurant", "cafe", "market",
    "groceries", "budget", "savings", "rent", "mortgage", "salary", "promotion", "interview",
    "colleague", "client", "deadline", "meeting", "presentation", "report", "training", "course",
    "spanish", "french", "german", "japanese", "italian", "lesson", "teacher", "exam", "degree",
    "university", "school", "daughter", "son", "partner", "husband", "wife", "grandmother",
    "grandfather", "aunt", "uncle", "cousin", "niece", "nephew", "baby", "wedding", "engaged",
    "anniversary", "holiday", "flight", "train", "visa", "passport", "hotel", "camping", "tent",
    "doctor", "dentist", "therapy", "medicine", "headache", "sleep", "insomnia", "diet",
    "vitamins", "marathon", "race", "coach", "weights", "protein", "walk", "neighbour",
    "landlord", "furniture", "sofa", "desk", "lamp", "plants", "tomatoes", "roses", "orchids",
    "bike", "laptop", "phone", "camera", "watch", "glasses", "keys", "wallet", "jacket", "shoes",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "march", "may", "june", "july", "september", "october", "december", "tomorrow", "yesterday",
    "tonight", "early", "late", "often", "rarely", "never", "always", "quiet", "loud", "teal",
    "blue", "green", "red", "volunteering", "charity", "church", "mosque", "temple", "politics",
    "news", "history", "science", "physics", "poetry", "novel", "comics", "games", "puzzle",
    "knitting", "sewing", "woodworking", "fishing", "surfing", "skiing", "snowboarding",
    "photography", "drawing", "pottery", "dancing", "salsa", "jazz", "rock", "classical", "opera",
    "theatre", "ballet", "gallery", "leeds", "manchester", "london", "lisbon", "vienna", "lyon",
    "seville", "berlin", "porto", "dublin", "oslo", "katarina", "tom", "priya", "jamal", "ingrid",
    "felix", "biscuit", "luna", "max"};

// Glue between content words (stop words: recall drops them from questions).
constexpr std::string_view kFunctionWords[] = {
    "i", "my", "the", "a", "to", "and", "of", "in", "is", "for", "on", "with", "at", "her", "his",
    "was", "has", "every", "she", "he"};

// What a question wraps its content words in: stop words only.
constexpr std::string_view kQuestionFrames[] = {
    "what do you know about {}?", "tell me about {}", "do I {}?", "what did I say about {}?",
    "remember {}?", "when was {}?", "who is {}?"};
// clang-format on

// Memories of 4–14 words and questions of 1–3 content words over one Zipfian vocabulary.
class TextGen {
 public:
  TextGen() : words_(std::size(kContentWords), kWordZipfS) {}

  [[nodiscard]] std::string memory(Rng& rng) const {
    const int n = std::uniform_int_distribution<int>(4, 14)(rng);
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (!out.empty()) out += ' ';
      if (std::bernoulli_distribution(kFunctionWordShare)(rng)) {
        out += kFunctionWords[std::uniform_int_distribution<size_t>(
            0, std::size(kFunctionWords) - 1)(rng)];
      } else {
        out += kContentWords[words_(rng)];
      }
    }
    return out;
  }

  [[nodiscard]] std::string question(Rng& rng) const {
    const int n = std::uniform_int_distribution<int>(1, 3)(rng);
    std::string words;
    for (int i = 0; i < n; ++i) {
      if (!words.empty()) words += ' ';
      words += kContentWords[words_(rng)];
    }
    const auto frame = kQuestionFrames[std::uniform_int_distribution<size_t>(
        0, std::size(kQuestionFrames) - 1)(rng)];
    return fmt::format(fmt::runtime(frame), words);
  }

 private:
  ZipfSampler words_;
};

// ---- The database (bench-only setup) ----

// The memories' and the vectors' rows as MemoryRepository::add and put_vector write them.
constexpr std::string_view kInsertMemorySql =
    "INSERT INTO memories(user_id, content, tags, importance, created_at, updated_at, kind, "
    "event_at, confidence, source, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)";
constexpr std::string_view kInsertVectorSql =
    "INSERT INTO memory_vectors(memory_id, model, dimensions, scale, vector, created_at) "
    "VALUES (?,?,?,?,?,?)";

constexpr int64_t kMeasuredUser = 1;

// Builds `db`: sizes.users users; memories_user memories of user 1 spread evenly among the
// others' (so that the user's rows and vectors lie across the whole table, as years of writes
// leave them), every one with its fake_embedding vector. BENCH-ONLY: written on a connection of
// its own, bypassing the write queue (see the header comment).
void build_memory_db(const fs::path& db, const Sizes& sizes) {
  // A large page cache: the indexes outgrow the default 8 MiB early in a 1M build.
  auto conn =
      must(storage::Connection::open(db, {.page_cache_kib = kBuildCacheKib}), "open connection");
  must(storage::migrate(conn), "migrate");
  {
    auto txn = must(storage::Transaction::begin(conn), "BEGIN");
    auto user =
        must(conn.prepare("INSERT INTO users(id, display_name, created_at) VALUES (?, ?, ?)"),
             "prepare user insert");
    for (size_t u = 1; u <= sizes.users; ++u) {
      must_ok(user.bind_all(static_cast<int64_t>(u), fmt::format("user {}", u), kBaseMs).run(),
              "insert user");
    }
    must_ok(txn.commit(), "COMMIT");
  }
  Rng rng(kSeed);
  const TextGen gen;
  std::uniform_int_distribution<int64_t> pick_other(2, static_cast<int64_t>(sizes.users));
  std::uniform_int_distribution<int> pick_importance(0, 5);
  std::uniform_int_distribution<size_t> pick_kind(0, std::size(storage::kMemoryKinds) - 1);
  auto memory = must(conn.prepare(kInsertMemorySql), "prepare memory insert");
  auto vector = must(conn.prepare(kInsertVectorSql), "prepare vector insert");
  // Every stride-th memory is the measured user's.
  const size_t stride = sizes.memories_total / sizes.memories_user;
  size_t users_own = 0;
  for (size_t done = 0; done < sizes.memories_total;) {
    auto txn = must(storage::Transaction::begin(conn), "BEGIN");
    const size_t end = std::min(done + kBuildChunk, sizes.memories_total);
    for (; done < end; ++done) {
      const bool own = done % stride == 0 && users_own < sizes.memories_user;
      users_own += own ? 1 : 0;
      // Drawn in a fixed order (argument evaluation order is unspecified).
      const int64_t user = own ? kMeasuredUser : pick_other(rng);
      const std::string content = gen.memory(rng);
      const int importance = pick_importance(rng);
      const char* kind = storage::kMemoryKinds[pick_kind(rng)];
      const int64_t at = kBaseMs + static_cast<int64_t>(done) * kSpanMs /
                                       static_cast<int64_t>(sizes.memories_total);
      must_ok(memory
                  .bind_all(user, content, "", importance, at, at, kind, at, 1.0, "user",
                            storage::MemoryRepository::content_hash(content))
                  .run(),
              "insert memory");
      const int64_t id = conn.last_insert_rowid();
      const auto q =
          must(storage::quantize(parley::fakes::fake_embedding(content, kDims)), "quantize");
      must_ok(
          vector.bind_all(id, kModel, kDims, static_cast<double>(q.scale), storage::encode(q), at)
              .run(),
          "insert vector");
    }
    must_ok(txn.commit(), "COMMIT");
  }
  if (users_own != sizes.memories_user) {
    throw BenchError(fmt::format("built {} memories of the measured user, wanted {}", users_own,
                                 sizes.memories_user));
  }
}

// The database the groups share: built on first use.
class MemoryDb {
 public:
  MemoryDb(const TempDir& dir, const Sizes& sizes)
      : path_(dir.path() / "memory.db"), sizes_(sizes) {}

  const fs::path& path() {
    if (!built_) {
      const auto start = SteadyClock::now();
      build_memory_db(path_, sizes_);
      note(
          "build: {} memories ({} of user {}) over {} users, each with a {}-dimension vector, "
          "in {:.1f} s; database {:.0f} MiB",
          sizes_.memories_total, sizes_.memories_user, kMeasuredUser, sizes_.users, kDims,
          seconds_since(start),
          static_cast<double>(storage::file_size_or_zero(path_) +
                              storage::file_size_or_zero(path_.string() + "-wal")) /
              1048576.0);
      built_ = true;
    }
    return path_;
  }

 private:
  fs::path path_;
  const Sizes sizes_;
  bool built_ = false;
};

// ---- Group: recall ----

struct Question {
  std::string text;
  std::vector<float> vector;  // fake_embedding(text)
};

std::vector<Question> make_questions(size_t n, Rng& rng) {
  const TextGen gen;
  std::vector<Question> out(n);
  for (auto& q : out) {
    q.text = gen.question(rng);
    q.vector = parley::fakes::fake_embedding(q.text, kDims);
  }
  return out;
}

storage::RecallRequest request(std::string_view text, const std::vector<float>* vector) {
  storage::RecallRequest r;
  r.user_id = kMeasuredUser;
  r.query = text;
  r.limit = kLimit;
  r.now_ms = kBaseMs + kSpanMs;
  if (vector != nullptr) {
    r.query_vector = *vector;
    r.vector_model = std::string(kModel);
    r.vector_dimensions = kDims;
  }
  return r;
}

struct Timings {
  std::vector<double> us;
  double results = 0;  // summed over the calls

  void sort() { std::sort(us.begin(), us.end()); }
};

// One recall_ranked call, timed (the request, and its copy of the vector, built beforehand).
void timed_recall(storage::MemoryRepository& memories, const storage::RecallRequest& r,
                  Timings& t) {
  const auto start = SteadyClock::now();
  auto hits = memories.recall_ranked(r);
  const double us = micros(SteadyClock::now() - start);
  if (!hits) throw BenchError(fmt::format("recall_ranked: {}", hits.error().describe()));
  t.us.push_back(us);
  t.results += static_cast<double>(hits->size());
}

void bench_recall(MemoryDb& db, const Sizes& sizes, Report& report) {
  const fs::path& path = db.path();
  auto store = must(storage::Store::open(storage::StoreOptions{.path = path}), "open store");
  storage::MemoryRepository& memories = store->memories();
  const auto missing = must(memories.memories_without_vector(kMeasuredUser, kModel, kDims, 1),
                            "memories_without_vector");
  if (!missing.empty()) throw BenchError("a memory of the measured user has no vector");

  Rng rng(kSeed + 1);
  const auto warmup = make_questions(sizes.warmup, rng);
  const auto questions = make_questions(sizes.queries, rng);
  Timings hybrid;
  Timings bm25;
  Timings scan;
  Timings ignored;
  Timings cold_first;
  timed_recall(memories, request(warmup.front().text, &warmup.front().vector), cold_first);
  // Each question asked the three ways in turn, so that all three meet the same caches.
  const auto ask = [&](const Question& q, Timings& h, Timings& b, Timings& s) {
    const auto with_vector = request(q.text, &q.vector);
    const auto words_only = request(q.text, nullptr);
    const auto vector_only = request("", &q.vector);  // no words: no BM25, the scan alone
    timed_recall(memories, with_vector, h);
    timed_recall(memories, words_only, b);
    timed_recall(memories, vector_only, s);
  };
  for (const auto& q : warmup) ask(q, ignored, ignored, ignored);
  const auto start = SteadyClock::now();
  for (const auto& q : questions) ask(q, hybrid, bm25, scan);
  const double seconds = seconds_since(start);
  // What the hot cache holds now: the user's recall index, essentially.
  const size_t cache_bytes = store->cache().stats().bytes;
  // The index read again from SQLite: the hot cache cleared before each call.
  Timings cold_hybrid;
  Timings cold_bm25;
  for (size_t i = 0; i < kColdCalls; ++i) {
    const Question& q = questions[i % questions.size()];
    store->cache().clear();
    timed_recall(memories, request(q.text, &q.vector), cold_hybrid);
    store->cache().clear();
    timed_recall(memories, request(q.text, nullptr), cold_bm25);
  }
  for (Timings* t : {&hybrid, &bm25, &scan, &cold_hybrid, &cold_bm25}) t->sort();

  const auto n = static_cast<double>(questions.size());
  note(
      "recall: {} questions (after {} warm-up) of 1-3 content words, top {}, in {:.1f} s; "
      "results per call: hybrid {:.2f}, bm25 {:.2f}, scan {:.2f}",
      questions.size(), warmup.size(), kLimit, seconds, hybrid.results / n, bm25.results / n,
      scan.results / n);
  note("recall: max hybrid {:.0f} us, bm25 {:.0f} us, scan {:.0f} us; e.g. \"{}\"",
       hybrid.us.back(), bm25.us.back(), scan.us.back(), questions.front().text);

  report.add("memories_total", static_cast<double>(sizes.memories_total), "memories", 0);
  report.add("memories_user", static_cast<double>(sizes.memories_user), "memories", 0);
  report.add("recall_hybrid_p50_us", percentile_sorted(hybrid.us, 0.50), "us", 0);
  report.add("recall_hybrid_p95_us", percentile_sorted(hybrid.us, 0.95), "us", 0);
  report.add("recall_bm25_p50_us", percentile_sorted(bm25.us, 0.50), "us", 0);
  report.add("recall_bm25_p95_us", percentile_sorted(bm25.us, 0.95), "us", 0);
  report.add("vector_scan_p50_us", percentile_sorted(scan.us, 0.50), "us", 0);
  report.add("vector_scan_p95_us", percentile_sorted(scan.us, 0.95), "us", 0);
  report.add("recall_hot_cache_bytes", static_cast<double>(cache_bytes), "bytes", 0);
  report.add("recall_cold_first_ms", cold_first.us.front() / 1000.0, "ms", 1);
  report.add("recall_cold_ms", percentile_sorted(cold_hybrid.us, 0.50) / 1000.0, "ms", 1);
  report.add("recall_cold_bm25_ms", percentile_sorted(cold_bm25.us, 0.50) / 1000.0, "ms", 1);
}

// ---- Group: vectors ----

// Bytes of the heap in use (glibc), for what a structure holds regardless of the pages the
// allocator kept from earlier.
size_t heap_in_use() { return ::mallinfo2().uordblks; }

void bench_vectors(MemoryDb& db, const Sizes& sizes, Report& report) {
  const fs::path& path = db.path();
  auto conn =
      must(storage::Connection::open(path, {.mode = storage::ConnectionOptions::Mode::read_only}),
           "open read-only connection");
  const double per = static_cast<double>(kPerVectors) / static_cast<double>(sizes.memories_user);

  // As stored: the BLOBs (one byte per dimension; the scale is a REAL beside each).
  auto stored = must(conn.prepare("SELECT count(*), sum(length(v.vector)) FROM memories m JOIN "
                                  "memory_vectors v ON v.model = ? AND v.dimensions = ? AND "
                                  "v.memory_id = m.id WHERE m.user_id = ?"),
                     "prepare stored bytes");
  stored.bind_all(kModel, kDims, kMeasuredUser);
  if (!must(stored.step(), "stored bytes")) throw BenchError("stored bytes: no row");
  const int64_t vectors = stored.column_int64(0);
  const int64_t blob_bytes = stored.column_int64(1);
  stored.reset();
  report.add("vector_bytes_per_10k", static_cast<double>(blob_bytes) * per, "bytes", 0);
  // The table's pages, rows and b-tree included, when SQLite was built with dbstat.
  auto pages = conn.query_int64(
      "SELECT sum(pgsize) FROM dbstat WHERE name = 'memory_vectors' AND aggregate = 0");
  auto rows = conn.query_int64("SELECT count(*) FROM memory_vectors");
  if (pages && rows && *rows > 0) {
    note("vectors: memory_vectors holds {} rows (every user's) in {:.0f} MiB", *rows,
         static_cast<double>(*pages) / 1048576.0);
    report.add(
        "vector_table_bytes_per_10k",
        static_cast<double>(*pages) * static_cast<double>(kPerVectors) / static_cast<double>(*rows),
        "bytes", 0);
  } else {
    note("vectors: no dbstat in this SQLite; table pages not measured");
  }

  // Held: the user's vectors decoded into memory, as an in-process index would keep them.
  auto select = must(conn.prepare("SELECT v.scale, v.vector FROM memories m JOIN memory_vectors v "
                                  "ON v.model = ? AND v.dimensions = ? AND v.memory_id = m.id "
                                  "WHERE m.user_id = ?"),
                     "prepare vectors");
  ::malloc_trim(0);
  const long rss_before = proc_status(kThisProcess).rss_kib;
  const size_t heap_before = heap_in_use();
  std::vector<storage::QuantizedVector> held;
  held.reserve(static_cast<size_t>(vectors));
  select.bind_all(kModel, kDims, kMeasuredUser);
  while (must(select.step(), "read vectors")) {
    held.push_back(
        must(storage::decode(select.column_blob(1), select.column_double(0), kDims), "decode"));
  }
  select.reset();
  const size_t heap_after = heap_in_use();
  const long rss_after = proc_status(kThisProcess).rss_kib;
  report.add("vectors_held_heap_bytes_per_10k", static_cast<double>(heap_after - heap_before) * per,
             "bytes", 0);
  report.add("vectors_held_rss_kib_per_10k", static_cast<double>(rss_after - rss_before) * per,
             "KiB", 0);

  // The int8 dot products alone, over the vectors held.
  Rng rng(kSeed + 2);
  const auto questions = make_questions(std::max<size_t>(sizes.queries / 5, 20), rng);
  std::vector<double> us;
  float checksum = 0;
  for (const auto& q : questions) {
    const auto query = must(storage::quantize(q.vector), "quantize question");
    const auto start = SteadyClock::now();
    float best = -1;
    for (const auto& v : held) best = std::max(best, must(storage::dot(query, v), "dot"));
    us.push_back(micros(SteadyClock::now() - start));
    checksum += best;
  }
  std::sort(us.begin(), us.end());
  note(
      "vectors: {} of user {} held; dot products over all of them for {} questions (best "
      "cosine {:.2f} on average)",
      held.size(), kMeasuredUser, questions.size(),
      checksum / static_cast<float>(questions.size()));
  report.add("vector_dot_p50_us", percentile_sorted(us, 0.50), "us", 0);
}

// ---- Main ----

struct Group {
  std::string_view name;
  void (*run)(MemoryDb&, const Sizes&, Report&);
};

void bench_extraction_group(MemoryDb& /*db*/, const Sizes& /*sizes*/, Report& report) {
  bench_extraction(report);
}

constexpr Group kGroups[] = {
    {"recall", bench_recall}, {"vectors", bench_vectors}, {"extraction", bench_extraction_group}};

struct Options {
  bool quick = false;
  bool json = false;
  bool keep = false;
  std::string dir;
  std::vector<std::string> only;
  size_t memories = 0;       // 0: the preset's
  size_t user_memories = 0;  // 0: the preset's

  [[nodiscard]] bool wants(std::string_view group) const {
    return only.empty() || std::find(only.begin(), only.end(), group) != only.end();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Recall latency and vector memory of parley's memories."};
  app.add_flag("--quick", options.quick, "Small sizes for a smoke run (a few seconds)");
  app.add_flag("--json", options.json, "Print the figures as one JSON object");
  app.add_option("--dir", options.dir,
                 "Where the temporary database goes (a new directory inside it; default: a "
                 "mkdtemp directory under the system temp directory)");
  std::vector<std::string> names;
  for (const auto& g : kGroups) names.emplace_back(g.name);
  app.add_option("--only", options.only, "Groups to run: recall, vectors, extraction")
      ->delimiter(',')
      ->check(CLI::IsMember(names));
  app.add_flag("--keep", options.keep, "Keep the database (and print where it is)");
  app.add_option("--memories", options.memories,
                 "Memories in all (default 1,000,000; quick 20,000)");
  app.add_option("--user-memories", options.user_memories,
                 "Memories of the measured user (default 10,000; quick 1,000)");
  CLI11_PARSE(app, argc, argv);

  // Storage logs (e.g. "database migrated") go to stderr, never among the figures.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));
  spdlog::set_level(spdlog::level::warn);

  try {
    Sizes sizes = options.quick ? kQuickSizes : kFullSizes;
    if (options.memories > 0) sizes.memories_total = options.memories;
    if (options.user_memories > 0) sizes.memories_user = options.user_memories;
    if (sizes.memories_user == 0 || sizes.memories_user > sizes.memories_total) {
      throw BenchError("--user-memories must be 1 to --memories");
    }
    const TempDir dir("parley-bench-memory-", options.dir, options.keep);
    note("bench_memory: {} run, database in {}, {} hardware threads",
         options.quick ? "quick" : "full", dir.path().string(),
         std::thread::hardware_concurrency());
    Report report(options.json);
    MemoryDb db(dir, sizes);
    const auto start = SteadyClock::now();
    for (const auto& g : kGroups) {
      if (options.wants(g.name)) g.run(db, sizes, report);
    }
    report.finish();
    note("bench_memory: done in {:.1f} s", seconds_since(start));
  } catch (const std::exception& e) {
    std::cerr << "bench_memory: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
