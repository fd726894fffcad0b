#include "recall_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace parley::storage {

namespace {

// BM25 (Robertson/Spärck Jones idf, as Lucene), tags weighted half of content.
constexpr double kBm25K1 = 1.2;
constexpr double kBm25B = 0.75;
constexpr double kBm25TagWeight = 0.5;

// Approximate heap bytes, as hot_cache.cpp counts them.
constexpr size_t kControlBlock = 16;
constexpr size_t kMapNode = 32;  // hash node, bucket, cached hash
size_t string_bytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;  // beyond the small-string buffer
}
size_t record_bytes(const Memory& m) {
  return kControlBlock + sizeof(Memory) + string_bytes(m.content) + string_bytes(m.tags) +
         string_bytes(m.kind) + string_bytes(m.source) + string_bytes(m.content_hash) +
         string_bytes(m.external_id);
}
size_t doc_bytes(const RecallDoc& d) {
  size_t n = kControlBlock + sizeof(RecallDoc) + record_bytes(*d.memory) + d.vector.capacity() +
             (d.content.capacity() + d.tags.capacity()) * sizeof(std::string);
  for (const auto& t : d.content) n += string_bytes(t);
  for (const auto& t : d.tags) n += string_bytes(t);
  return n;
}
template <typename T>
size_t vector_bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);  // NOLINT(bugprone-sizeof-expression): a T* is what it holds
}

// How many times `phrase` (not empty) occurs in tokens[0..n), each start position once: FTS5's
// instances of a phrase in a column.
template <typename Token>
int32_t instances(const Token* tokens, size_t n, const std::vector<Token>& phrase) {
  const size_t k = phrase.size();
  int32_t found = 0;
  for (size_t i = 0; i + k <= n; ++i) {
    if (!(tokens[i] == phrase[0])) continue;
    size_t j = 1;
    while (j < k && tokens[i + j] == phrase[j]) ++j;
    if (j == k) ++found;
  }
  return found;
}

}  // namespace

namespace detail {

std::vector<double> bm25_scores(size_t phrases, const std::vector<int32_t>& doc_tokens,
                                const std::vector<int32_t>& counts, int64_t user_docs) {
  const size_t candidates = doc_tokens.size();
  std::vector<double> scores(candidates, 0.0);
  if (candidates == 0) return scores;
  std::vector<double> df(phrases, 0.0);
  double total_tokens = 0;
  for (size_t c = 0; c < candidates; ++c) {
    total_tokens += doc_tokens[c];
    for (size_t p = 0; p < phrases; ++p) {
      if (counts[(c * phrases + p) * 2] + counts[(c * phrases + p) * 2 + 1] > 0) df[p] += 1;
    }
  }
  const double n = std::max(static_cast<double>(user_docs), static_cast<double>(candidates));
  const double avg_len = std::max(1.0, total_tokens / static_cast<double>(candidates));
  std::vector<double> idf(phrases);
  for (size_t p = 0; p < phrases; ++p) {
    idf[p] = std::log(1.0 + (n - df[p] + 0.5) / (df[p] + 0.5));
  }
  for (size_t c = 0; c < candidates; ++c) {
    const double norm = kBm25K1 * (1.0 - kBm25B + kBm25B * doc_tokens[c] / avg_len);
    double score = 0;
    for (size_t p = 0; p < phrases; ++p) {
      const double tf =
          counts[(c * phrases + p) * 2] + kBm25TagWeight * counts[(c * phrases + p) * 2 + 1];
      if (tf > 0) score += idf[p] * tf * (kBm25K1 + 1.0) / (tf + norm);
    }
    scores[c] = score;
  }
  return scores;
}

}  // namespace detail

