// Tests of the versioned prompt table: every operation, shipped defaults and upstream changes,
// bad input that writes nothing, concurrent setters, and the turn's path seeing changes made
// through another connection.
#include "parley/prompts/library.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "support/temp_dir.h"

namespace parley::prompts {
namespace library_test {

using parley::testing::TempDir;

class LibraryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store();
    lib_ = std::make_unique<PromptLibrary>(*store_, clock_);
    auto seeded = lib_->seed_defaults();
    ASSERT_TRUE(seeded.ok()) << seeded.error().describe();
  }

  std::unique_ptr<storage::Store> open_store() {
    storage::StoreOptions o;
    o.path = dir_ / "parley.db";
    auto s = storage::Store::open(o);
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return std::move(*s);
  }

  size_t versions(std::string_view name) { return lib_->history(name)->size(); }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<PromptLibrary> lib_;
};

TEST_F(LibraryTest, SeedsEveryShippedDefaultOnce) {
  auto all = lib_->list();
  ASSERT_TRUE(all.ok());
  std::set<std::string> names;
  for (const auto& p : *all) {
    names.insert(p.name);
    EXPECT_EQ(p.active_version, 1);
    EXPECT_EQ(p.author, kDefaultsAuthor);
  }
  EXPECT_EQ(names, (std::set<std::string>{"capabilities", "email_reply", "extract", "memory",
                                          "summary", "system"}));
  auto again = lib_->seed_defaults();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->created.empty() && again->updated.empty() && again->upstream.empty());
  EXPECT_EQ(versions("system"), 1u);
}

TEST_F(LibraryTest, ShippedDefaultsAreValidTemplates) {
  for (const auto& d : builtin_defaults()) {
    EXPECT_TRUE(PromptLibrary::validate_text(d.stem, d.text).ok()) << d.stem;
  }
}

TEST_F(LibraryTest, SetCreatesVersionsAndSameTextCreatesNothing) {
  auto v2 = lib_->set("system", "Hello {{user.name}}\n", "ana", "friendlier");
  ASSERT_TRUE(v2.ok()) << v2.error().describe();
  EXPECT_EQ(v2->version, 2);
  EXPECT_TRUE(v2->created);
  auto same = lib_->set("system", "Hello {{user.name}}\n", "bob", "again");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->version, 2);
  EXPECT_EQ(versions("system"), 2u);

  auto active = lib_->get("system");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->version, 2);
  EXPECT_EQ(active->author, "ana");
  EXPECT_EQ(active->reason, "friendlier");
  EXPECT_EQ(lib_->get("system", 1)->author, kDefaultsAuthor);
}

TEST_F(LibraryTest, UnknownPromptNeedsCreate) {
  auto r = lib_->set("greeting", "Hi", "ana", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  auto c = lib_->set("greeting", "Hi", "ana", "", true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(lib_->get("greeting")->text, "Hi");
}

TEST_F(LibraryTest, BadInputIsRefusedAndWritesNothing) {
  const auto before = lib_->history("system")->size();
  struct Case {
    std::string text;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {"  \n\t", "empty"},
                                         {"caf\xc3", "UTF-8"},
                                         {"ok\nthen {{user.nmae}}", "line 2"},
                                         {"{{nope}}", "nope"}}) {
    auto r = lib_->set("system", c.text, "ana", "");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(lib_->set("Bad Name", "x", "ana", "", true).ok());
  EXPECT_EQ(lib_->history("system")->size(), before);
  EXPECT_EQ(lib_->get("nope").error().code, ErrorCode::not_found);
  EXPECT_EQ(lib_->get("system", 42).error().code, ErrorCode::not_found);
  EXPECT_EQ(lib_->get("system", std::nullopt, "missing").error().code, ErrorCode::not_found);
  EXPECT_FALSE(lib_->label("system", "candidate", 42).ok());
  EXPECT_FALSE(lib_->label("system", "Not A Label", 1).ok());
  EXPECT_FALSE(lib_->rollback("system", 42, "ana", "").ok());
  EXPECT_EQ(lib_->history("system")->size(), before);
  EXPECT_TRUE(lib_->list()->front().labels.empty());
}

TEST_F(LibraryTest, HistoryIsOrderedAndCarriesLabels) {
  ASSERT_TRUE(lib_->set("memory", "a {{memories}}", "ana", "r2").ok());
  ASSERT_TRUE(lib_->set("memory", "b {{memories}}", "ana", "r3").ok());
  ASSERT_TRUE(lib_->label("memory", "candidate", 2).ok());
  auto h = lib_->history("memory");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].version, 1);
  EXPECT_EQ((*h)[1].labels, std::vector<std::string>{"candidate"});
  EXPECT_EQ((*h)[2].labels, std::vector<std::string>{"active"});
  EXPECT_EQ(lib_->get("memory", std::nullopt, "candidate")->text, "a {{memories}}");
}

