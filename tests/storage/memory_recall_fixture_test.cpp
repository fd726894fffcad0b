// Recall measured on a committed fixture (fixtures/recall_fixture.json): eight weeks of one
// user's memories in the seed kinds — preferences, a move, a job changed twice, a mood trend,
// habits, a reversed decision — and questions with the memories that answer them, some with
// misspelt names. The fixture is loaded through MemoryRepository (changed facts superseded on
// their day, the clock following the weeks), each memory with its fake_embedding vector; every
// question is asked with BM25 alone and with the question's vector (hybrid). recall@5 of both
// is printed (`recall_at_5_bm25 0.83`) and recorded as a test property; the floors below are
// what the code measured when they were set, less a margin, so that a regression fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "fakes/fake_embedder.h"
#include "parley/storage/memory_repository.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::storage {
namespace memory_recall_fixture_test {

using parley::testing::TempDir;

constexpr int64_t kFixtureDayMs = 86'400'000;
constexpr int64_t kFixtureStartMs = 1'800'000'000'000;
constexpr int kFixtureDims = 512;
constexpr const char* kFixtureModel = "fake-embed";
constexpr size_t kTopK = 5;
// Measured 0.884 (BM25) and 0.935 (hybrid) when set. The fixture is deterministic: a drop
// below a floor is a change in recall, never noise.
constexpr double kBm25Floor = 0.80;
constexpr double kHybridFloor = 0.85;

struct FixtureMemory {
  std::string id;
  std::string user;  // "alice" or "bob"
  int day = 0;
  std::string kind;
  int importance = 0;
  std::string text;
  std::string supersedes;  // a fixture id; "" none
};

struct FixtureQuestion {
  std::string q;
  std::vector<std::string> expect;
  bool about_change = false;
  std::string misspelt;  // the name the question misspells, as the memories spell it; "" none
  std::string note;
};

struct Fixture {
  std::vector<FixtureMemory> memories;
  std::vector<FixtureQuestion> questions;
};

// Throws on a malformed fixture (a test failure, with the message).
Fixture load_fixture() {
  const std::string path =
      std::string(PARLEY_SOURCE_DIR) + "/tests/storage/fixtures/recall_fixture.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto j = nlohmann::json::parse(in);
  Fixture f;
  for (const auto& m : j.at("memories")) {
    f.memories.push_back(FixtureMemory{
        m.at("id").get<std::string>(), m.value("user", std::string("alice")),
        m.at("day").get<int>(), m.at("kind").get<std::string>(), m.at("importance").get<int>(),
        m.at("text").get<std::string>(), m.value("supersedes", std::string())});
  }
  for (const auto& q : j.at("questions")) {
    f.questions.push_back(FixtureQuestion{
        q.at("q").get<std::string>(), q.at("expect").get<std::vector<std::string>>(),
        q.value("about_change", false), q.value("misspelt", std::string()),
        q.value("note", std::string())});
  }
  return f;
}

enum class Mode { bm25, hybrid };

const char* mode_name(Mode m) { return m == Mode::bm25 ? "bm25" : "hybrid"; }

class MemoryRecallFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = load_fixture();
    StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    clock_.set_ms(kFixtureStartMs);
    auto s = Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    users_["alice"] = store_->directory().ensure_user("console", "alice", "Alice").get()->row_id;
    users_["bob"] = store_->directory().ensure_user("console", "bob", "Bob").get()->row_id;