struct RecallIndex::Base {
  std::string model;  // empty: no vectors
  int dimensions = 0;
  // Per position (ascending id).
  std::vector<std::shared_ptr<const Memory>> memories;
  std::vector<int64_t> ids;
  std::vector<uint8_t> superseded;
  std::vector<uint32_t> content_begin;  // into tokens: content, then tags, then the end
  std::vector<uint32_t> tags_begin;
  std::vector<uint32_t> end;
  std::vector<int32_t> vector_row;  // -1: no vector
  std::vector<uint32_t> tokens;     // term ids
  std::unordered_map<std::string, uint32_t> term_ids;
  std::vector<const std::string*> terms;  // by id (term_ids' keys)
  // Term t's documents: postings[posting_begin[t] .. posting_begin[t + 1]), ascending.
  std::vector<uint32_t> posting_begin;
  std::vector<uint32_t> postings;
  // Per vector row: its document and scale; the rows themselves contiguous, dimensions apart.
  std::vector<uint32_t> row_position;
  std::vector<float> scales;
  std::vector<int8_t> vectors;
  int64_t current = 0;  // documents not superseded
  size_t bytes = 0;
};

// ---- Building ----

RecallIndex::Builder::Builder(std::string model, int dimensions)
    : model_(std::move(model)), dimensions_(model_.empty() ? 0 : dimensions) {}

uint32_t RecallIndex::Builder::term_of(std::string_view token) {
  return terms_.try_emplace(std::string(token), static_cast<uint32_t>(terms_.size())).first->second;
}

Status RecallIndex::Builder::add(const detail::FtsTokenizer& tokenizer,
                                 std::shared_ptr<const Memory> memory,
                                 std::optional<std::string_view> vector, double scale) {
  Pending p;
  const auto append = [&](std::string_view token) { tokens_.push_back(term_of(token)); };
  p.content_begin = static_cast<uint32_t>(tokens_.size());
  PARLEY_TRY(tokenizer.tokenize(memory->content, false, append));
  p.tags_begin = static_cast<uint32_t>(tokens_.size());
  PARLEY_TRY(tokenizer.tokenize(memory->tags, false, append));
  p.end = static_cast<uint32_t>(tokens_.size());
  if (vector && dimensions_ > 0) {
    if (vector->size() != static_cast<size_t>(dimensions_)) {
      return fail(ErrorCode::data_loss,
                  fmt::format("vector of memory {} ({}): {} bytes for {} dimensions", memory->id,
                              model_, vector->size(), dimensions_));
    }
    p.vector_row = static_cast<int32_t>(scales_.size());
    const size_t at = vectors_.size();
    vectors_.resize(at + vector->size());
    std::memcpy(vectors_.data() + at, vector->data(), vector->size());
    scales_.push_back(static_cast<float>(scale));
    vector_pending_.push_back(static_cast<uint32_t>(pending_.size()));
  }
  p.memory = std::move(memory);
  pending_.push_back(std::move(p));
  return {};
}

