// MemoryEmbedder: the vectors of hybrid memory recall, through the LLM client's `embed` role.
// A query is embedded before recall (from the embedding cache when the same text was embedded
// before); a memory is embedded in the background once written, its vector stored under the
// model asked and the dimensions (spaces never mix). Every call is priced and budgeted by the
// client (purpose `memory`). Without an `embed` role there is no embedder: recall is BM25 only.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/bot/clients/llm/client.h"
#include "parley/bot/net.h"
#include "parley/storage/store.h"

namespace parley::bot::pipeline {

// "recall by words and meaning (MODEL via PROVIDER, 512 dimensions)", or "recall by words only
// (…why)": for `parley llm`, `run --check` and the serving banner.
std::string memory_recall_line(const llm::ResolvedLlm& llm, int dimensions = 512);

class MemoryEmbedder {
 public:
  static constexpr int kDefaultDimensions = 512;

  // Null when the client has no `embed` role.
  static std::unique_ptr<MemoryEmbedder> make(storage::Store& store, llm::LlmClient* client,
                                              int dimensions = kDefaultDimensions);
  MemoryEmbedder(storage::Store& store, llm::LlmClient& client, std::string model, int dimensions);

  [[nodiscard]] const std::string& model() const { return model_; }
  [[nodiscard]] int dimensions() const { return dimensions_; }

  // The vector of `text`, for `user_id`'s recall; nullopt when it cannot be had by `deadline`
  // (logged; recall is then BM25 only).
  net::asio::awaitable<std::optional<std::vector<float>>> embed_query(
      std::string text, int64_t user_id, std::chrono::steady_clock::time_point deadline);
  // Embeds memory `memory_id` (its text `text`) on `executor` and stores its vector.
  void embed_memory(int64_t memory_id, std::string text, int64_t user_id,
                    const net::Executor& executor);

  // What backfill() did.
  struct BackfillOutcome {
    int64_t embedded = 0;
    int calls = 0;
    std::string stopped;  // why it stopped early ("" when everything has a vector)
  };
  // Embeds every current memory without a vector of this model and dimensions — imports, and
  // all of them after a model change — oldest first, one call per user and batch of up to
  // `batch`, priced and budgeted like any embedding. Stops at the first failed call (logged;
  // the next start goes on from the first memory still without a vector).
  net::asio::awaitable<BackfillOutcome> backfill(size_t batch = 64);

 private:
  storage::Store& store_;
  llm::LlmClient& client_;
  std::string model_;
  int dimensions_;
};

}  // namespace parley::bot::pipeline
