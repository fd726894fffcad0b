// fake_embedding: the deterministic text embedding FakeLlmServer answers /v1/embeddings with,
// here so that tests can compute the vectors they expect.
//
// The text is lower-cased (ASCII letters; other bytes are kept) and cut into words: runs of
// ASCII letters and digits and of non-ASCII bytes (so UTF-8 letters stay inside their word).
// Every word adds 1.0 and every character trigram of " word " (the word padded with a space on
// each side, so a short word still has trigrams and word starts and ends weigh) adds 0.5 to one
// component, chosen by a 64-bit FNV-1a hash of the feature ("w:" + word, "t:" + trigram),
// mixed by MurmurHash3's finaliser, modulo `dims`, with the sign of the hash's top bit. The sum is
// L2-normalised. Texts that share words or trigrams therefore have a high cosine ("pizza" and
// "pizzas" share most trigrams), unrelated texts one near 0. A text with no word at all is the unit
// vector along component 0.
//
// Not a language model: no synonyms, no word order. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace parley::fakes {

inline constexpr int kFakeEmbeddingDims = 512;  // when a request asks for no dimensions

// REQUIRES: dims > 0. Unit length.
std::vector<float> fake_embedding(std::string_view text, int dims = kFakeEmbeddingDims);

// The prompt tokens the fake charges for `text`: its number of words, at least 1.
int64_t fake_embedding_tokens(std::string_view text);

// The dot product, i.e. the cosine of two unit vectors. REQUIRES: a.size() == b.size().
double dot(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace parley::fakes
