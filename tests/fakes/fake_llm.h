// FakeLlmServer: a faithful fake of an OpenAI-compatible /chat/completions endpoint for tests
// and benchmarks, on 127.0.0.1 (port 0 by default). A Beast HTTP/1.1 server with keep-alive
// on its own io_context thread.
//
// Every POST to {base_url}/chat/completions is recorded and answered with the next scripted
// FakeReply (FIFO), else with the handler's reply, else with the default reply. A normal reply
// is rendered the way real servers do: a chat.completion JSON body, or — when the request has
// "stream": true — an SSE stream of chat.completion.chunk events (chunked transfer encoding),
// with OpenRouter's ": OPENROUTER PROCESSING" comment first, usage in the final chunk (when
// the request asks for it with stream_options.include_usage or always for OpenRouter-like
// replies; see FakeReply::usage_in_stream) and "data: [DONE]". Fault fields turn a reply into
// a fault: an error status with an OpenAI-style error body and Retry-After, a stall before
// headers, a stall mid-stream, a truncated stream (connection closed without the final chunk),
// malformed JSON, an in-band {"error": …} event after HTTP 200, a plain JSON body for a stream
// request (FakeReply::ignore_stream).
//
// Every POST to {base_url}/embeddings is recorded too and answered with the next scripted
// FakeReply, else the handler's reply, else — never the default reply — deterministic vectors:
// fake_embedding() (fake_embedder.h) of each input at the request's "dimensions" (512 when
// absent), in an OpenAI-shaped list with the request's model echoed and usage {prompt_tokens,
// total_tokens} = fake_embedding_tokens() summed over the inputs. A scripted reply for an
// embeddings request acts through its fault fields (status, error_message, retry_after_s,
// raw_body, delay_before_headers, headers); otherwise it renders those vectors too, with its
// `model` when set, usage.cost when set, no usage when `usage` is empty, and the data in
// reverse index order when reverse_embeddings. "input" must be a string or a non-empty array of
// non-empty strings, "dimensions" a positive integer and "encoding_format" absent or "float":
// anything else is a 400 error, as real servers answer.
//
// GET {base_url}/models answers a one-model list; any other path gets a 404 JSON error. Only
// chat completions and embeddings are recorded.
//
// Stalls and delays are asio timers: one slow reply never holds up another connection.
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::fakes {

struct FakeUsage {
  int64_t prompt_tokens = 12;
  int64_t completion_tokens = 5;
  int64_t cached_tokens = 0;  // usage.prompt_tokens_details.cached_tokens (omitted when 0)
  int64_t reasoning_tokens =
      0;                       // usage.completion_tokens_details.reasoning_tokens (omitted when 0)
  std::optional<double> cost;  // usage.cost (OpenRouter); omitted when empty
};

struct FakeToolCall {
  std::string id;  // e.g. "call_1"
  std::string name;
  std::string arguments;  // sent as-is (a JSON string, possibly invalid on purpose)
};

struct FakeReply {
  // --- A normal completion -------------------------------------------------------------
  std::string content;
  std::vector<FakeToolCall> tool_calls;
  std::string model;          // empty: echo the request's "model"
  std::string finish_reason;  // empty: "tool_calls" when there are tool calls, else "stop"
  std::optional<FakeUsage> usage = FakeUsage{};  // empty: no usage at all (streams end without)
  std::string generation_id;                   // X-Generation-Id header and "id"; empty: "gen-<n>"
  std::map<std::string, std::string> headers;  // extra response headers

  // --- Stream shape (when the request has "stream": true) -----------------------------
  size_t delta_chars = 4;  // content is split into deltas of this many characters
  size_t write_bytes = 0;  // 0: one socket write per SSE event; N: the stream cut into
                           // N-byte writes (splits lines and events across reads)
  std::chrono::milliseconds interval{0};  // between writes
  bool comment = true;                    // ": OPENROUTER PROCESSING" before the first event
  bool usage_in_stream = true;            // usage in the last chunk even without stream_options
  bool reuse_index0 = false;              // parallel tool calls all sent with index 0 (Ollama-like)
  bool crlf = false;                      // lines end with \r\n instead of \n
  bool ignore_stream = false;             // answer a stream request as if it had not asked: one
                                          // application/json chat.completion body (a server that
                                          // ignores "stream": true); `headers` may override the
                                          // Content-Type (e.g. an HTML page with status 200)

  // --- Embeddings -----------------------------------------------------------------------
  bool reverse_embeddings = false;  // data listed last index first (clients must sort by index)

  // --- Faults --------------------------------------------------------------------------
  int status = 200;  // != 200: an error reply (OpenAI error body with `error_message`)
  std::string error_message = "scripted error";
  std::optional<int> retry_after_s;  // Retry-After header (seconds)
  std::string raw_body;              // non-empty: sent as the body verbatim (malformed JSON, …);
                                     // a stream request gets it as its event-stream body, cut
                                     // by write_bytes, with no events of its own
  std::chrono::milliseconds delay_before_headers{0};  // nothing is sent before this
  std::optional<size_t> stall_after_events;  // stream: after N events, send nothing for `stall`
  std::chrono::milliseconds stall{0};
  std::optional<size_t> truncate_after_events;     // stream: after N events, close the connection
                                                   // without the terminating chunk
  std::optional<size_t> error_event_after_events;  // stream: after N events, an in-band
  int error_event_code = 502;                      // {"error": {"code", "message"}} event, then
                                                   // the stream ends (no [DONE], no usage)
  // Events are the `data:` events ([DONE] included, the comment not); N == their number acts
  // after [DONE]. Several faults at one boundary: the stall, then the error event, then the
  // truncation.

  // Builders for the common cases.
  static FakeReply text(std::string content, FakeUsage usage = {});
  static FakeReply tools(std::vector<FakeToolCall> calls, FakeUsage usage = {});
  static FakeReply error(int status, std::optional<int> retry_after_s = std::nullopt);
  static FakeReply malformed();  // HTTP 200, body "{\"choices\": [" (JSON cut short)
};

struct RecordedRequest {
  std::string method;
  std::string target;                          // e.g. "/v1/chat/completions", "/v1/embeddings"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  nlohmann::json json;  // the parsed body (discarded value when not JSON)
  std::chrono::steady_clock::time_point received;
};

class FakeLlmServer {
 public:
  using Handler = std::function<std::optional<FakeReply>(const RecordedRequest&)>;

  struct Options {
    uint16_t port = 0;  // 0: any free port
    int threads = 1;
    FakeReply default_reply = FakeReply::text("ok");
  };

  FakeLlmServer();  // Options{}
  explicit FakeLlmServer(Options options);
  // Stops accepting, closes every connection (stalled ones too), joins its threads.
  // REQUIRES: not called from a handler.
  ~FakeLlmServer();
  FakeLlmServer(const FakeLlmServer&) = delete;
  FakeLlmServer& operator=(const FakeLlmServer&) = delete;

  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] std::string base_url() const;  // "http://127.0.0.1:<port>/v1"

  void push(FakeReply reply);         // answers the next request (FIFO)
  void set_handler(Handler handler);  // consulted when no scripted reply is queued

  [[nodiscard]] std::vector<RecordedRequest> requests() const;
  [[nodiscard]] size_t request_count() const;
  [[nodiscard]] size_t connections_accepted() const;  // to check connection reuse
  [[nodiscard]] size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::fakes
