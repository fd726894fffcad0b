#include "parley/storage/hot_cache.h"

#include "recall_index.h"

namespace parley::storage {

namespace {
constexpr size_t kEntryOverhead = 96;  // list node + hash node + control block

size_t message_bytes(const StoredMessage& m) {
  return sizeof(StoredMessage) + 32 + m.channel.capacity() + m.role.capacity() +
         m.author.capacity() + m.text.capacity() + m.metadata.capacity() +
         (m.platform_id ? m.platform_id->capacity() : 0);
}
}  // namespace

size_t cache_entry_bytes(const CacheKey& /*key*/, const CacheValue& value) {
  if (const auto* h = std::get_if<std::shared_ptr<const History>>(&value)) {
    size_t n = kEntryOverhead + sizeof(History) + (*h)->capacity() * sizeof(History::value_type);
    // A message shared by two cached histories is charged twice: bounded, and only ever an
    // overestimate.
    for (const auto& m : **h) n += message_bytes(*m);
    return n;
  }
  if (const auto* r = std::get_if<std::shared_ptr<const RecallIndex>>(&value)) {
    return kEntryOverhead + (*r)->bytes();
  }
  const auto& m = *std::get<std::shared_ptr<const Memory>>(value);
  return kEntryOverhead + sizeof(Memory) + m.content.capacity() + m.tags.capacity();
}

}  // namespace parley::storage
