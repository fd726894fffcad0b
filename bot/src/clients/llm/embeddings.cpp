#include "parley/bot/clients/llm/embeddings.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "parley/bot/clients/llm/types.h"

namespace parley::bot::llm {

namespace {

using nlohmann::json;

Error malformed_embeddings(const std::string& what) {
  return Error{ErrorCode::internal, "malformed embeddings response: " + what};
}

}  // namespace

json embeddings_body(std::span<const std::string> inputs, const std::string& model, int dimensions,
                     const json& model_options) {
  json body = model_options.is_object() ? model_options : json::object();
  body["model"] = model;
  json input = json::array();
  for (const auto& text : inputs) input.push_back(text);
  body["input"] = std::move(input);
  if (dimensions > 0) {
    body["dimensions"] = dimensions;
  } else {
    body.erase("dimensions");
  }
  // Base64 would be smaller, but not every OpenAI-compatible server implements it.
  body["encoding_format"] = "float";
  return body;
}

Result<EmbeddingBatch> parse_embeddings(std::string_view body, size_t count, int dimensions,
                                        StreamError* in_band) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(malformed_embeddings("the body is not a JSON object"));
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    StreamError err = read_error(*e);
    if (in_band != nullptr) *in_band = err;
    return fail(ErrorCode::unavailable,
                fmt::format("error in the response body (code {}): {}", err.code, err.message));
  }
  auto data = j.find("data");
  if (data == j.end() || !data->is_array()) return fail(malformed_embeddings("no data array"));
  if (data->size() != count) {
    return fail(
        malformed_embeddings(fmt::format("{} embeddings for {} inputs", data->size(), count)));
  }

  EmbeddingBatch out;
  out.vectors.resize(count);
  std::vector<bool> seen(count, false);
  size_t length = dimensions > 0 ? static_cast<size_t>(dimensions) : 0;
  for (size_t i = 0; i < data->size(); ++i) {
    const json& item = (*data)[i];
    if (!item.is_object())
      return fail(malformed_embeddings(fmt::format("data[{}]: not an object", i)));
    auto index = item.find("index");
    if (index == item.end() || !index->is_number_integer()) {
      return fail(malformed_embeddings(fmt::format("data[{}]: no index", i)));
    }
    const int64_t at = index->get<int64_t>();
    if (at < 0 || static_cast<uint64_t>(at) >= count) {
      return fail(
          malformed_embeddings(fmt::format("data[{}]: index {} outside 0..{}", i, at, count - 1)));
    }
    if (seen[static_cast<size_t>(at)]) {
      return fail(malformed_embeddings(fmt::format("data[{}]: index {} appears twice", i, at)));
    }
    seen[static_cast<size_t>(at)] = true;
    auto embedding = item.find("embedding");
    if (embedding == item.end() || !embedding->is_array()) {
      return fail(malformed_embeddings(fmt::format(
          "data[{}]: the embedding is not an array of numbers (encoding_format ignored?)", i)));
    }
    if (embedding->empty()) return fail(malformed_embeddings(fmt::format("data[{}]: empty", i)));
    if (length == 0) length = embedding->size();
    if (embedding->size() != length) {
      return fail(malformed_embeddings(
          fmt::format("data[{}]: {} dimensions, expected {}", i, embedding->size(), length)));
    }
    auto& vector = out.vectors[static_cast<size_t>(at)];
    vector.reserve(length);
    for (const auto& x : *embedding) {
      // Checked as a double: converting one beyond float's range is undefined behaviour.
      const double value = x.is_number() ? x.get<double>() : 0.0;
      if (!x.is_number() || !std::isfinite(value) ||
          std::abs(value) > std::numeric_limits<float>::max()) {
        return fail(malformed_embeddings(
            fmt::format("data[{}]: element {} is not a finite number", i, vector.size())));
      }
      vector.push_back(static_cast<float>(value));
    }
  }
  if (auto m = j.find("model"); m != j.end() && m->is_string()) out.model = m->get<std::string>();
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) out.usage = read_usage(*u);
  return out;
}

int64_t estimate_embedding_tokens(std::span<const std::string> inputs) noexcept {
  int64_t tokens = 0;
  for (const auto& text : inputs) tokens += estimate_tokens(text);
  return tokens;
}

}  // namespace parley::bot::llm