std::shared_ptr<const RecallIndex> RecallIndex::Builder::finish() {
  auto b = std::make_shared<Base>();
  b->model = model_;
  b->dimensions = dimensions_;
  // Positions by id; the tokens and vectors stay where they are.
  std::vector<uint32_t> order(pending_.size());
  std::iota(order.begin(), order.end(), 0U);
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    return pending_[x].memory->id < pending_[y].memory->id;
  });
  const size_t n = order.size();
  std::vector<uint32_t> position_of(n);
  b->memories.reserve(n);
  b->ids.reserve(n);
  b->superseded.reserve(n);
  b->content_begin.reserve(n);
  b->tags_begin.reserve(n);
  b->end.reserve(n);
  b->vector_row.reserve(n);
  for (size_t pos = 0; pos < n; ++pos) {
    Pending& p = pending_[order[pos]];
    position_of[order[pos]] = static_cast<uint32_t>(pos);
    b->ids.push_back(p.memory->id);
    b->superseded.push_back(p.memory->superseded_by != 0 ? 1 : 0);
    b->current += p.memory->superseded_by == 0 ? 1 : 0;
    b->content_begin.push_back(p.content_begin);
    b->tags_begin.push_back(p.tags_begin);
    b->end.push_back(p.end);
    b->vector_row.push_back(p.vector_row);
    b->memories.push_back(std::move(p.memory));
  }
  b->row_position.reserve(vector_pending_.size());
  for (const uint32_t i : vector_pending_) b->row_position.push_back(position_of[i]);

  // Postings: each document once per term, in position order.
  const size_t terms = terms_.size();
  std::vector<uint32_t> last(terms, UINT32_MAX);
  b->posting_begin.assign(terms + 1, 0);
  for (size_t pos = 0; pos < n; ++pos) {
    for (uint32_t k = b->content_begin[pos]; k < b->end[pos]; ++k) {
      const uint32_t t = tokens_[k];
      if (last[t] == pos) continue;
      last[t] = static_cast<uint32_t>(pos);
      ++b->posting_begin[t + 1];
    }
  }
  std::partial_sum(b->posting_begin.begin(), b->posting_begin.end(), b->posting_begin.begin());
  b->postings.resize(b->posting_begin.back());
  std::vector<uint32_t> fill(b->posting_begin.begin(), b->posting_begin.end() - 1);
  std::fill(last.begin(), last.end(), UINT32_MAX);
  for (size_t pos = 0; pos < n; ++pos) {
    for (uint32_t k = b->content_begin[pos]; k < b->end[pos]; ++k) {
      const uint32_t t = tokens_[k];
      if (last[t] == pos) continue;
      last[t] = static_cast<uint32_t>(pos);
      b->postings[fill[t]++] = static_cast<uint32_t>(pos);
    }
  }

  b->tokens = std::move(tokens_);
  b->term_ids = std::move(terms_);
  b->terms.resize(terms);
  for (const auto& [text, id] : b->term_ids) b->terms[id] = &text;
  b->vectors = std::move(vectors_);
  b->scales = std::move(scales_);

  size_t bytes = sizeof(Base) + kControlBlock + vector_bytes(b->memories) + vector_bytes(b->ids) +
                 vector_bytes(b->superseded) + vector_bytes(b->content_begin) +
                 vector_bytes(b->tags_begin) + vector_bytes(b->end) + vector_bytes(b->vector_row) +
                 vector_bytes(b->tokens) + vector_bytes(b->terms) + vector_bytes(b->posting_begin) +
                 vector_bytes(b->postings) + vector_bytes(b->row_position) +
                 vector_bytes(b->scales) + vector_bytes(b->vectors) +
                 b->term_ids.bucket_count() * sizeof(void*);
  for (const auto& m : b->memories) bytes += record_bytes(*m);
  for (const auto& [text, id] : b->term_ids) {
    bytes += kMapNode + sizeof(std::pair<const std::string, uint32_t>) + string_bytes(text);
  }
  b->bytes = bytes;

  auto index = std::shared_ptr<RecallIndex>(new RecallIndex(b));
  pending_.clear();
  vector_pending_.clear();
  return index;
}

RecallIndex::RecallIndex(std::shared_ptr<const Base> base)
    : base_(std::move(base)),
      docs_(static_cast<int64_t>(base_->ids.size())),
      current_docs_(base_->current) {}

Result<std::shared_ptr<const RecallDoc>> RecallIndex::doc_of(const detail::FtsTokenizer& tokenizer,
                                                             std::shared_ptr<const Memory> memory) {
  auto doc = std::make_shared<RecallDoc>();
  PARLEY_TRY(tokenizer.tokenize(memory->content, false,
                                [&](std::string_view t) { doc->content.emplace_back(t); }));
  PARLEY_TRY(tokenizer.tokenize(memory->tags, false,
                                [&](std::string_view t) { doc->tags.emplace_back(t); }));
  doc->memory = std::move(memory);
  return std::shared_ptr<const RecallDoc>(std::move(doc));
}

// ---- Reading ----

bool RecallIndex::has_vectors_of(std::string_view model, int dimensions) const {
  return !model.empty() && base_->model == model && base_->dimensions == dimensions;
}

size_t RecallIndex::bytes() const {
  return base_->bytes + sizeof(RecallIndex) + delta_bytes_ +
         delta_.capacity() * sizeof(decltype(delta_)::value_type) + vector_bytes(shadowed_);
}

RecallIndex::Found RecallIndex::find(int64_t id) const {
  Found found;
  auto it = std::lower_bound(delta_.begin(), delta_.end(), id,
                             [](const auto& entry, int64_t v) { return entry.first < v; });
  if (it != delta_.end() && it->first == id) found.delta = &it->second;
  const auto& ids = base_->ids;
  auto at = std::lower_bound(ids.begin(), ids.end(), id);
  if (at != ids.end() && *at == id) found.base = static_cast<uint32_t>(at - ids.begin());
  return found;
}