    // In day order (stable: the file's order within a day), each on its day.
    std::vector<FixtureMemory> by_day = fixture_.memories;
    std::stable_sort(by_day.begin(), by_day.end(),
                     [](const FixtureMemory& a, const FixtureMemory& b) { return a.day < b.day; });
    for (const auto& fm : by_day) {
      ASSERT_EQ(users_.count(fm.user), 1u) << fm.id << ": unknown user " << fm.user;
      clock_.set_ms(kFixtureStartMs + fm.day * kFixtureDayMs);
      NewMemory m;
      m.user_id = users_[fm.user];
      m.content = fm.text;
      m.kind = fm.kind;
      m.importance = fm.importance;
      m.event_at = clock_.now_ms();
      Result<WriteAck> ack = WriteAck{};
      if (fm.supersedes.empty()) {
        ack = mem().add(std::move(m)).get();
      } else {
        ASSERT_EQ(row_of_.count(fm.supersedes), 1u) << fm.id << " supersedes an earlier memory";
        std::promise<Result<WriteAck>> p;
        mem().supersede_for_user(row_of_[fm.supersedes], std::move(m),
                                 [&p](Result<WriteAck> r) { p.set_value(std::move(r)); });
        ack = p.get_future().get();
        superseded_.insert(fm.supersedes);
        predecessor_[fm.id] = fm.supersedes;
      }
      ASSERT_TRUE(ack.ok()) << fm.id << ": " << ack.error().describe();
      ASSERT_TRUE(ack->inserted) << fm.id << " duplicates another memory";
      row_of_[fm.id] = ack->row_id;
      id_of_[ack->row_id] = fm.id;
      user_of_[fm.id] = fm.user;
      const auto v = fakes::fake_embedding(fm.text, kFixtureDims);
      auto put = mem().put_vector(ack->row_id, kFixtureModel, kFixtureDims, v).get();
      ASSERT_TRUE(put.ok()) << fm.id << ": " << put.error().describe();
    }
    // The questions are asked the morning after the last day.
    int last_day = 0;
    for (const auto& fm : fixture_.memories) last_day = std::max(last_day, fm.day);
    clock_.set_ms(kFixtureStartMs + (last_day + 1) * kFixtureDayMs);
  }

  MemoryRepository& mem() { return store_->memories(); }

  // alice's top kTopK for `q`, as fixture ids, best first.
  std::vector<std::string> ask(const std::string& q, Mode mode, bool include_superseded) {
    RecallRequest r;
    r.user_id = users_["alice"];
    r.query = q;
    r.limit = kTopK;
    r.now_ms = clock_.now_ms();
    r.include_superseded = include_superseded;
    if (mode == Mode::hybrid) {
      r.query_vector = fakes::fake_embedding(q, kFixtureDims);
      r.vector_model = kFixtureModel;
      r.vector_dimensions = kFixtureDims;
    }
    auto hits = mem().recall_ranked(r);
    EXPECT_TRUE(hits.ok()) << q << ": " << hits.error().describe();
    std::vector<std::string> out;
    if (!hits.ok()) return out;
    for (const auto& h : *hits) {
      auto it = id_of_.find(h.memory->id);
      out.push_back(it == id_of_.end() ? fmt::format("row {}", h.memory->id) : it->second);
    }
    return out;
  }

  // Mean over the questions of |expected ∩ top 5| / |expected|; each miss is printed.
  double recall_at_5(Mode mode) {
    double sum = 0;
    for (const auto& q : fixture_.questions) {
      const auto got = ask(q.q, mode, false);
      size_t found = 0;
      std::vector<std::string> missed;
      for (const auto& e : q.expect) {
        if (std::find(got.begin(), got.end(), e) != got.end()) {
          ++found;
        } else {
          missed.push_back(e);
        }
      }
      sum += static_cast<double>(found) / static_cast<double>(q.expect.size());
      if (!missed.empty()) {
        std::cout << fmt::format("  {} missed {} for \"{}\" ({}); top 5: {}\n", mode_name(mode),
                                 fmt::join(missed, ","), q.q, q.note, fmt::join(got, ","));
      }
    }
    return fixture_.questions.empty() ? 0.0 : sum / static_cast<double>(fixture_.questions.size());
  }

  // The memories `id` superseded, directly or through others.
  std::vector<std::string> predecessors(const std::string& id) {
    std::vector<std::string> out;
    for (auto it = predecessor_.find(id); it != predecessor_.end();
         it = predecessor_.find(out.back())) {
      out.push_back(it->second);
    }
    return out;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  Fixture fixture_;
  std::map<std::string, int64_t> users_;
  std::map<std::string, int64_t> row_of_;           // fixture id → memory id
  std::map<int64_t, std::string> id_of_;            // memory id → fixture id
  std::map<std::string, std::string> user_of_;      // fixture id → user
  std::map<std::string, std::string> predecessor_;  // fixture id → the one it superseded
  std::set<std::string> superseded_;
};

