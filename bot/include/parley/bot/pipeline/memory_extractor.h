// MemoryExtractor: memories written without anyone asking. Once a conversation has been quiet
// for a while (debounced per conversation), the messages it has not read yet go through a free
// pre-filter (small talk, /commands and messages without a first-person statement, a date, a
// number or a name cost nothing), then to one call of a cheap role (`extract`, else `fast`, else
// the default) with the `extract` prompt: the new messages and up to ten of the user's similar
// memories, renumbered so the model cannot name one it was not shown. Its answer — ADD / UPDATE
// / SUPERSEDE / NOOP operations in JSON — is applied conservatively:
//
//   - an exact or near duplicate (the same words, a paraphrase of 80% of the words, or a cosine
//     ≥ 0.92 with a memory of the same kind) is never a new memory;
//   - SUPERSEDE only when the user's words state a change ("moved", "no longer", "now", …) or
//     the new text names the same thing as the old with another value; otherwise the new
//     memory is added and the old one kept;
//   - nothing is ever deleted: forgetting belongs to the user (/forget, /undo);
//   - text that reads like an instruction to the assistant or holds a secret (a key, a
//     password, a card number) is refused.
//
// Every change is in memory_events with source `extracted`, the model and the newest message
// read. Cost: max_tokens bounded and the call reserved through the budgets like any other
// (purpose `extraction`), a per-user daily cap of calls, and no extraction at all while the
// user's or the global spend is past a soft threshold (turns go on). A conversation "off the
// record" is never read: its messages are marked read as they come.
//
// Thread safety: touched() may be called from any thread; the extractor's state lives on its
// strand. extract() may run concurrently for different conversations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "parley/base/clock.h"
#include "parley/bot/clients/llm/client.h"
#include "parley/bot/net.h"
#include "parley/bot/pipeline/memory_embedder.h"
#include "parley/bot/pipeline/options.h"
#include "parley/prompts/library.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

// Whose conversation: extraction writes the user's memories only.
struct ExtractionSubject {
  int64_t conversation_id = 0;
  int64_t user_id = 0;
  std::string user_name;
  std::string time_zone = "UTC";
};

// What one extraction did.
struct ExtractionOutcome {
  bool called = false;  // a model call was made
  std::string skipped;  // why not ("" when called): off the record, nothing new, …
  int added = 0;
  int updated = 0;
  int superseded = 0;
  int unchanged = 0;  // NOOPs and duplicates
  int refused = 0;    // instructions, secrets
  int invalid = 0;    // operations the answer got wrong (an unknown id, no text, …)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t through = 0;  // the newest message read
};

// One operation of the model's answer, checked.
struct ExtractionOp {
  std::string op;  // ADD, UPDATE, SUPERSEDE, NOOP
  size_t ref = 0;  // UPDATE, SUPERSEDE, NOOP: the number of the existing memory (1-based)
  std::string text;
  std::string kind{"fact"};
  int importance = 3;
  double confidence = 0.8;
  std::optional<int64_t> event_at;
  std::vector<size_t> related;  // ADD: numbers of existing memories it is about
  std::string reason;
};

// Whether a message can hold something worth remembering (the free pre-filter): not a
// /command, not only small talk, and a first-person word, a digit, a date word or a name.
bool worth_reading(std::string_view text);
// Why an extracted text must not become a memory (it reads like an instruction to the
// assistant, or holds a secret); nullopt when it may.
std::optional<std::string> extraction_refusal(std::string_view text);
// Whether the user's words state that something changed ("moved to", "no longer", …).
bool states_a_change(std::string_view text);
// The operations of an answer ({"ops": [...]}, possibly in a ```json fence) against `existing`
// memories shown; an operation that is wrong (an id not shown, no text, an unknown op) is
// dropped and described in `rejected`. invalid_argument when the answer is not that object.
Result<std::vector<ExtractionOp>> parse_extraction(std::string_view answer, size_t existing,
                                                   std::vector<std::string>& rejected);

class MemoryExtractor {
 public:
  struct Deps {
    storage::Store& store;
    llm::LlmClient& llm;
    prompts::PromptLibrary& prompts;
    const parley::Clock& clock;
    MemoryEmbedder* embedder = nullptr;  // null: duplicates by words only, no vectors written
    // Told of each memory written (its vector is made then) when there is no embedder.
    std::function<void(int64_t user_id, int64_t memory_id, const std::string& text)> written{};
  };

  MemoryExtractor(Deps deps, ExtractionOptions options, const net::Executor& executor);
  ~MemoryExtractor();
  MemoryExtractor(const MemoryExtractor&) = delete;
  MemoryExtractor& operator=(const MemoryExtractor&) = delete;

  [[nodiscard]] const ExtractionOptions& options() const { return options_; }

  // The conversation has new messages: it is read once it has been quiet for options().quiet.
  void touched(ExtractionSubject subject);
  // Reads the conversation's unread messages now.
  net::asio::awaitable<ExtractionOutcome> extract(ExtractionSubject subject);
  // Runs every pending (debounced) extraction now and waits for all, at most until `deadline`
  // (a graceful shutdown); later touches are ignored.
  net::asio::awaitable<void> flush(std::chrono::steady_clock::time_point deadline);
  // Extractions run since start and model calls made (for tests and benchmarks).
  [[nodiscard]] int64_t calls() const;

 private:
  struct Pending;
  bool active(int64_t conversation_id);
  net::asio::awaitable<void> debounce(int64_t conversation_id);
  net::asio::awaitable<void> apply(const ExtractionSubject& subject, std::vector<ExtractionOp> ops,
                                   const std::vector<std::shared_ptr<const storage::Memory>>& shown,
                                   const std::string& said, const std::string& model,
                                   int64_t through, ExtractionOutcome& out);
  // Whether `text` (kind `kind`) repeats one of `shown` in other words.
  net::asio::awaitable<bool> near_duplicate(
      const ExtractionSubject& subject, const std::string& text, const std::string& kind,
      const std::vector<std::shared_ptr<const storage::Memory>>& shown,
      std::optional<std::vector<float>>& vector);

  Deps deps_;
  ExtractionOptions options_;
  net::asio::strand<net::Executor> strand_;
  std::map<int64_t, std::unique_ptr<Pending>> pending_;  // on strand_
  bool stopping_ = false;                                // on strand_
  int running_ = 0;                                      // on strand_
  std::atomic<int64_t> calls_{0};
  // The conversations being read now (one extraction per conversation at a time, whichever
  // path started it); taken only around an extraction, never in a turn's path.
  std::mutex active_mu_;
  std::set<int64_t> active_;
  friend class ActiveMark;
};

}  // namespace parley::bot::pipeline