std::shared_ptr<RecallDoc> RecallIndex::doc_at(uint32_t position) const {
  const Base& b = *base_;
  auto doc = std::make_shared<RecallDoc>();
  doc->memory = b.memories[position];
  for (uint32_t k = b.content_begin[position]; k < b.tags_begin[position]; ++k) {
    doc->content.push_back(*b.terms[b.tokens[k]]);
  }
  for (uint32_t k = b.tags_begin[position]; k < b.end[position]; ++k) {
    doc->tags.push_back(*b.terms[b.tokens[k]]);
  }
  if (const int32_t row = b.vector_row[position]; row >= 0) {
    const auto dims = static_cast<size_t>(b.dimensions);
    const int8_t* v = b.vectors.data() + static_cast<size_t>(row) * dims;
    doc->vector.assign(v, v + dims);
    doc->scale = b.scales[static_cast<size_t>(row)];
  }
  return doc;
}

std::vector<uint8_t> RecallIndex::hidden(bool include_superseded) const {
  std::vector<uint8_t> out =
      include_superseded ? std::vector<uint8_t>(base_->ids.size(), 0) : base_->superseded;
  for (const uint32_t pos : shadowed_) out[pos] = 1;
  return out;
}

bool RecallIndex::has_term(std::string_view token) const {
  if (base_->term_ids.find(std::string(token)) != base_->term_ids.end()) return true;
  return std::any_of(delta_.begin(), delta_.end(), [&](const auto& entry) {
    const auto& doc = entry.second;
    return doc != nullptr &&
           (std::find(doc->content.begin(), doc->content.end(), token) != doc->content.end() ||
            std::find(doc->tags.begin(), doc->tags.end(), token) != doc->tags.end());
  });
}

namespace {
// The trigrams of " token " (sorted, unique): what the fuzzy path compares.
std::vector<std::string_view> padded_trigrams(std::string_view padded) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i + 3 <= padded.size(); ++i) out.push_back(padded.substr(i, 3));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double trigram_similarity(const std::vector<std::string_view>& a,
                          const std::vector<std::string_view>& b) {
  size_t both = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] == b[j]) {
      ++both;
      ++i;
      ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  const size_t either = a.size() + b.size() - both;
  return either == 0 ? 0 : static_cast<double>(both) / static_cast<double>(either);
}
}  // namespace

std::optional<std::string> RecallIndex::closest_term(std::string_view token,
                                                     double min_similarity) const {
  if (token.empty()) return std::nullopt;
  const std::string padded = " " + std::string(token) + " ";
  const auto mine = padded_trigrams(padded);
  std::optional<std::string> best;
  double best_similarity = min_similarity;
  std::string other;
  const auto consider = [&](const std::string& term) {
    if (term.empty() || term[0] != token[0] || term == token) return;
    const size_t longer = std::max(term.size(), token.size());
    if (longer - std::min(term.size(), token.size()) > 3) return;
    other = " " + term + " ";
    const double similarity = trigram_similarity(mine, padded_trigrams(other));
    if (similarity < best_similarity) return;
    if (best && similarity == best_similarity &&
        (best->size() < term.size() || (best->size() == term.size() && *best < term))) {
      return;
    }
    best_similarity = similarity;
    best = term;
  };
  for (const auto* term : base_->terms) consider(*term);
  for (const auto& [id, doc] : delta_) {
    if (doc == nullptr) continue;
    for (const auto& t : doc->content) consider(t);
    for (const auto& t : doc->tags) consider(t);
  }
  return best;
}

