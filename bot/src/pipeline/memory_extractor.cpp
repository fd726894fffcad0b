#include "parley/bot/pipeline/memory_extractor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "await_write.h"
#include "parley/base/text.h"
#include "parley/base/time_format.h"
#include "parley/prompts/render.h"
#include "parley/storage/vector_codec.h"

namespace parley::bot::pipeline {

namespace asio = net::asio;
using nlohmann::json;

namespace {

constexpr size_t kMaxExtractedText = 500;      // an extracted memory, bytes
constexpr size_t kMaxUserTextRead = 2000;      // a user's message as the model reads it
constexpr size_t kMaxAssistantTextRead = 400;  // the assistant's, for context only

std::string ascii_lower_copy(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has_any_of(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  return std::any_of(needles.begin(), needles.end(), [&](std::string_view n) {
    return haystack.find(n) != std::string_view::npos;
  });
}

// The words of `text`, lower-cased, as a set (the paraphrase test).
std::set<std::string> content_word_set(std::string_view text) {
  std::set<std::string> out;
  const std::string words = storage::MemoryRepository::content_words(text);  // the views' text
  for (const auto w : search_words(words)) {
    out.insert(ascii_lower_copy(w));
  }
  return out;
}

// |a ∩ b| / min(|a|, |b|): 1 when one text's words are all in the other.
double word_overlap(const std::set<std::string>& a, const std::set<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  size_t common = 0;
  for (const auto& w : a) common += b.count(w);
  return static_cast<double>(common) / static_cast<double>(std::min(a.size(), b.size()));
}

// Luhn's check over a run of 13 to 19 digits: a payment card number.
bool luhn_card_number(std::string_view digits) {
  if (digits.size() < 13 || digits.size() > 19) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

// A run of 24 or more key-like characters holding both letters and digits (an API key, a
// token), or a card number (digits with spaces or dashes between groups).
bool looks_like_secret(std::string_view text) {
  size_t run = 0;
  bool letters = false;
  bool digits_seen = false;
  std::string card;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    const bool key_char = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    if (key_char) {
      ++run;
      letters = letters || std::isalpha(static_cast<unsigned char>(c)) != 0;
      digits_seen = digits_seen || std::isdigit(static_cast<unsigned char>(c)) != 0;
    } else {
      if (run >= 24 && letters && digits_seen) return true;
      run = 0;
      letters = digits_seen = false;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      card += c;
    } else if (c != ' ' && c != '-') {
      if (luhn_card_number(card)) return true;
      card.clear();
    }
  }
  return luhn_card_number(card);
}

// Messages not marked read are only read again next time.
void warn_unless_marked(int64_t conversation, const Result<storage::WriteAck>& marked) {
  if (!marked) {
    spdlog::warn("memory: conversation {} not marked read: {}", conversation,
                 marked.error().describe());
  }
}

}  // namespace

bool worth_reading(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.front() == '/') return false;
  static const std::set<std::string, std::less<>> kSmallTalk = {
      "hi",   "hello",   "hey",     "thanks",  "thank",   "you",  "ok",   "okay",
      "lol",  "bye",     "yes",     "no",      "sure",    "cool", "nice", "great",
      "good", "morning", "night",   "evening", "cheers",  "yep",  "nope", "please",
      "haha", "wow",     "alright", "fine",    "the",     "a",    "very", "much",
      "so",   "see",     "ya",      "later",   "welcome", "np",   "ty"};
  static const std::set<std::string, std::less<>> kFirstPerson = {
      "i",  "i'm",    "im", "i've",  "i'd", "i'll", "my", "mine",
      "me", "myself", "we", "we're", "our", "ours", "us"};
  static const std::set<std::string, std::less<>> kDateWords = {
      "today",   "yesterday", "tomorrow",  "tonight",  "week",     "month",    "year",
      "monday",  "tuesday",   "wednesday", "thursday", "friday",   "saturday", "sunday",
      "january", "february",  "march",     "april",    "may",      "june",     "july",
      "august",  "september", "october",   "november", "december", "birthday", "anniversary"};
  // Words as people type them: letters, digits and apostrophes.
  std::vector<std::string> words;
  std::string word;
  bool sentence_start = true;
  bool name = false;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '\'' || u >= 0x80) {
      word += c;
      continue;
    }
    if (!word.empty()) {
      // A capitalised word inside a sentence is a name ("I" and its contractions are not).
      const bool capital = std::isupper(static_cast<unsigned char>(word.front())) != 0;
      const std::string w = ascii_lower_copy(word);
      if (capital && !sentence_start && kFirstPerson.count(w) == 0) name = true;
      sentence_start = false;
      words.push_back(w);
      word.clear();
    }
    if (c == '.' || c == '!' || c == '?' || c == '\n') sentence_start = true;
  }
  if (std::all_of(words.begin(), words.end(), [](const std::string& w) {
        return kSmallTalk.count(w) != 0 || std::all_of(w.begin(), w.end(), [](char c) {
                 return std::ispunct(static_cast<unsigned char>(c)) != 0;
               });
      })) {
    return false;
  }
  for (const auto& w : words) {
    if (kFirstPerson.count(w) != 0 || kDateWords.count(w) != 0) return true;
    if (std::any_of(w.begin(), w.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      return true;
    }
  }
  return name;
}

