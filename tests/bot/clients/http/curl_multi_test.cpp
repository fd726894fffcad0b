// CurlMulti against the fake LLM endpoint (a plain HTTP/1.1 server): buffered and streamed
// bodies, each deadline kind, aborts, shutdown, many transfers at once.
#include "parley/bot/clients/http/curl_multi.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "fakes/fake_llm.h"

namespace parley::bot::http {
namespace curl_multi_test {

using fakes::FakeLlmServer;
using fakes::FakeReply;
using std::chrono::milliseconds;

class CurlMultiTest : public ::testing::Test {
 protected:
  CurlMultiTest() : work_(net::asio::make_work_guard(ioc_)), multi_(ioc_.get_executor()) {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~CurlMultiTest() override {
    multi_.shutdown();
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  Request post(bool stream = false) {
    Request r;
    r.method = "POST";
    r.url = fake_.base_url() + "/chat/completions";
    r.headers = {"Content-Type: application/json"};
    r.body =
        stream ? R"({"model":"m","stream":true,"messages":[]})" : R"({"model":"m","messages":[]})";
    return r;
  }

  Response fetch(Request r, OnBody body = {}) {
    std::promise<Response> p;
    auto f = p.get_future();
    multi_.start(std::move(r), std::move(body), ioc_.get_executor(),
                 [&p](Response resp) { p.set_value(std::move(resp)); });
    return f.get();
  }

  // Starts `n` transfers at once on `multi`; returns how many answered 200 once all are done.
  int fetch_all(CurlMulti& multi, int n) {
    std::atomic<int> ok{0};
    std::atomic<int> left{n};
    std::promise<void> all;
    for (int i = 0; i < n; ++i) {
      multi.start(post(), {}, ioc_.get_executor(), [&](Response r) {
        if (r.failure == Failure::none && r.status == 200) ++ok;
        if (--left == 0) all.set_value();
      });
    }
    all.get_future().wait();
    return ok.load();
  }

  net::asio::io_context ioc_;
  net::asio::executor_work_guard<net::asio::io_context::executor_type> work_;
  CurlMulti multi_;
  std::thread thread_;
  FakeLlmServer fake_;
};

TEST_F(CurlMultiTest, BufferedBodyStatusAndLowerCasedHeaders) {
  auto reply = FakeReply::text("hi");
  reply.generation_id = "gen-42";
  fake_.push(reply);
  const auto r = fetch(post());
  EXPECT_EQ(r.failure, Failure::none) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-generation-id"), "gen-42");
  EXPECT_NE(r.body.find("\"hi\""), std::string::npos);
  EXPECT_EQ(r.body_bytes, r.body.size());
  EXPECT_TRUE(r.got_first_byte);
  EXPECT_LE(r.first_byte, r.total);
  ASSERT_EQ(fake_.request_count(), 1u);
  EXPECT_EQ(fake_.requests()[0].json["model"], "m");
}

TEST_F(CurlMultiTest, ErrorStatusIsAResponseNotAFailure) {
  fake_.push(FakeReply::error(503));
  const auto r = fetch(post());
  EXPECT_EQ(r.failure, Failure::none);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("scripted error"), std::string::npos);
}

TEST_F(CurlMultiTest, StreamedBodyComesInPiecesOnTheCallback) {
  auto reply = FakeReply::text("streamed text");
  reply.write_bytes = 16;
  reply.interval = milliseconds(2);
  fake_.push(reply);
  std::string seen;
  size_t pieces = 0;
  const auto r = fetch(post(true), [&](long status, std::string_view piece) {
    EXPECT_EQ(status, 200);
    seen += piece;
    ++pieces;
    return true;
  });
  EXPECT_EQ(r.failure, Failure::none) << r.error;
  EXPECT_TRUE(r.body.empty());
  EXPECT_GT(pieces, 1u);
  EXPECT_NE(seen.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(r.body_bytes, seen.size());
}

TEST_F(CurlMultiTest, CallbackCanAbort) {
  const auto r = fetch(post(true), [](long, std::string_view) { return false; });
  EXPECT_EQ(r.failure, Failure::aborted);
}

TEST_F(CurlMultiTest, BufferedBodyOverTheLimitIsRefused) {
  fake_.push(FakeReply::text(std::string(10'000, 'x')));
  auto req = post();
  req.max_body_bytes = 1000;
  const auto r = fetch(req);
  EXPECT_EQ(r.failure, Failure::too_large);
  EXPECT_NE(r.error.find("1000"), std::string::npos) << r.error;
}

TEST_F(CurlMultiTest, ConnectionRefused) {
  uint16_t port = 0;
  {
    FakeLlmServer gone;
    port = gone.port();
  }
  auto req = post();
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions";
  const auto r = fetch(req);
  EXPECT_EQ(r.failure, Failure::connect);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(r.status, 0);
}

TEST_F(CurlMultiTest, FirstByteTimeout) {
  auto reply = FakeReply::text("late");
  reply.delay_before_headers = milliseconds(5000);
  fake_.push(reply);
  auto req = post();
  req.first_byte_timeout = milliseconds(200);
  const auto r = fetch(req);
  EXPECT_EQ(r.failure, Failure::first_byte_timeout);
  EXPECT_FALSE(r.got_first_byte);
}

TEST_F(CurlMultiTest, IdleTimeoutMidStream) {
  auto reply = FakeReply::text("0123456789");
  reply.stall_after_events = 2;
  reply.stall = milliseconds(5000);
  fake_.push(reply);
  auto req = post(true);
  req.idle_timeout = milliseconds(200);
  const auto r = fetch(req, [](long, std::string_view) { return true; });
  EXPECT_EQ(r.failure, Failure::idle_timeout);
  EXPECT_TRUE(r.got_first_byte);
  EXPECT_EQ(r.status, 200);
}

TEST_F(CurlMultiTest, DeadlineWinsOverABusyStream) {
  auto reply = FakeReply::text(std::string(200, 'y'));
  reply.delta_chars = 1;
  reply.interval = milliseconds(20);  // never idle, never finished in time
  fake_.push(reply);
  auto req = post(true);
  req.idle_timeout = milliseconds(1000);
  req.deadline = Clock::now() + milliseconds(300);
  const auto r = fetch(req, [](long, std::string_view) { return true; });
  EXPECT_EQ(r.failure, Failure::deadline);
}

TEST_F(CurlMultiTest, TruncatedChunkedBodyIsATransportFailure) {
  auto reply = FakeReply::text("cut");
  reply.truncate_after_events = 1;
  fake_.push(reply);
  const auto r = fetch(post(true), [](long, std::string_view) { return true; });
  EXPECT_EQ(r.failure, Failure::transport) << r.error;
}

TEST_F(CurlMultiTest, ShutdownCancelsTransfersInFlightExactlyOnce) {
  auto reply = FakeReply::text("never");
  reply.delay_before_headers = milliseconds(10'000);
  fake_.push(reply);
  std::promise<Response> p;
  std::atomic<int> calls{0};
  multi_.start(post(), {}, ioc_.get_executor(), [&](Response r) {
    if (++calls == 1) p.set_value(std::move(r));
  });
  while (fake_.request_count() == 0) std::this_thread::sleep_for(milliseconds(5));
  multi_.shutdown();
  const auto r = p.get_future().get();
  EXPECT_EQ(r.failure, Failure::cancelled);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(calls.load(), 1);
  // After shutdown, new transfers complete at once as cancelled.
  EXPECT_EQ(fetch(post()).failure, Failure::cancelled);
}

TEST_F(CurlMultiTest, ManyTransfersAtOnceShareTheLoopAndConnectionsAreReused) {
  constexpr int kTransfers = 500;
  EXPECT_EQ(fetch_all(multi_, kTransfers), kTransfers);
  EXPECT_EQ(multi_.stats().active, 0u);
  EXPECT_EQ(multi_.stats().started, static_cast<uint64_t>(kTransfers));
  const size_t connections = fake_.connections_accepted();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(fetch(post()).status, 200);
  EXPECT_EQ(fake_.connections_accepted(), connections) << "cached connections are reused";
}

// A burst wider than the connection cache, every transfer waiting at once: past 256 connections
// and none idle, a transfer does not search for one to reuse (curl walks every connection to the
// host to search), and the connections beyond the cache close as their transfers end. Afterwards
// at most the cache's size is open, and what follows reuses connections again: the count of
// open connections that decides both stays true through the burst (counted wrong, every later
// transfer would open and close a connection of its own).
TEST_F(CurlMultiTest, ABurstWiderThanTheCacheKeepsTheCacheSizeAndReusesIt) {
  CurlMulti multi(ioc_.get_executor(), CurlMulti::Options{.max_connects = 8});
  auto slow = std::make_shared<std::atomic<bool>>(true);
  fake_.set_handler([slow](const fakes::RecordedRequest&) -> std::optional<FakeReply> {
    auto reply = FakeReply::text("ok");
    if (*slow) reply.delay_before_headers = milliseconds(500);
    return reply;
  });
  constexpr int kTransfers = 300;
  EXPECT_EQ(fetch_all(multi, kTransfers), kTransfers);
  EXPECT_GT(fake_.connections_accepted(), 256u) << "every transfer waited at once";
  for (int i = 0; i < 200 && fake_.open_connections() > 8; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_LE(fake_.open_connections(), 8u) << "the connections beyond the cache were closed";
  *slow = false;
  const size_t accepted = fake_.connections_accepted();
  for (int i = 0; i < 8; ++i) {
    std::promise<Response> p;
    multi.start(post(), {}, ioc_.get_executor(), [&p](Response r) { p.set_value(std::move(r)); });
    ASSERT_EQ(p.get_future().get().status, 200);
  }
  // The first may find the cache empty (what the burst returned to it early was closed while the
  // cache was over its size); the rest reuse its connection.
  EXPECT_LE(fake_.connections_accepted(), accepted + 1) << "connections are reused";
  multi.shutdown();
}

TEST_F(CurlMultiTest, CompletionIsPostedToTheGivenExecutor) {
  auto strand = net::asio::make_strand(ioc_);
  std::promise<bool> p;
  multi_.start(post(), {}, strand, [&](Response) { p.set_value(strand.running_in_this_thread()); });
  EXPECT_TRUE(p.get_future().get());
}

TEST_F(CurlMultiTest, CoroutineFetch) {
  std::promise<Response> p;
  net::asio::co_spawn(
      ioc_,
      [&]() -> net::asio::awaitable<Response> { co_return co_await async_fetch(multi_, post()); },
      [&](std::exception_ptr, Response r) { p.set_value(std::move(r)); });
  const auto r = p.get_future().get();
  EXPECT_EQ(r.status, 200);
}

}  // namespace curl_multi_test
}  // namespace parley::bot::http
