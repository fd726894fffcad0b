#include "parley/bot/pipeline/memory_embedder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "parley/bot/clients/llm/embeddings.h"
#include "parley/storage/vector_codec.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;

std::string memory_recall_line(const llm::ResolvedLlm& llm, int dimensions) {
  const auto role = llm.roles.find(std::string(llm::kEmbedRole));
  if (role == llm.roles.end() || role->second.empty()) {
    return "recall by words only (no `embed` role in llm.roles for recall by meaning)";
  }
  if (!llm.configured()) return "recall by words only (no LLM configured)";
  return fmt::format("recall by words and meaning ({} via {}, {} dimensions)",
                     role->second.front().model, role->second.front().provider, dimensions);
}

std::unique_ptr<MemoryEmbedder> MemoryEmbedder::make(storage::Store& store, llm::LlmClient* client,
                                                     int dimensions) {
  if (client == nullptr) return nullptr;
  const auto role = client->settings().roles.find(std::string(llm::kEmbedRole));
  if (role == client->settings().roles.end() || role->second.empty()) return nullptr;
  return std::make_unique<MemoryEmbedder>(store, *client, role->second.front().model, dimensions);
}

MemoryEmbedder::MemoryEmbedder(storage::Store& store, llm::LlmClient& client, std::string model,
                               int dimensions)
    : store_(store), client_(client), model_(std::move(model)), dimensions_(dimensions) {}

asio::awaitable<std::optional<std::vector<float>>> MemoryEmbedder::embed_query(
    std::string text, int64_t user_id, std::chrono::steady_clock::time_point deadline) {
  if (auto cached = store_.memories().cached_embedding(model_, dimensions_, text);
      cached.ok() && *cached) {
    co_return storage::dequantize(**cached);
  }
  llm::EmbedRequest request;
  request.inputs.push_back(text);
  request.dimensions = dimensions_;
  llm::CallOptions options;
  options.role = std::string(llm::kEmbedRole);
  options.purpose = std::string(llm::kEmbedPurpose);
  options.user_id = user_id;
  options.deadline = deadline;
  const llm::EmbedResponse r = co_await client_.embed(std::move(request), std::move(options));
  if (!r.ok() || r.vectors->empty()) {
    spdlog::warn("memory: the question was not embedded ({}); recall by words only",
                 r.error ? r.error->message : std::string("no vector"));
    co_return std::nullopt;
  }
  // Only vectors of the configured model are compared with the stored ones.
  if (r.model_asked != model_) co_return std::nullopt;
  std::vector<float> v = std::move(r.vectors->front());
  store_.memories().put_cached_embedding(model_, dimensions_, text, v,
                                         [](const Result<storage::WriteAck>&) {});
  co_return v;
}

void MemoryEmbedder::embed_memory(int64_t memory_id, std::string text, int64_t user_id,
                                  const net::Executor& executor) {
  llm::EmbedRequest request;
  request.inputs.push_back(std::move(text));
  request.dimensions = dimensions_;
  llm::CallOptions options;
  options.role = std::string(llm::kEmbedRole);
  options.purpose = std::string(llm::kEmbedPurpose);
  options.user_id = user_id;
  client_.embed(std::move(request), std::move(options), executor,
                [this, memory_id](llm::EmbedResponse r) {
                  if (!r.ok() || r.vectors->empty() || r.model_asked != model_) {
                    spdlog::warn("memory: #{} was not embedded ({}); it is found by its words",
                                 memory_id, r.error ? r.error->message : std::string("no vector"));
                    return;
                  }
                  store_.memories().put_vector(
                      memory_id, model_, dimensions_, r.vectors->front(),
                      [memory_id](const Result<storage::WriteAck>& ack) {
                        if (!ack && ack.error().code != ErrorCode::not_found) {
                          spdlog::warn("memory: the vector of #{} was not stored: {}", memory_id,
                                       ack.error().describe());
                        }
                      });
                });
}

asio::awaitable<MemoryEmbedder::BackfillOutcome> MemoryEmbedder::backfill(size_t batch) {
  BackfillOutcome out;
  auto& memories = store_.memories();
  int64_t after = 0;
  for (;;) {
    auto rows = memories.unembedded_after(after, model_, dimensions_, batch);
    if (!rows) {
      out.stopped = rows.error().describe();
      break;
    }
    if (rows->empty()) break;
    after = rows->back().id;
    // One call per user: each user's embeddings are counted against their own budget.
    size_t begin = 0;
    while (begin < rows->size()) {
      const int64_t user = (*rows)[begin].user_id;
      size_t end = begin;
      llm::EmbedRequest request;
      request.dimensions = dimensions_;
      while (end < rows->size() && (*rows)[end].user_id == user) {
        request.inputs.push_back((*rows)[end].content);
        ++end;
      }
      llm::CallOptions options;
      options.role = std::string(llm::kEmbedRole);
      options.purpose = std::string(llm::kEmbedPurpose);
      options.user_id = user;
      ++out.calls;
      const llm::EmbedResponse r = co_await client_.embed(std::move(request), std::move(options));
      if (!r.ok() || r.vectors->size() != end - begin || r.model_asked != model_) {
        out.stopped = r.error ? r.error->message : std::string("no vectors");
        spdlog::warn("memory: embedding memories without a vector stopped at #{}: {}",
                     (*rows)[begin].id, out.stopped);
        co_return out;
      }
      for (size_t i = begin; i < end; ++i) {
        const int64_t id = (*rows)[i].id;
        memories.put_vector(id, model_, dimensions_, (*r.vectors)[i - begin],
                            [id](const Result<storage::WriteAck>& ack) {
                              if (!ack && ack.error().code != ErrorCode::not_found) {
                                spdlog::warn("memory: the vector of #{} was not stored: {}", id,
                                             ack.error().describe());
                              }
                            });
        ++out.embedded;
      }
      begin = end;
    }
  }
  if (out.embedded > 0) {
    spdlog::info("memory: {} memories embedded for recall by meaning ({}, {} dimensions)",
                 out.embedded, model_, dimensions_);
  }
  co_return out;
}

}  // namespace parley::bot::pipeline