std::optional<std::string> extraction_refusal(std::string_view text) {
  const std::string l = ascii_lower_copy(text);
  if (has_any_of(l, {"ignore previous",
                     "ignore all",
                     "ignore the above",
                     "ignore your",
                     "disregard",
                     "system prompt",
                     "you must",
                     "you should always",
                     "you are now",
                     "from now on",
                     "always respond",
                     "always answer",
                     "always reply",
                     "never mention",
                     "never tell",
                     "reveal your",
                     "instructions",
                     "jailbreak",
                     "pretend to be",
                     "the assistant must",
                     "the assistant should",
                     "assistant should always",
                     "assistant:"})) {
    return "it reads like an instruction to the assistant";
  }
  if (has_any_of(
          l, {"password", "passcode", "passphrase", "api key", "api_key", "apikey", "secret key",
              "private key", "access token", "auth token", "bearer ", "pin code", "pin is", "cvv",
              "security code", "social security", "sk-", "ghp_", "xoxb-"}) ||
      looks_like_secret(text)) {
    return "it holds what looks like a secret (a key, a password or a card number)";
  }
  return std::nullopt;
}

bool states_a_change(std::string_view text) {
  const std::string l = ascii_lower_copy(text);
  return has_any_of(
      l,
      {"moved",   "move to",   "no longer", "not anymore",    "any more",   "anymore",  "switched",
       "changed", "new job",   "started",   "quit",           "left my",    "stopped",  "instead",
       "used to", "became",    "now ",      " now",           "these days", "nowadays", "divorced",
       "married", "got a new", "renamed",   "not any longer", "gave up"});
}

