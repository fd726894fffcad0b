#include "fakes/fake_embedder.h"

#include <cmath>
#include <string>

namespace parley::fakes {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t fnv1a(std::string_view prefix, std::string_view s) {
  uint64_t h = kFnvOffset;
  for (const std::string_view part : {prefix, s}) {
    for (const char c : part) {
      h ^= static_cast<unsigned char>(c);
      h *= kFnvPrime;
    }
  }
  // MurmurHash3's finaliser: FNV's low bits (the component index) depend only on the low bits
  // of the bytes; mixing spreads every bit over all of them.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u >= 0x80;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Calls fn(word) for every word of `text`, lower-cased.
template <typename Fn>
void for_each_word(std::string_view text, Fn&& fn) {
  std::string word;
  for (const char c : text) {
    if (is_word_byte(c)) {
      word += ascii_lower(c);
    } else if (!word.empty()) {
      fn(std::string_view(word));
      word.clear();
    }
  }
  if (!word.empty()) fn(std::string_view(word));
}

void add_feature(std::vector<double>& v, uint64_t h, double weight) {
  const size_t at = static_cast<size_t>(h % v.size());
  v[at] += (h >> 63) != 0 ? -weight : weight;
}

}  // namespace

std::vector<float> fake_embedding(std::string_view text, int dims) {
  std::vector<double> sum(static_cast<size_t>(dims > 0 ? dims : kFakeEmbeddingDims), 0.0);
  for_each_word(text, [&sum](std::string_view word) {
    add_feature(sum, fnv1a("w:", word), 1.0);
    const std::string padded = " " + std::string(word) + " ";
    for (size_t i = 0; i + 3 <= padded.size(); ++i) {
      add_feature(sum, fnv1a("t:", std::string_view(padded).substr(i, 3)), 0.5);
    }
  });
  double norm = 0;
  for (const double x : sum) norm += x * x;
  norm = std::sqrt(norm);
  std::vector<float> out(sum.size(), 0.0F);
  if (norm == 0) {
    out[0] = 1.0F;
    return out;
  }
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(sum[i] / norm);
  return out;
}

int64_t fake_embedding_tokens(std::string_view text) {
  int64_t words = 0;
  for_each_word(text, [&words](std::string_view) { ++words; });
  return words > 0 ? words : 1;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    sum += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
  return sum;
}

}  // namespace parley::fakes