TEST_F(LibraryTest, RollbackIsANewVersionAndNeverRewritesHistory) {
  const std::string v1 = lib_->get("summary")->text;
  ASSERT_TRUE(lib_->set("summary", "short {{summary}}", "ana", "").ok());
  auto r = lib_->rollback("summary", 1, "ana", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, 3);
  EXPECT_TRUE(r->created);
  EXPECT_EQ(lib_->get("summary")->text, v1);
  EXPECT_EQ(lib_->get("summary")->reason, "rollback to version 1");
  EXPECT_EQ(lib_->get("summary", 2)->text, "short {{summary}}");
  auto noop = lib_->rollback("summary", 1, "ana", "");
  ASSERT_TRUE(noop.ok());
  EXPECT_FALSE(noop->created) << "already equal to the active text";
}

TEST_F(LibraryTest, LabelsMoveAndActiveIsALabel) {
  ASSERT_TRUE(lib_->set("system", "new {{channel}}", "ana", "").ok());
  ASSERT_TRUE(lib_->label("system", "candidate", 2).ok());
  ASSERT_TRUE(lib_->label("system", "active", 1).ok());  // going back is one command
  EXPECT_EQ(lib_->get("system")->version, 1);
  EXPECT_EQ(versions("system"), 2u) << "moving a label creates no version";
  ASSERT_TRUE(lib_->label("system", "active", 2).ok());  // and trying again is one command
  EXPECT_EQ(lib_->get("system")->version, 2);
  auto list = lib_->list();
  const auto& sys = *std::find_if(list->begin(), list->end(),
                                  [](const PromptInfo& p) { return p.name == "system"; });
  EXPECT_EQ(sys.labels.at("candidate"), 2);
}

TEST_F(LibraryTest, DiffIsUnifiedAndNamesTheVersions) {
  ASSERT_TRUE(lib_->set("capabilities", "Tools:\n{{capabilities}}\n", "ana", "").ok());
  auto d = lib_->diff("capabilities", 1, 2);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->rfind("--- capabilities v1\n+++ capabilities v2\n@@", 0), 0u) << *d;
  EXPECT_NE(d->find("\n+Tools:\n"), std::string::npos) << *d;
  EXPECT_EQ(lib_->diff("capabilities", 1, 9).error().code, ErrorCode::not_found);
}

TEST_F(LibraryTest, ChangedDefaultBecomesActiveWhenNeverEdited) {
  const std::vector<EmbeddedFile> v1 = {{"greeting", "Hello {{user.name}}"}};
  const std::vector<EmbeddedFile> v2 = {{"greeting", "Hi there {{user.name}}"}};
  ASSERT_TRUE(lib_->seed_defaults(v1).ok());
  auto r = lib_->seed_defaults(v2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->updated, std::vector<std::string>{"greeting"});
  EXPECT_EQ(lib_->get("greeting")->text, "Hi there {{user.name}}");
  EXPECT_EQ(lib_->get("greeting")->version, 2);
  auto status = lib_->status();
  for (const auto& s : *status) EXPECT_FALSE(s.upstream_waiting) << s.name;
}

