// FileWatcher: an edit in place, a save by rename, and a burst of writes each call back once;
// other files in the directory do not.
#include "parley/bot/config/file_watcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "support/temp_dir.h"

namespace parley::bot {
namespace file_watcher_test {

using std::chrono::milliseconds;

class FileWatcherTest : public ::testing::Test {
 protected:
  FileWatcherTest() : work_(net::asio::make_work_guard(ioc_)) {
    file_ = dir_.path() / "capabilities.yaml";
    write(file_, "a: 1\n");
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FileWatcherTest() override {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  static void write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::trunc) << text;
  }
  // Waits up to `limit` for the count to reach `n`.
  bool wait_for(int n, milliseconds limit = milliseconds(3000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (calls_.load() < n && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return calls_.load() >= n;
  }

  parley::testing::TempDir dir_;
  std::filesystem::path file_;
  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::atomic<int> calls_{0};
};

TEST_F(FileWatcherTest, EditInPlaceAndSaveByRenameEachCallBackOnce) {
  config::FileWatcher w(
      ioc_.get_executor(), file_, [this] { ++calls_; }, milliseconds(50));
  ASSERT_TRUE(w.start().ok());
  write(file_, "a: 2\n");
  ASSERT_TRUE(wait_for(1));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(calls_.load(), 1);

  const auto tmp = dir_.path() / ".capabilities.yaml.swp";
  write(tmp, "a: 3\n");
  std::filesystem::rename(tmp, file_);
  ASSERT_TRUE(wait_for(2));
  w.stop();
}

TEST_F(FileWatcherTest, ABurstIsCoalescedAndOtherFilesAreIgnored) {
  config::FileWatcher w(
      ioc_.get_executor(), file_, [this] { ++calls_; }, milliseconds(150));
  ASSERT_TRUE(w.start().ok());
  write(dir_.path() / "other.yaml", "x\n");
  for (int i = 0; i < 5; ++i) write(file_, "a: " + std::to_string(i) + "\n");
  ASSERT_TRUE(wait_for(1));
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(calls_.load(), 1);
  w.stop();
}

TEST_F(FileWatcherTest, AMissingDirectoryIsAClearError) {
  config::FileWatcher w(ioc_.get_executor(), dir_.path() / "nope" / "capabilities.yaml", [] {});
  const auto st = w.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("nope"), std::string::npos) << st.error().message;
}

}  // namespace file_watcher_test
}  // namespace parley::bot
