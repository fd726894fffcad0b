// Hot reload of capabilities.yaml in a running process: a valid edit is put in force, an
// invalid one is rejected with its file:line:column messages and the last good one stays.
#include "parley/bot/config/config_reloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "parley/capabilities/builtins.h"
#include "support/temp_dir.h"

namespace parley::bot {
namespace config_reloader_test {

namespace caps = parley::capabilities;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(ConfigReloader, ValidEditAppliesInvalidEditIsRejectedAndTheLastGoodStays) {
  std::ostringstream logs;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs)));

  testing::TempDir dir;
  const auto path = dir / "capabilities.yaml";
  std::ofstream(path) << "capabilities:\n  calc: {timeout_ms: 1000}\n";
  caps::Registry registry;
  ASSERT_TRUE(caps::register_builtins(registry).ok());
  auto first = caps::load_capabilities_config(path.string(), registry);
  ASSERT_TRUE(first.ok()) << first.describe();
  caps::LiveConfig live(registry, first.config);

  net::asio::io_context ioc;
  auto work = net::asio::make_work_guard(ioc);
  std::thread t([&] { ioc.run(); });
  std::atomic<int> rejected{0};
  config::ConfigReloader reloader(
      ioc.get_executor(), path, live, [&](const caps::ConfigCheck&) { ++rejected; },
      milliseconds(50));
  ASSERT_TRUE(reloader.start().ok());
  auto wait_until = [](const std::function<bool()>& done) {
    for (int i = 0; i < 300 && !done(); ++i) std::this_thread::sleep_for(milliseconds(10));
    return done();
  };

  // An editor's save: write a new file, rename it over the old one.
  std::ofstream(dir / ".tmp") << "capabilities:\n  calc: {timeout_ms: 2000, enabled: false}\n";
  std::filesystem::rename(dir / ".tmp", path);
  ASSERT_TRUE(wait_until([&] { return live.generation() == 2; }));
  const auto calc = live.current()->for_capability(*registry.find("calc"));
  EXPECT_EQ(calc.timeout.count(), 2000);
  EXPECT_FALSE(calc.enabled);

  std::ofstream(path, std::ios::trunc) << "capabilities:\n  calc: {timeout_ms: never}\n";
  ASSERT_TRUE(wait_until([&] { return rejected.load() == 1; }));
  EXPECT_EQ(live.generation(), 2u);
  EXPECT_EQ(live.current()->for_capability(*registry.find("calc")).timeout.count(), 2000);

  reloader.stop();
  work.reset();
  ioc.stop();
  t.join();
  spdlog::set_default_logger(previous);
  EXPECT_THAT(logs.str(), HasSubstr("reloaded"));
  EXPECT_THAT(
      logs.str(),
      HasSubstr("capabilities.yaml:2:22: capabilities.calc.timeout_ms: expected an integer"));
  EXPECT_THAT(logs.str(), HasSubstr("the last good configuration stays in force"));
}

}  // namespace config_reloader_test
}  // namespace parley::bot