TEST_F(LibraryTest, ChangedDefaultWaitsUnderUpstreamWhenEdited) {
  const std::vector<EmbeddedFile> v1 = {{"greeting", "Hello {{user.name}}"}};
  const std::vector<EmbeddedFile> v2 = {{"greeting", "Hi there {{user.name}}"}};
  ASSERT_TRUE(lib_->seed_defaults(v1).ok());
  ASSERT_TRUE(lib_->set("greeting", "Yo {{user.name}}", "ana", "house style").ok());
  auto r = lib_->seed_defaults(v2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->upstream, std::vector<std::string>{"greeting"});
  EXPECT_EQ(lib_->get("greeting")->text, "Yo {{user.name}}") << "the operator's text stays active";
  auto up = lib_->get("greeting", std::nullopt, "upstream");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->text, "Hi there {{user.name}}");
  auto status = lib_->status();
  const auto it = std::find_if(status->begin(), status->end(),
                               [](const PromptStatus& s) { return s.name == "greeting"; });
  ASSERT_NE(it, status->end());
  EXPECT_TRUE(it->edited);
  EXPECT_TRUE(it->upstream_waiting);
  EXPECT_EQ(it->upstream_version, up->version);
  // Seeding again with the same release changes nothing.
  auto again = lib_->seed_defaults(v2);
  EXPECT_TRUE(again->upstream.empty());
  // Adopting it is one command; then nothing waits.
  ASSERT_TRUE(lib_->label("greeting", "active", up->version).ok());
  status = lib_->status();
  for (const auto& s : *status) EXPECT_FALSE(s.upstream_waiting) << s.name;
}

TEST_F(LibraryTest, SetLabelTextReusesAnExistingVersion) {
  const std::string v1 = lib_->get("system")->text;
  ASSERT_TRUE(lib_->set("system", "two {{now}}", "ana", "").ok());
  auto same = lib_->set_label_text("system", "old", v1, "ana", "");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, 1);
  EXPECT_FALSE(same->created);
  auto fresh = lib_->set_label_text("system", "next", "three {{now}}", "ana", "");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->version, 3);
  EXPECT_EQ(lib_->get("system")->version, 2) << "not activated";
}

TEST_F(LibraryTest, ActiveIsParsedOnceAndSeesChangesFromAnotherConnection) {
  auto a1 = lib_->active("system");
  ASSERT_TRUE(a1.ok()) << a1.error().describe();
  EXPECT_EQ((*a1)->version, 1);
  auto again = lib_->active("system");
  EXPECT_EQ(a1->get(), again->get()) << "cached: the same parsed object";

  // Another writer on the same database file: a second Store (as another process would be).
  {
    storage::StoreOptions o;
    o.path = dir_ / "parley.db";
    auto other = storage::Store::open(o);
    ASSERT_TRUE(other.ok());
    PromptLibrary other_lib(**other, clock_);
    ASSERT_TRUE(other_lib.set("system", "changed {{channel}}", "ops", "").ok());
  }
  auto a2 = lib_->active("system");
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ((*a2)->version, 2);
  EXPECT_EQ(*(*a2)->parsed.render({{"channel", "irc"}}), "changed irc");
}

TEST_F(LibraryTest, ActiveAllReadsTheGenerationOnceAndAgreesWithActive) {
  auto both = lib_->active_all({"system", "capabilities"});
  ASSERT_TRUE(both.ok()) << both.error().describe();
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].get(), lib_->active("system")->get()) << "the same cached objects";
  EXPECT_EQ((*both)[1].get(), lib_->active("capabilities")->get());
  ASSERT_TRUE(lib_->set("capabilities", "new {{channel}}", "ops", "").ok());
  both = lib_->active_all({"system", "capabilities"});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ((*both)[1]->version, 2) << "a change is seen at the next reading";
  const auto unknown = lib_->active_all({"system", "no-such-prompt"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found) << unknown.error().describe();
}

TEST_F(LibraryTest, ConcurrentSettersGetConsecutiveVersions) {
  // Two stores on one file (two writers, as two processes), four threads each.
  storage::StoreOptions o;
  o.path = dir_ / "parley.db";
  auto other = storage::Store::open(o);
  ASSERT_TRUE(other.ok());
  PromptLibrary other_lib(**other, clock_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      PromptLibrary& lib = t % 2 == 0 ? *lib_ : other_lib;
      for (int i = 0; i < 10; ++i) {
        auto r = lib.set(
            "summary", "t" + std::to_string(t) + "-" + std::to_string(i) + " {{summary}}", "t", "");
        EXPECT_TRUE(r.ok()) << r.error().describe();
      }
    });
  }
  for (auto& th : threads) th.join();
  auto h = lib_->history("summary");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 41u);
  std::set<std::string> texts;
  for (size_t i = 0; i < h->size(); ++i) {
    EXPECT_EQ((*h)[i].version, static_cast<int>(i) + 1) << "no gaps, no duplicates";
    texts.insert((*h)[i].text);
  }
  EXPECT_EQ(texts.size(), 41u) << "every version kept";
}

}  // namespace library_test
}  // namespace parley::prompts