TEST_F(MemoryRecallFixtureTest, RecallAt5OfBm25AndHybridIsReportedAndAboveItsFloor) {
  ASSERT_GE(fixture_.questions.size(), 40u);
  const double bm25 = recall_at_5(Mode::bm25);
  const double hybrid = recall_at_5(Mode::hybrid);
  std::cout << fmt::format("recall_at_5_bm25 {:.3f}\nrecall_at_5_hybrid {:.3f}\n", bm25, hybrid)
            << std::flush;
  RecordProperty("recall_at_5_bm25", fmt::format("{:.3f}", bm25));
  RecordProperty("recall_at_5_hybrid", fmt::format("{:.3f}", hybrid));
  EXPECT_GE(bm25, kBm25Floor);
  EXPECT_GE(hybrid, kHybridFloor);
  // Not asserted: hybrid ≥ BM25. With the fuzzy path BM25 finds the misspelt names too (0.949),
  // and fusion admits any vector with a positive dot product, so the fake embedder's noise can
  // cost a word match a slot (0.942; "How has my mood been lately?").
}

// The fake embedding shares character trigrams between a name and its misspelling; the words
// of BM25 do not (those questions count as misses in its figure).
TEST_F(MemoryRecallFixtureTest, AMisspeltNameIsFoundByTheHybridPath) {
  std::map<std::string, std::string> text_of;
  for (const auto& m : fixture_.memories) text_of[m.id] = m.text;
  size_t asked = 0;
  for (const auto& q : fixture_.questions) {
    if (q.misspelt.empty()) continue;
    ++asked;
    for (const auto& e : q.expect) {
      ASSERT_NE(text_of[e].find(q.misspelt), std::string::npos)
          << e << " does not spell " << q.misspelt << " (the fixture is wrong)";
    }
    const auto got = ask(q.q, Mode::hybrid, false);
    EXPECT_TRUE(std::any_of(
        q.expect.begin(), q.expect.end(),
        [&](const std::string& e) { return std::find(got.begin(), got.end(), e) != got.end(); }))
        << fmt::format("\"{}\" ({}): none of {} in the hybrid top 5 {}", q.q, q.misspelt,
                       fmt::join(q.expect, ","), fmt::join(got, ","));
  }
  EXPECT_GE(asked, 5u);
}

TEST_F(MemoryRecallFixtureTest, TheCurrentValueOfAChangedFactRanksAboveWhatItSuperseded) {
  // Every change is asked about.
  std::set<std::string> asked;
  for (const auto& q : fixture_.questions) {
    if (!q.about_change) continue;
    for (const auto& e : q.expect) {
      for (const auto& old : predecessors(e)) asked.insert(old);
    }
  }
  EXPECT_EQ(asked, superseded_) << "a changed fact no question asks about";

  for (const auto& q : fixture_.questions) {
    if (!q.about_change) continue;
    for (const Mode mode : {Mode::bm25, Mode::hybrid}) {
      const auto got = ask(q.q, mode, true);
      const std::string trace =
          fmt::format("{} \"{}\": top 5 {}", mode_name(mode), q.q, fmt::join(got, ","));
      for (const auto& current : q.expect) {
        const auto at = std::find(got.begin(), got.end(), current);
        ASSERT_NE(at, got.end()) << current << " not recalled; " << trace;
        for (const auto& old : predecessors(current)) {
          const auto old_at = std::find(got.begin(), got.end(), old);
          EXPECT_TRUE(old_at == got.end() || at < old_at)
              << current << " ranked below " << old << ", which it superseded; " << trace;
        }
      }
    }
  }
}

TEST_F(MemoryRecallFixtureTest, NeitherSupersededMemoriesNorAnotherUsersAreRecalled) {
  ASSERT_FALSE(superseded_.empty());
  for (const auto& q : fixture_.questions) {
    for (const Mode mode : {Mode::bm25, Mode::hybrid}) {
      for (const auto& id : ask(q.q, mode, false)) {
        EXPECT_EQ(superseded_.count(id), 0u)
            << mode_name(mode) << " \"" << q.q << "\" recalled " << id << ", superseded";
        EXPECT_EQ(user_of_[id], "alice")
            << mode_name(mode) << " \"" << q.q << "\" recalled " << id << " of " << user_of_[id];
      }
    }
  }
}

}  // namespace memory_recall_fixture_test
}  // namespace parley::storage
