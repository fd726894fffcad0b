#include "fts_match_stats.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <utility>

namespace parley::storage::detail {

namespace {

constexpr int kContentColumn = 1;  // memories_fts(user_id, content, tags)
constexpr int kTagsColumn = 2;

void match_stats(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int /*argc*/,
                 sqlite3_value** /*argv*/) noexcept {
  const int phrases = api->xPhraseCount(fts);
  std::vector<int32_t> out(1 + 2 * static_cast<size_t>(phrases), 0);
  int content_tokens = 0;
  int tag_tokens = 0;
  if (api->xColumnSize(fts, kContentColumn, &content_tokens) != SQLITE_OK ||
      api->xColumnSize(fts, kTagsColumn, &tag_tokens) != SQLITE_OK) {
    sqlite3_result_error(ctx, "parley_match_stats: cannot read column sizes", -1);
    return;
  }
  out[0] = content_tokens + tag_tokens;
  int instances = 0;
  if (api->xInstCount(fts, &instances) != SQLITE_OK) {
    sqlite3_result_error(ctx, "parley_match_stats: cannot count instances", -1);
    return;
  }
  for (int i = 0; i < instances; ++i) {
    int phrase = 0;
    int column = 0;
    int offset = 0;
    if (api->xInst(fts, i, &phrase, &column, &offset) != SQLITE_OK) continue;
    if (phrase < 0 || phrase >= phrases) continue;
    const size_t slot = 1 + 2 * static_cast<size_t>(phrase);
    if (column == kContentColumn) ++out[slot];
    if (column == kTagsColumn) ++out[slot + 1];
  }
  sqlite3_result_blob64(ctx, out.data(), out.size() * sizeof(int32_t), SQLITE_TRANSIENT);
}

fts5_api* fts5_api_of(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_pointer(st, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
    sqlite3_step(st);
  }
  sqlite3_finalize(st);
  return api;
}

}  // namespace

Status register_match_stats(Connection& conn) {
  fts5_api* api = fts5_api_of(conn.handle());
  if (api == nullptr) return {};
  const int rc = api->xCreateFunction(api, "parley_match_stats", nullptr, match_stats, nullptr);
  if (rc != SQLITE_OK) return fail(sqlite_error(conn.handle(), rc, "register parley_match_stats"));
  return {};
}

MatchStats decode_match_stats(const void* blob, int bytes) {
  MatchStats s;
  const size_t n = bytes > 0 ? static_cast<size_t>(bytes) / sizeof(int32_t) : 0;
  if (n == 0 || blob == nullptr) return s;
  std::vector<int32_t> v(n);
  std::memcpy(v.data(), blob, n * sizeof(int32_t));
  s.doc_tokens = v[0];
  for (size_t i = 1; i + 1 < n; i += 2) {
    s.content.push_back(v[i]);
    s.tags.push_back(v[i + 1]);
  }
  return s;
}

namespace {
struct TokenSink {
  void* f;
  void (*call)(void*, std::string_view);
};

int on_fts_token(void* ctx, int flags, const char* token, int bytes, int /*start*/,
                 int /*end*/) noexcept {
  // A colocated token (a synonym) takes no position of its own: FTS5 counts it in no size.
  if ((flags & FTS5_TOKEN_COLOCATED) != 0) return SQLITE_OK;
  const auto* sink = static_cast<const TokenSink*>(ctx);
  sink->call(sink->f, std::string_view(token, static_cast<size_t>(bytes)));
  return SQLITE_OK;
}
}  // namespace

Result<const FtsTokenizer*> FtsTokenizer::of(Connection& conn) {
  auto& kept = conn.kept_tokenizer();
  if (!kept) {
    auto made = open(conn);
    if (!made) return fail(std::move(made).error());
    kept = std::make_shared<FtsTokenizer>(std::move(*made));
  }
  return static_cast<const FtsTokenizer*>(kept.get());
}

Result<FtsTokenizer> FtsTokenizer::open(Connection& conn) {
  fts5_api* api = fts5_api_of(conn.handle());
  if (api == nullptr) return fail(ErrorCode::unavailable, "this SQLite has no FTS5");
  void* user_data = nullptr;
  fts5_tokenizer tokenizer{};
  if (api->xFindTokenizer(api, "porter", &user_data, &tokenizer) != SQLITE_OK) {
    return fail(ErrorCode::unavailable, "FTS5 has no porter tokenizer");
  }
  // memories_fts: tokenize = 'porter unicode61 remove_diacritics 2'.
  std::array<const char*, 3> args = {"unicode61", "remove_diacritics", "2"};
  Fts5Tokenizer* instance = nullptr;
  const int rc =
      tokenizer.xCreate(user_data, args.data(), static_cast<int>(args.size()), &instance);
  if (rc != SQLITE_OK) {
    return fail(ErrorCode::unavailable, fmt::format("FTS5 porter tokenizer: error {}", rc));
  }
  return FtsTokenizer(tokenizer, instance);
}

FtsTokenizer::FtsTokenizer(FtsTokenizer&& other) noexcept
    : api_(other.api_), tokenizer_(std::exchange(other.tokenizer_, nullptr)) {}

FtsTokenizer::~FtsTokenizer() {
  if (tokenizer_ != nullptr) api_.xDelete(tokenizer_);
}

Status FtsTokenizer::run(std::string_view text, bool query, void* f,
                         void (*call)(void*, std::string_view)) const {
  TokenSink sink{f, call};
  const int rc =
      api_.xTokenize(tokenizer_, &sink, query ? FTS5_TOKENIZE_QUERY : FTS5_TOKENIZE_DOCUMENT,
                     text.data(), static_cast<int>(text.size()), on_fts_token);
  if (rc != SQLITE_OK) {
    return fail(ErrorCode::internal, fmt::format("FTS5 porter tokenizer: error {}", rc));
  }
  return {};
}

}  // namespace parley::storage::detail