std::vector<MemoryHit> RecallIndex::bm25(const std::vector<std::vector<std::string>>& phrases,
                                         size_t limit, bool include_superseded) const {
  std::vector<MemoryHit> out;
  if (limit == 0 || phrases.empty()) return out;
  const Base& b = *base_;
  const size_t n_phrases = phrases.size();
  const std::vector<uint8_t> hide = hidden(include_superseded);

  std::vector<const std::shared_ptr<const Memory>*> memories;  // per candidate
  std::vector<int32_t> doc_tokens;                             // per candidate
  std::vector<int32_t> counts;  // per candidate and phrase: content, tags
  const auto add_candidate = [&](const std::shared_ptr<const Memory>& m, int32_t tokens) {
    memories.push_back(&m);
    doc_tokens.push_back(tokens);
    counts.resize(counts.size() + 2 * n_phrases, 0);
    return memories.size() - 1;
  };

  // The base: each phrase's documents are those of its first token's postings.
  std::vector<int32_t> slot(b.ids.size(), -1);
  std::vector<uint32_t> term_ids;
  for (size_t p = 0; p < n_phrases; ++p) {
    term_ids.clear();
    for (const auto& token : phrases[p]) {
      auto it = b.term_ids.find(token);
      if (it == b.term_ids.end()) break;
      term_ids.push_back(it->second);
    }
    // A word without tokens matches nothing; one with a token no document has, no document here.
    if (phrases[p].empty() || term_ids.size() != phrases[p].size()) continue;
    for (uint32_t k = b.posting_begin[term_ids[0]]; k < b.posting_begin[term_ids[0] + 1]; ++k) {
      const uint32_t pos = b.postings[k];
      if (hide[pos] != 0) continue;
      const uint32_t* tokens = b.tokens.data();
      const int32_t content = instances(tokens + b.content_begin[pos],
                                        b.tags_begin[pos] - b.content_begin[pos], term_ids);
      const int32_t tags =
          instances(tokens + b.tags_begin[pos], b.end[pos] - b.tags_begin[pos], term_ids);
      if (content + tags == 0) continue;
      if (slot[pos] < 0) {
        slot[pos] = static_cast<int32_t>(add_candidate(
            b.memories[pos], static_cast<int32_t>(b.end[pos] - b.content_begin[pos])));
      }
      const size_t at = (static_cast<size_t>(slot[pos]) * n_phrases + p) * 2;
      counts[at] = content;
      counts[at + 1] = tags;
    }
  }
  // The delta.
  for (const auto& [id, doc] : delta_) {
    if (!doc || (!include_superseded && doc->memory->superseded_by != 0)) continue;
    std::optional<size_t> c;
    for (size_t p = 0; p < n_phrases; ++p) {
      if (phrases[p].empty()) continue;
      const int32_t content = instances(doc->content.data(), doc->content.size(), phrases[p]);
      const int32_t tags = instances(doc->tags.data(), doc->tags.size(), phrases[p]);
      if (content + tags == 0) continue;
      if (!c) {
        c = add_candidate(doc->memory,
                          static_cast<int32_t>(doc->content.size() + doc->tags.size()));
      }
      counts[(*c * n_phrases + p) * 2] = content;
      counts[(*c * n_phrases + p) * 2 + 1] = tags;
    }
  }
  if (memories.empty()) return out;

  const std::vector<double> scores = detail::bm25_scores(
      n_phrases, doc_tokens, counts, include_superseded ? docs_ : current_docs_);
  std::vector<uint32_t> order(memories.size());
  std::iota(order.begin(), order.end(), 0U);
  const size_t keep = std::min(limit, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](uint32_t x, uint32_t y) {
                      const Memory& a = **memories[x];
                      const Memory& c = **memories[y];
                      return detail::bm25_before(scores[x], a.importance, a.id, scores[y],
                                                 c.importance, c.id);
                    });
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) out.push_back(MemoryHit{*memories[order[i]], scores[order[i]]});
  return out;
}

std::vector<MemoryHit> RecallIndex::nearest(const QuantizedVector& query, size_t limit,
                                            bool include_superseded) const {
  std::vector<MemoryHit> out;
  const Base& b = *base_;
  const auto dims = static_cast<size_t>(b.dimensions);
  if (limit == 0 || dims == 0 || query.values.size() != dims) return out;
  const std::vector<uint8_t> hide = hidden(include_superseded);
  struct Scored {
    float similarity;
    const std::shared_ptr<const Memory>* memory;
  };
  std::vector<Scored> scored;
  scored.reserve(b.scales.size() + delta_.size());
  // The same arithmetic as dot(): the int32 sum, times the query's scale, times the row's.
  for (size_t row = 0; row < b.scales.size(); ++row) {
    const uint32_t pos = b.row_position[row];
    if (hide[pos] != 0) continue;
    const float d =
        static_cast<float>(dot_bytes(query.values.data(), b.vectors.data() + row * dims, dims)) *
        query.scale * b.scales[row];
    // Orthogonal or opposite: not found, however few vectors the user has.
    if (d > 0) scored.push_back({d, &b.memories[pos]});
  }
  for (const auto& [id, doc] : delta_) {
    if (!doc || doc->vector.size() != dims) continue;
    if (!include_superseded && doc->memory->superseded_by != 0) continue;
    const float d = static_cast<float>(dot_bytes(query.values.data(), doc->vector.data(), dims)) *
                    query.scale * doc->scale;
    if (d > 0) scored.push_back({d, &doc->memory});
  }
  const size_t keep = std::min(limit, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                    scored.end(), [](const Scored& x, const Scored& y) {
                      if (x.similarity != y.similarity) return x.similarity > y.similarity;
                      return (*x.memory)->id > (*y.memory)->id;  // newer first
                    });
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) {
    out.push_back(MemoryHit{*scored[i].memory, static_cast<double>(scored[i].similarity)});
  }
  return out;
}

