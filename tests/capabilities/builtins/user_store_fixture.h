// A fixture for the built-ins that keep per-user data: a Store in a temp dir with two users,
// Alice and Bob, a ManualClock, the registered built-ins, and a call() that invokes a capability
// as one of the users (the UserScope is the only way it learns whose data to touch).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parley/capabilities/builtins.h"
#include "parley/capabilities/capability.h"
#include "parley/storage/store.h"
#include "support/temp_dir.h"

namespace parley::capabilities {

class UserStoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions o;
    o.path = dir_ / "parley.db";
    o.clock = &clock_;
    auto s = storage::Store::open(o);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    auto a = store_->directory().ensure_user("console", "alice", "Alice").get();
    auto b = store_->directory().ensure_user("console", "bob", "Bob").get();
    ASSERT_TRUE(a.ok() && b.ok());
    alice_.emplace(*store_, a->row_id);
    bob_.emplace(*store_, b->row_id);
    ASSERT_TRUE(register_builtins(registry_).ok());
  }

  // Invokes `capability` as the user of `who` (null: a call without storage access).
  Result<nlohmann::json> call(const std::string& capability, const UserScope* who,
                              const nlohmann::json& args) {
    Capability* cap = registry_.find(capability);
    EXPECT_NE(cap, nullptr) << capability;
    if (cap == nullptr) return fail(ErrorCode::not_found, capability);
    InvokeContext ctx;
    ctx.caller.user_id = who != nullptr ? who->user_id() : 0;
    ctx.data = who;
    ctx.services = &services_;
    return cap->invoke(ctx, args);
  }

  // The result of a call that must succeed.
  nlohmann::json ok(const std::string& capability, const UserScope* who,
                    const nlohmann::json& args) {
    auto r = call(capability, who, args);
    EXPECT_TRUE(r.ok()) << args.dump() << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() ? *r : nlohmann::json();
  }

  testing::TempDir dir_;
  ManualClock clock_{1'795'442'645'000};  // 2026-11-23T14:04:05Z
  Services services_{&clock_};
  std::unique_ptr<storage::Store> store_;
  std::optional<UserScope> alice_;
  std::optional<UserScope> bob_;
  Registry registry_;
};

}  // namespace parley::capabilities