Result<std::vector<ExtractionOp>> parse_extraction(std::string_view answer, size_t existing,
                                                   std::vector<std::string>& rejected) {
  // The object, wherever the model put it (a ```json fence, a sentence before it).
  const size_t open = answer.find('{');
  const size_t close = answer.rfind('}');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return fail(ErrorCode::invalid_argument, "the extraction answer holds no JSON object");
  }
  const json doc = json::parse(answer.substr(open, close - open + 1), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return fail(ErrorCode::invalid_argument, "the extraction answer is not valid JSON");
  }
  const auto ops = doc.find("ops");
  if (ops == doc.end() || !ops->is_array()) {
    return fail(ErrorCode::invalid_argument, "the extraction answer has no \"ops\" array");
  }
  std::vector<ExtractionOp> out;
  size_t index = 0;
  for (const auto& o : *ops) {
    ++index;
    const auto reject = [&](std::string why) {
      rejected.push_back(fmt::format("op {}: {}", index, why));
    };
    if (!o.is_object() || !o.contains("op") || !o["op"].is_string()) {
      reject("not an object with an \"op\"");
      continue;
    }
    ExtractionOp op;
    op.op = o["op"].get<std::string>();
    std::transform(op.op.begin(), op.op.end(), op.op.begin(), [](char c) {
      return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    if (op.op != "ADD" && op.op != "UPDATE" && op.op != "SUPERSEDE" && op.op != "NOOP") {
      reject(fmt::format("\"{}\" is not ADD, UPDATE, SUPERSEDE or NOOP", op.op));
      continue;
    }
    if (op.op != "ADD") {
      const auto id = o.find("id");
      if (id == o.end() || !id->is_number_integer() || id->get<int64_t>() < 1 ||
          id->get<int64_t>() > static_cast<int64_t>(existing)) {
        reject(fmt::format("{} names no memory it was shown (1..{})", op.op, existing));
        continue;
      }
      op.ref = id->get<size_t>();
    }
    if (op.op == "NOOP") {
      out.push_back(std::move(op));
      continue;
    }
    if (!o.contains("text") || !o["text"].is_string() ||
        trim(o["text"].get_ref<const std::string&>()).empty()) {
      reject(op.op + " without a \"text\"");
      continue;
    }
    op.text = valid_utf8(trim(o["text"].get_ref<const std::string&>()));
    if (op.text.size() > kMaxExtractedText) {
      op.text = std::string(utf8_prefix(op.text, kMaxExtractedText));
    }
    if (o.contains("kind") && o["kind"].is_string() &&
        storage::memory_kind_known(o["kind"].get<std::string>())) {
      op.kind = o["kind"].get<std::string>();
    }
    if (o.contains("importance") && o["importance"].is_number()) {
      op.importance = std::clamp(static_cast<int>(o["importance"].get<double>()), 1, 5);
    }
    if (o.contains("confidence") && o["confidence"].is_number()) {
      op.confidence = std::clamp(o["confidence"].get<double>(), 0.0, 1.0);
    }
    if (o.contains("event_at") && o["event_at"].is_string()) {
      op.event_at = parse_iso_utc(o["event_at"].get<std::string>());
    }
    if (o.contains("related") && o["related"].is_array()) {
      for (const auto& r : o["related"]) {
        if (r.is_number_integer() && r.get<int64_t>() >= 1 &&
            r.get<int64_t>() <= static_cast<int64_t>(existing)) {
          op.related.push_back(r.get<size_t>());
        }
      }
    }
    if (o.contains("reason") && o["reason"].is_string()) {
      op.reason = std::string(utf8_prefix(o["reason"].get<std::string>(), 200));
    }
    out.push_back(std::move(op));
  }
  return out;
}

// A conversation waiting to be quiet long enough.
struct MemoryExtractor::Pending {
  explicit Pending(const asio::strand<net::Executor>& strand) : timer(strand) {}
  asio::steady_timer timer;
  ExtractionSubject subject;
  std::chrono::steady_clock::time_point due;
  bool now = false;  // flush(): run without waiting
};

// Marks a conversation as being read for the mark's lifetime, if nobody else reads it.
class ActiveMark {
 public:
  ActiveMark(MemoryExtractor& owner, int64_t conversation)
      : owner_(owner), conversation_(conversation) {
    const std::lock_guard lock(owner_.active_mu_);
    taken_ = owner_.active_.insert(conversation_).second;
  }
  ~ActiveMark() {
    if (!taken_) return;
    const std::lock_guard lock(owner_.active_mu_);
    owner_.active_.erase(conversation_);
  }
  ActiveMark(const ActiveMark&) = delete;
  ActiveMark& operator=(const ActiveMark&) = delete;
  [[nodiscard]] bool taken() const { return taken_; }

 private:
  MemoryExtractor& owner_;
  int64_t conversation_;
  bool taken_ = false;
};

bool MemoryExtractor::active(int64_t conversation_id) {
  const std::lock_guard lock(active_mu_);
  return active_.count(conversation_id) != 0;
}

MemoryExtractor::MemoryExtractor(Deps deps, ExtractionOptions options,
                                 const net::Executor& executor)
    : deps_(std::move(deps)), options_(std::move(options)), strand_(asio::make_strand(executor)) {}

MemoryExtractor::~MemoryExtractor() = default;

int64_t MemoryExtractor::calls() const { return calls_.load(); }

void MemoryExtractor::touched(ExtractionSubject subject) {
  if (!options_.enabled || subject.conversation_id <= 0 || subject.user_id <= 0) return;
  asio::post(strand_, [this, subject = std::move(subject)]() mutable {
    if (stopping_) return;
    const int64_t id = subject.conversation_id;
    auto& p = pending_[id];
    const bool waiting = p != nullptr;
    if (!waiting) p = std::make_unique<Pending>(strand_);
    p->subject = std::move(subject);
    p->due = std::chrono::steady_clock::now() + options_.quiet;
    // A debounce already waiting wakes at the old time and waits again until the new one.
    if (!waiting) asio::co_spawn(strand_, debounce(id), asio::detached);
  });
}

asio::awaitable<void> MemoryExtractor::debounce(int64_t conversation_id) {
  for (;;) {
    const auto it = pending_.find(conversation_id);
    if (it == pending_.end()) co_return;
    Pending& p = *it->second;
    const bool due = p.now || std::chrono::steady_clock::now() >= p.due;
    // Being read by another path (a summary's span): its turn comes after that one.
    if (due && !active(conversation_id)) break;
    if (due) p.due = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    p.timer.expires_at(p.due);
    boost::system::error_code ec;
    co_await p.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  auto node = pending_.extract(conversation_id);
  ExtractionSubject subject = std::move(node.mapped()->subject);
  ++running_;
  try {
    const ExtractionOutcome out = co_await extract(subject);
    if (out.called) {
      spdlog::info(
          "memory: read conversation {} for user {}: {} added, {} updated, {} superseded, {} "
          "unchanged, {} refused, {} invalid ({} + {} tokens)",
          subject.conversation_id, subject.user_id, out.added, out.updated, out.superseded,
          out.unchanged, out.refused, out.invalid, out.prompt_tokens, out.completion_tokens);
    } else {
      spdlog::debug("memory: conversation {} not read: {}", subject.conversation_id, out.skipped);
    }
  } catch (const std::exception& e) {
    spdlog::error("memory: reading conversation {} failed: {}", subject.conversation_id, e.what());
  }
  --running_;
}

asio::awaitable<void> MemoryExtractor::flush(std::chrono::steady_clock::time_point deadline) {
  // On the strand: the pending ones run now, and nothing new is taken.
  co_await asio::post(strand_, asio::use_awaitable);
  stopping_ = true;
  for (auto& [id, p] : pending_) {
    p->now = true;
    p->timer.cancel();
  }
  asio::steady_timer wait(strand_);
  while ((!pending_.empty() || running_ > 0) && std::chrono::steady_clock::now() < deadline) {
    wait.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<ExtractionOutcome> MemoryExtractor::extract(ExtractionSubject subject) {
  ExtractionOutcome out;
  const ActiveMark mark_active(*this, subject.conversation_id);
  if (!mark_active.taken()) {
    out.skipped = "already being read";
    co_return out;
  }
  auto& memories = deps_.store.memories();
  const int64_t conversation = subject.conversation_id;
  auto state = memories.extraction_state(conversation);
  if (!state) {
    out.skipped = state.error().describe();
    co_return out;
  }
  auto history = deps_.store.messages().recent(conversation);
  if (!history) {
    out.skipped = history.error().describe();
    co_return out;
  }
  std::vector<std::shared_ptr<const storage::StoredMessage>> unread;
  for (const auto& m : **history) {
    if (m->id > state->extracted_through && (m->role == "user" || m->role == "assistant")) {
      unread.push_back(m);
    }
  }
  if (unread.empty()) {
    out.skipped = "nothing new";
    co_return out;
  }
  out.through = unread.back()->id;
  const std::function<void(storage::WriteCallback)> mark = [&](storage::WriteCallback done) {
    memories.set_extracted_through(conversation, out.through, std::move(done));
  };

  if (state->off_record) {
    const Result<storage::WriteAck> marked = co_await await_write(mark);
    warn_unless_marked(conversation, marked);
    out.skipped = "off the record";
    co_return out;
  }
  if (unread.size() > options_.max_messages) {
    unread.erase(unread.begin(), unread.end() - static_cast<std::ptrdiff_t>(options_.max_messages));
  }
  // The free pre-filter: nothing the user said can hold a memory → no call.
  std::string said;  // the user's words, for recall and for the change test
  for (const auto& m : unread) {
    if (m->role == "user" && worth_reading(m->text)) {
      if (!said.empty()) said += '\n';
      said += std::string(utf8_prefix(m->text, kMaxUserTextRead));
    }
  }
  if (said.empty()) {
    const Result<storage::WriteAck> marked = co_await await_write(mark);
    warn_unless_marked(conversation, marked);
    out.skipped = "nothing worth reading";
    co_return out;
  }
  // Cost control: a daily cap per user, and nothing while a budget is past its soft threshold.
  llm::CallOptions options;
  options.purpose = "extraction";
  options.user_id = subject.user_id;
  options.conversation_id = conversation;
  const auto& roles = deps_.llm.settings().roles;
  if (!options_.role.empty()) {
    options.role = options_.role;
  } else if (roles.count("extract") != 0) {
    options.role = "extract";
  } else if (roles.count("fast") != 0) {
    options.role = "fast";
  }
  const int64_t now_ms = deps_.clock.now_ms();
  storage::UsageQuery today;
  today.user_id = subject.user_id;
  today.from_ms = now_ms - now_ms % (int64_t{86'400} * 1000);
  today.purpose = "extraction";
  if (auto used = deps_.store.usage().summary(today);
      used.ok() && used->calls >= options_.daily_calls_per_user) {
    out.skipped =
        fmt::format("the daily cap of {} calls is reached", options_.daily_calls_per_user);
    co_return out;
  }
  if (deps_.llm.gate() != nullptr && deps_.llm.gate()->past_soft(options)) {
    out.skipped = "a budget is past its soft threshold";
    co_return out;
  }

  // What is already remembered that the messages may touch, renumbered 1..N.
  storage::RecallRequest recall;
  recall.user_id = subject.user_id;
  recall.query = said;
  recall.limit = options_.existing;
  recall.now_ms = now_ms;
  if (deps_.embedder != nullptr) {
    std::string query = said;
    auto v = co_await deps_.embedder->embed_query(
        std::move(query), subject.user_id,
        std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (v) {
      recall.query_vector = std::move(v);
      recall.vector_model = deps_.embedder->model();
      recall.vector_dimensions = deps_.embedder->dimensions();
    }
  }
  std::vector<std::shared_ptr<const storage::Memory>> shown;
  if (auto hits = memories.recall_ranked(recall); hits.ok()) {
    for (const auto& h : *hits) shown.push_back(h.memory);
  } else {
    spdlog::warn("memory: recall for extraction failed: {}", hits.error().describe());
  }

  // The request: the instructions, then the data (never in the system role).
  prompts::RenderContext rc;
  rc.user_name = subject.user_name;
  rc.user_timezone = subject.time_zone;
  rc.now = std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms));
  auto values = prompts::values_for(rc);
  auto prompt = deps_.prompts.active("extract");
  if (!values || !prompt) {
    out.skipped = "no extract prompt: " + (!values ? values.error() : prompt.error()).describe();
    co_return out;
  }
  auto instructions = (*prompt)->parsed.render(*values);
  if (!instructions) {
    out.skipped = "the extract prompt does not render: " + instructions.error().describe();
    co_return out;
  }
  json data = {{"existing", json::array()}, {"messages", json::array()}};
  for (size_t i = 0; i < shown.size(); ++i) {
    data["existing"].push_back(
        {{"n", i + 1}, {"kind", shown[i]->kind}, {"text", shown[i]->content}});
  }
  for (const auto& m : unread) {
    const bool user = m->role == "user";
    data["messages"].push_back(
        {{"from", user ? subject.user_name : std::string("assistant")},
         {"at", utc_day(m->created_at)},
         {"text",
          valid_utf8(utf8_prefix(m->text, user ? kMaxUserTextRead : kMaxAssistantTextRead))}});
  }
  llm::ChatRequest request;
  request.messages.push_back(llm::Message::system(std::move(*instructions)));
  request.messages.push_back(llm::Message::user(data.dump()));
  request.max_tokens = options_.max_tokens;
  request.temperature = 0;
  request.response_format = {{"type", "json_object"}};
  request.stream = false;
  options.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  calls_.fetch_add(1);
  const llm::LlmResponse r = co_await deps_.llm.call(std::move(request), std::move(options));
  out.called = true;
  const llm::Usage usage = r.total_usage();
  out.prompt_tokens = usage.prompt_tokens;
  out.completion_tokens = usage.completion_tokens;
  if (!r.ok()) {
    // Not marked read: the next quiet period tries again.
    spdlog::warn("memory: extraction for conversation {} failed: {}", conversation,
                 r.error ? r.error->describe() : std::string("no answer"));
    co_return out;
  }
  std::vector<std::string> rejected;
  auto ops = parse_extraction(r.result->content, shown.size(), rejected);
  if (!ops) {
    spdlog::warn("memory: extraction for conversation {}: {}", conversation,
                 ops.error().describe());
    out.invalid = 1;
  } else {
    for (const auto& why : rejected) {
      spdlog::info("memory: extraction for conversation {}: {} (dropped)", conversation, why);
    }
    out.invalid = static_cast<int>(rejected.size());
    co_await apply(subject, std::move(*ops), shown, said, r.result->model, out.through, out);
  }
  const Result<storage::WriteAck> marked = co_await await_write(mark);
  warn_unless_marked(conversation, marked);
  co_return out;
}

asio::awaitable<bool> MemoryExtractor::near_duplicate(
    const ExtractionSubject& subject, const std::string& text, const std::string& kind,
    const std::vector<std::shared_ptr<const storage::Memory>>& shown,
    std::optional<std::vector<float>>& vector) {
  const auto words = content_word_set(text);
  for (const auto& m : shown) {
    if (m->kind == kind && word_overlap(words, content_word_set(m->content)) >= 0.8) co_return true;
  }
  if (deps_.embedder == nullptr) co_return false;
  std::string query = text;
  vector = co_await deps_.embedder->embed_query(
      std::move(query), subject.user_id,
      std::chrono::steady_clock::now() + std::chrono::seconds(10));
  if (!vector) co_return false;
  for (const auto& m : shown) {
    if (m->kind != kind) continue;
    auto q = deps_.store.memories().vector_of(m->id, deps_.embedder->model(),
                                              deps_.embedder->dimensions());
    if (!q.ok() || !*q) continue;
    const std::vector<float> other = storage::dequantize(**q);
    double dot = 0;
    for (size_t i = 0; i < other.size() && i < vector->size(); ++i) {
      dot += static_cast<double>(other[i]) * static_cast<double>((*vector)[i]);
    }
    if (dot >= options_.duplicate_cosine) co_return true;
  }
  co_return false;
}

asio::awaitable<void> MemoryExtractor::apply(
    const ExtractionSubject& subject, std::vector<ExtractionOp> ops,
    const std::vector<std::shared_ptr<const storage::Memory>>& shown, const std::string& said,
    const std::string& model, int64_t through, ExtractionOutcome& out) {
  auto& memories = deps_.store.memories();
  const bool change_stated = states_a_change(said);
  if (ops.size() > options_.max_ops) ops.resize(options_.max_ops);
  for (auto& op : ops) {
    if (op.op == "NOOP") {
      ++out.unchanged;
      continue;
    }
    if (auto why = extraction_refusal(op.text)) {
      // The text is not logged: it may be the secret.
      spdlog::warn("memory: an extracted {} for user {} was refused: {}", op.op, subject.user_id,
                   *why);
      ++out.refused;
      continue;
    }
    const storage::Memory* old = op.ref > 0 ? shown[op.ref - 1].get() : nullptr;
    if (op.op == "SUPERSEDE" && old != nullptr) {
      // Only a change the user stated, or a new value of the same thing; else both are kept.
      const bool same_thing = old->kind == op.kind && word_overlap(content_word_set(old->content),
                                                                   content_word_set(op.text)) > 0;
      if (!change_stated && !same_thing) {
        op.op = "ADD";
        old = nullptr;
      }
    }
    storage::NewMemory m;
    m.user_id = subject.user_id;
    m.content = op.text;
    m.kind = op.kind;
    m.importance = op.importance;
    m.confidence = op.confidence;
    m.event_at = op.event_at;
    m.source = "extracted";
    m.source_message_id = through;
    m.reason = op.reason.empty() ? "extracted from the conversation" : op.reason;
    m.model = model;
    std::optional<std::vector<float>> vector;
    if (op.op == "ADD") {
      const bool duplicate = co_await near_duplicate(subject, op.text, op.kind, shown, vector);
      if (duplicate) {
        ++out.unchanged;
        continue;
      }
    }
    if (op.op == "UPDATE" && old != nullptr) {
      if (old->content == op.text) {
        ++out.unchanged;
        continue;
      }
      if (old->kind != op.kind && op.kind == "fact") m.kind = old->kind;  // kept unless said
      m.tags = old->tags;
    }
    const int64_t old_id = old != nullptr ? old->id : 0;
    const std::string op_name = op.op;
    const std::function<void(storage::WriteCallback)> write = [&](storage::WriteCallback done) {
      if (op_name == "ADD") {
        memories.add(std::move(m), std::move(done));
      } else if (op_name == "UPDATE") {
        memories.update_for_user(old_id, std::move(m), std::move(done));
      } else {
        memories.supersede_for_user(old_id, std::move(m), std::move(done));
      }
    };
    const Result<storage::WriteAck> ack = co_await await_write(write);
    if (!ack) {
      spdlog::warn("memory: an extracted {} for user {} was not stored: {}", op_name,
                   subject.user_id, ack.error().describe());
      ++out.invalid;
      continue;
    }
    if (op_name == "ADD" && !ack->inserted) {
      ++out.unchanged;  // the same text was already remembered (a NOOP in the trail)
      continue;
    }
    const int64_t written = ack->row_id;
    if (op_name == "ADD") ++out.added;
    if (op_name == "UPDATE") ++out.updated;
    if (op_name == "SUPERSEDE") ++out.superseded;
    for (const size_t r : op.related) {
      const int64_t related = shown[r - 1]->id;
      if (related == written) continue;
      memories.relate(written, related, "related", op.confidence, [](Result<storage::WriteAck>) {});
    }
    // Its vector: the one computed for the duplicate test, else made like any written memory.
    if (vector && deps_.embedder != nullptr) {
      memories.put_vector(written, deps_.embedder->model(), deps_.embedder->dimensions(), *vector,
                          [](Result<storage::WriteAck>) {});
    } else if (deps_.embedder != nullptr) {
      deps_.embedder->embed_memory(written, op.text, subject.user_id, strand_);
    } else if (deps_.written) {
      deps_.written(subject.user_id, written, op.text);
    }
  }
}

}  // namespace parley::bot::pipeline