// ---- Patching ----

void RecallIndex::set(int64_t id, std::shared_ptr<const RecallDoc> doc) {
  auto it = std::lower_bound(delta_.begin(), delta_.end(), id,
                             [](const auto& entry, int64_t v) { return entry.first < v; });
  if (it != delta_.end() && it->first == id) {
    if (it->second) {
      --docs_;
      current_docs_ -= it->second->memory->superseded_by == 0 ? 1 : 0;
      delta_bytes_ -= doc_bytes(*it->second);
    }
  } else {
    const auto& ids = base_->ids;
    auto at = std::lower_bound(ids.begin(), ids.end(), id);
    if (at != ids.end() && *at == id) {
      const auto pos = static_cast<uint32_t>(at - ids.begin());
      --docs_;
      current_docs_ -= base_->superseded[pos] == 0 ? 1 : 0;
      shadowed_.push_back(pos);
    }
    it = delta_.insert(it, {id, nullptr});
  }
  if (doc) {
    ++docs_;
    current_docs_ += doc->memory->superseded_by == 0 ? 1 : 0;
    delta_bytes_ += doc_bytes(*doc);
  }
  it->second = std::move(doc);
}

std::shared_ptr<const RecallIndex> RecallIndex::patched(const RecallChange& change) const {
  if (change.unknown) return nullptr;
  auto next = std::make_shared<RecallIndex>(*this);
  for (const auto& written : change.written) {
    const int64_t id = written->memory->id;
    // The vector it holds stays (a rewrite keeps its row in memory_vectors).
    const Found was = next->find(id);
    std::shared_ptr<RecallDoc> doc;
    if (was.delta != nullptr) {
      if (!*was.delta) return nullptr;  // forgotten here, written in the database: rebuild
      if (!(*was.delta)->vector.empty()) {
        doc = std::make_shared<RecallDoc>(*written);
        doc->vector = (*was.delta)->vector;
        doc->scale = (*was.delta)->scale;
      }
    } else if (was.base && base_->vector_row[*was.base] >= 0) {
      const auto dims = static_cast<size_t>(base_->dimensions);
      const auto row = static_cast<size_t>(base_->vector_row[*was.base]);
      doc = std::make_shared<RecallDoc>(*written);
      doc->vector.assign(base_->vectors.data() + row * dims,
                         base_->vectors.data() + (row + 1) * dims);
      doc->scale = base_->scales[row];
    }
    if (doc) {
      next->set(id, std::move(doc));
    } else {
      next->set(id, written);
    }
  }
  for (const int64_t id : change.forgotten) next->set(id, nullptr);
  if (change.vector && has_vectors_of(change.vector->model, change.vector->dimensions)) {
    const RecallChange::Vector& v = *change.vector;
    const Found was = next->find(v.memory_id);
    std::shared_ptr<RecallDoc> doc;
    if (was.delta != nullptr) {
      if (!*was.delta) return nullptr;  // forgotten here, live in the database: rebuild
      doc = std::make_shared<RecallDoc>(**was.delta);
    } else if (was.base) {
      doc = next->doc_at(*was.base);
    } else {
      return nullptr;  // a memory of the user's it does not hold: rebuild
    }
    doc->vector = v.value->values;
    doc->scale = v.value->scale;
    next->set(v.memory_id, std::move(doc));
  }
  if (next->delta_.size() > kMaxDelta) return nullptr;
  return next;
}

}  // namespace parley::storage
