// The embeddings request body and the reading of responses: order by index, every malformed
// shape named, usage with OpenRouter's cost, errors inside a 200.
#include "parley/bot/clients/llm/embeddings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace parley::bot::llm {
namespace embeddings_test {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(EmbeddingsBody, CarriesModelInputsDimensionsAndFloatEncoding) {
  const std::vector<std::string> inputs = {"a", "b"};
  const json options = {{"provider", {{"allow_fallbacks", false}}}, {"dimensions", 9}};
  json body = embeddings_body(inputs, "m", 256, options);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["input"], json::array({"a", "b"}));
  EXPECT_EQ(body["dimensions"], 256) << "the caller's wins over the model's option";
  EXPECT_EQ(body["encoding_format"], "float");
  EXPECT_EQ(body["provider"]["allow_fallbacks"], false) << "the model's options are kept";

  body = embeddings_body(inputs, "m", 0, options);
  EXPECT_FALSE(body.contains("dimensions")) << "not asked: not sent";
}

TEST(ParseEmbeddings, VectorsAreOrderedByIndexWithModelAndUsage) {
  const auto r = parse_embeddings(
      R"({"object": "list", "model": "text-embedding-3-small",
          "data": [{"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                   {"object": "embedding", "index": 0, "embedding": [1, -0.5]}],
          "usage": {"prompt_tokens": 7, "total_tokens": 7, "cost": 0.00000014}})",
      2, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->vectors.size(), 2u);
  EXPECT_EQ(r->vectors[0], (std::vector<float>{1.0F, -0.5F}));
  EXPECT_EQ(r->vectors[1], (std::vector<float>{0.0F, 1.0F}));
  EXPECT_EQ(r->model, "text-embedding-3-small");
  ASSERT_TRUE(r->usage);
  EXPECT_EQ(r->usage->prompt_tokens, 7);
  ASSERT_TRUE(r->usage->cost_usd);
  EXPECT_DOUBLE_EQ(*r->usage->cost_usd, 0.00000014);
}

TEST(ParseEmbeddings, UnaskedDimensionsMustStillAgree) {
  auto r = parse_embeddings(R"({"data": [{"index": 0, "embedding": [1, 2, 3]}]})", 1, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->vectors[0].size(), 3u);
  EXPECT_FALSE(r->usage);
  r = parse_embeddings(
      R"({"data": [{"index": 0, "embedding": [1, 2, 3]}, {"index": 1, "embedding": [1, 2]}]})", 2,
      0);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("data[1]: 2 dimensions, expected 3"));
}

TEST(ParseEmbeddings, EveryMalformedShapeIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"object": "list"})", "no data array"},
      {R"({"data": [{"index": 0, "embedding": [1]}]})", "1 embeddings for 2 inputs"},
      {R"({"data": [1, 2]})", "data[0]: not an object"},
      {R"({"data": [{"index": "0", "embedding": [1]}, {"index": 1, "embedding": [1]}]})",
       "data[0]: no index"},
      {R"({"data": [{"index": 0, "embedding": [1]}, {"index": 2, "embedding": [1]}]})",
       "data[1]: index 2 outside 0..1"},
      {R"({"data": [{"index": -1, "embedding": [1]}, {"index": 0, "embedding": [1]}]})",
       "index -1 outside"},
      {R"({"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [1]}]})",
       "data[1]: index 0 appears twice"},
      {R"({"data": [{"index": 0, "embedding": []}, {"index": 1, "embedding": [1]}]})",
       "data[0]: empty"},
      {R"({"data": [{"index": 0, "embedding": [null]}, {"index": 1, "embedding": [1]}]})",
       "data[0]: element 0 is not a finite number"},
      {R"({"data": [{"index": 0, "embedding": [1e300]}, {"index": 1, "embedding": [1]}]})",
       "not a finite number"},
      {R"({"data": [{"index": 0}, {"index": 1, "embedding": [1]}]})", "not an array of numbers"},
  };
  for (const auto& [body, what] : cases) {
    SCOPED_TRACE(body);
    StreamError in_band;
    const auto r = parse_embeddings(body, 2, 0, &in_band);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::internal);
    EXPECT_THAT(r.error().message, HasSubstr("malformed embeddings response: "));
    EXPECT_THAT(r.error().message, HasSubstr(what));
    EXPECT_TRUE(in_band.message.empty());
  }
}

TEST(ParseEmbeddings, AnErrorBodyIsInBand) {
  StreamError in_band;
  const auto r = parse_embeddings(R"({"error": {"code": 429, "message": "Rate limit exceeded"}})",
                                  1, 0, &in_band);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(in_band.code, 429);
  EXPECT_EQ(in_band.message, "Rate limit exceeded");
}

TEST(EstimateEmbeddingTokens, SumsTheInputs) {
  const std::vector<std::string> inputs = {"12345678", "1"};
  EXPECT_EQ(estimate_embedding_tokens(inputs), 2 + 1);
}

}  // namespace embeddings_test
}  // namespace parley::bot::llm
