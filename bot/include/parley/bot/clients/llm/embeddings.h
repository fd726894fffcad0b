// The request and response sides of an OpenAI-compatible /embeddings call (OpenAI, OpenRouter,
// Ollama's /v1, llama.cpp server started with --embeddings, vLLM): the request body of one
// batch, and the reading of its response. LlmClient::embed (client.h) sends them.
//
// Request: {"model", "input": [texts…], "dimensions"? (only when > 0), "encoding_format":
// "float"}. Response: {"data": [{"index", "embedding": [numbers…]}, …], "model", "usage":
// {"prompt_tokens", "total_tokens", "cost"? (OpenRouter)}}. Vectors are matched to inputs by
// `index`, never by their position in `data`.
//
// Value types; no thread-safety concerns.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "parley/base/result.h"
#include "parley/bot/clients/llm/chat_stream.h"

namespace parley::bot::llm {

// The role whose models the memory layer asks for embeddings, and the purpose its calls are
// recorded under in the usage ledger.
inline constexpr std::string_view kEmbedRole = "embed";
inline constexpr std::string_view kEmbedPurpose = "memory";
// Inputs per HTTP request; a longer EmbedRequest is sent as several requests.
inline constexpr size_t kEmbedBatchLimit = 64;

struct EmbedRequest {
  std::vector<std::string> inputs;  // each non-empty (providers refuse empty inputs)
  int dimensions = 0;               // > 0: asked for, and every vector must have this length
};

// The request body for one batch of `inputs` on `model`. `model_options` (an object from the
// configuration, e.g. OpenRouter's `provider` routing) is merged in first; the fields set here
// win.
nlohmann::json embeddings_body(std::span<const std::string> inputs, const std::string& model,
                               int dimensions,
                               const nlohmann::json& model_options = nlohmann::json::object());

// What one response carried.
struct EmbeddingBatch {
  std::vector<std::vector<float>> vectors;  // in input order
  std::string model;                        // the model that answered ("" when not said)
  std::optional<Usage> usage;               // prompt_tokens and cost, when sent
};

// Reads the response to a batch of `count` inputs. Every index in [0, count) must appear
// exactly once, each embedding an array of numbers of length `dimensions` (when > 0), else all
// of one non-zero length. Anything else is an error (ErrorCode::internal) saying what was
// wrong, in one line. An {"error": …} body (some providers answer errors with HTTP 200) gives
// in_band (when not null) and an error.
Result<EmbeddingBatch> parse_embeddings(std::string_view body, size_t count, int dimensions,
                                        StreamError* in_band = nullptr);

// A rough token count of a batch, for estimates only (see estimate_tokens in types.h).
int64_t estimate_embedding_tokens(std::span<const std::string> inputs) noexcept;

}  // namespace parley::bot::llm
