#include "parley/bot/config/config.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "parley/base/yaml_reader.h"
#include "parley/bot/money/periods.h"
#include "parley/bot/money/prices.h"

namespace parley::bot::config {

namespace {

// The upper bounds of money.alerts.rate_limit.per_minutes and money.credits.runway_hours.
constexpr int64_t kMinutesPerDay = int64_t{24} * 60;
constexpr int64_t kHoursPerYear = int64_t{24} * 365;

// parley.yaml through the shared YamlReader: every problem is collected (parse_config throws
// them all at the end). A value with a problem reads as a harmless fallback (the minimum, an
// empty string) so that the walk goes on; a second problem that fallback causes on the same key
// is not reported.
class Reader {
 public:
  explicit Reader(std::string name) : yaml_(std::move(name)) {}

  void error(const YAML::Node& node, const std::string& key, const std::string& problem) {
    const std::string& at = key.empty() ? std::string("(top level)") : key;
    for (const auto& p : yaml_.problems()) {
      if (p.key == at) return;
    }
    yaml_.problem(node, key, problem);
  }

  using Handler = YamlReader::Handler;

  void mapping(const YAML::Node& node, const std::string& path,
               const std::map<std::string, Handler>& handlers) {
    yaml_.mapping(node, path, handlers);
  }
  void named(const YAML::Node& node, const std::string& path, const YamlReader::Named& each) {
    yaml_.named(node, path, each);
  }
  void sequence(const YAML::Node& node, const std::string& key, const Handler& each) {
    yaml_.sequence(node, key, each);
  }
  int64_t integer(const YAML::Node& node, const std::string& key, int64_t min,
                  int64_t max = std::numeric_limits<int64_t>::max()) {
    return yaml_.integer(node, key, min, max).value_or(min);
  }
  std::string string(const YAML::Node& node, const std::string& key) {
    return yaml_.string(node, key).value_or(std::string());
  }

  YamlReader& yaml() { return yaml_; }

 private:
  YamlReader yaml_;
};

size_t to_size(int64_t v) { return static_cast<size_t>(v); }
int to_int(int64_t v) { return static_cast<int>(v); }

bool env_var_name(const std::string& s) {
  if (s.empty() || (std::isdigit(static_cast<unsigned char>(s[0])) != 0)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// channels.http (and the deprecated top-level http:).
void parse_http_channel(Reader& r, const YAML::Node& node, const std::string& path,
                        channels::HttpChannelOptions& http) {
  r.mapping(node, path,
            {
                {"listen",
                 [&](const YAML::Node& v, const std::string& k) {
                   http.listen = r.string(v, k);
                   if (http.listen.rfind(':') == std::string::npos) {
                     r.error(v, k, "expected HOST:PORT, e.g. 127.0.0.1:8787");
                   }
                 }},
                {"token_env",
                 [&](const YAML::Node& v, const std::string& k) {
                   http.token_env = r.string(v, k);
                   if (!env_var_name(http.token_env)) {
                     r.error(v, k,
                             "expected the NAME of an environment variable, not the token itself");
                   }
                 }},
            });
}

// A Discord id (snowflake): decimal digits, at most 20.
bool snowflake(const std::string& s) {
  return !s.empty() && s.size() <= 20 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A list of Discord ids (YAML integers or strings).
std::vector<std::string> parse_ids(Reader& r, const YAML::Node& node, const std::string& path) {
  std::vector<std::string> out;
  r.sequence(node, path, [&](const YAML::Node& item, const std::string& ik) {
    const std::string id = r.string(item, ik);
    if (!snowflake(id)) {
      r.error(item, ik, fmt::format("expected a Discord id (digits), found '{}'", id));
      return;
    }
    out.push_back(id);
  });
  return out;
}

// An email address (loosely: something@something, no spaces) or, with `domain_ok`, "@domain".
bool mail_address(const std::string& s, bool domain_ok) {
  const size_t at = s.find('@');
  if (at == std::string::npos || s.find_first_of(" \t<>,;") != std::string::npos) return false;
  if (at == 0) return domain_ok && s.size() > 1;
  return at + 1 < s.size() && s.find('@', at + 1) == std::string::npos;
}

std::vector<std::string> parse_addresses(Reader& r, const YAML::Node& node, const std::string& path,
                                         bool domain_ok) {
  std::vector<std::string> out;
  r.sequence(node, path, [&](const YAML::Node& item, const std::string& ik) {
    std::string a = r.string(item, ik);
    if (!mail_address(a, domain_ok)) {
      r.error(item, ik,
              fmt::format("expected an address{}, found '{}'",
                          domain_ok ? " (name@example.org) or @domain" : " (name@example.org)", a));
      return;
    }
    std::transform(a.begin(), a.end(), a.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.push_back(a);
  });
  return out;
}

// channels.email.imap / .smtp: the parts both share.
Reader::Handler mail_server_key(Reader& r, channels::email::MailServer& s, const std::string& key) {
  namespace em = channels::email;
  if (key == "host") {
    return [&](const YAML::Node& v, const std::string& k) { s.host = r.string(v, k); };
  }
  if (key == "port") {
    return [&](const YAML::Node& v, const std::string& k) {
      s.port = static_cast<uint16_t>(r.integer(v, k, 1, 65'535));
    };
  }
  if (key == "tls") {
    return [&](const YAML::Node& v, const std::string& k) {
      const std::string t = r.string(v, k);
      if (t == "implicit") {
        s.tls = em::MailTls::implicit;
      } else if (t == "starttls") {
        s.tls = em::MailTls::starttls;
      } else if (t == "none") {
        s.tls = em::MailTls::none;
      } else {
        r.error(v, k, fmt::format("'{}' is not one of implicit, starttls, none", t));
      }
    };
  }
  if (key == "user") {
    return [&](const YAML::Node& v, const std::string& k) { s.user = r.string(v, k); };
  }
  return [&](const YAML::Node& v, const std::string& k) {  // password_env
    s.password_env = r.string(v, k);
    if (!env_var_name(s.password_env)) {
      r.error(v, k, "expected the NAME of an environment variable, not the password itself");
    }
  };
}

// channels.email.
void parse_email_channel(Reader& r, const YAML::Node& node, const std::string& path,
                         channels::email::EmailOptions& e) {
  using Processed = channels::email::EmailOptions::Imap::Processed;
  e.configured = true;
  auto server = [&](channels::email::MailServer& s) {
    std::map<std::string, Reader::Handler> h;
    for (const char* key : {"host", "port", "tls", "user", "password_env"}) {
      h[key] = mail_server_key(r, s, key);
    }
    return h;
  };
  r.mapping(
      node, path,
      {
          {"imap",
           [&](const YAML::Node& n, const std::string& p) {
             auto h = server(e.imap);
             h["mailbox"] = [&](const YAML::Node& v, const std::string& k) {
               e.imap.mailbox = r.string(v, k);
             };
             h["idle"] = [&](const YAML::Node& v, const std::string& k) {
               e.imap.idle = r.yaml().boolean(v, k).value_or(e.imap.idle);
             };
             h["processed"] = [&](const YAML::Node& v, const std::string& k) {
               // flag, or {move: FOLDER}
               if (v.IsScalar() && v.Scalar() == "flag") {
                 e.imap.processed = Processed::flag;
                 return;
               }
               if (v.IsMap() && v["move"]) {
                 e.imap.processed = Processed::move;
                 e.imap.move_to = r.string(v["move"], k + ".move");
                 return;
               }
               r.error(v, k, "expected flag, or {move: FOLDER}");
             };
             r.mapping(n, p, h);
             if (e.imap.host.empty()) r.error(n, p, "expected host: beside the other imap keys");
           }},
          {"smtp",
           [&](const YAML::Node& n, const std::string& p) {
             auto h = server(e.smtp);
             h["from"] = [&](const YAML::Node& v, const std::string& k) {
               e.smtp.from = r.string(v, k);
               if (!mail_address(e.smtp.from, false)) {
                 r.error(v, k, fmt::format("expected the bot's address, found '{}'", e.smtp.from));
               }
             };
             h["from_name"] = [&](const YAML::Node& v, const std::string& k) {
               e.smtp.from_name = r.string(v, k);
             };
             r.mapping(n, p, h);
             if (e.smtp.host.empty()) r.error(n, p, "expected host: beside the other smtp keys");
           }},
          {"allow", [&](const YAML::Node& v,
                        const std::string& k) { e.allow = parse_addresses(r, v, k, true); }},
          {"admins", [&](const YAML::Node& v,
                         const std::string& k) { e.admins = parse_addresses(r, v, k, false); }},
          {"poll_interval_s",
           [&](const YAML::Node& v, const std::string& k) {
             e.poll_interval_s = to_int(r.integer(v, k, 5, 86'400));
           }},
          {"max_message_bytes",
           [&](const YAML::Node& v, const std::string& k) {
             e.max_message_bytes = to_size(r.integer(v, k, 1024, int64_t{1} << 30));
           }},
          {"trusted_authserv_id",
           [&](const YAML::Node& v, const std::string& k) {
             e.trusted_authserv_id = r.string(v, k);
           }},
          {"replies_per_hour",
           [&](const YAML::Node& v, const std::string& k) {
             e.replies_per_hour = to_int(r.integer(v, k, 1, 10'000));
           }},
      });
}

// channels.discord.
void parse_discord_channel(Reader& r, const YAML::Node& node, const std::string& path,
                           channels::discord::DiscordOptions& d) {
  namespace dc = channels::discord;
  auto flag = [&](bool& out) {
    return [&out, &r](const YAML::Node& v, const std::string& k) {
      out = r.yaml().boolean(v, k).value_or(out);
    };
  };
  r.mapping(
      node, path,
      {
          {"token_env",
           [&](const YAML::Node& v, const std::string& k) {
             d.token_env = r.string(v, k);
             if (!env_var_name(d.token_env)) {
               r.error(v, k, "expected the NAME of an environment variable, not the token itself");
             }
           }},
          {"api_base",
           [&](const YAML::Node& v, const std::string& k) {
             d.api_base = r.string(v, k);
             if (d.api_base.rfind("https://", 0) != 0 && d.api_base.rfind("http://", 0) != 0) {
               r.error(v, k, "expected an http(s):// URL, e.g. https://discord.com/api");
             }
           }},
          {"intents",
           [&](const YAML::Node& v, const std::string& k) {
             static const std::map<std::string, uint32_t> kNames = {
                 {"guilds", dc::kIntentGuilds},
                 {"guild_members", dc::kIntentGuildMembers},
                 {"guild_presences", dc::kIntentGuildPresences},
                 {"guild_messages", dc::kIntentGuildMessages},
                 {"direct_messages", dc::kIntentDirectMessages},
                 {"message_content", dc::kIntentMessageContent}};
             d.intents = 0;
             r.sequence(v, k, [&](const YAML::Node& item, const std::string& ik) {
               const std::string name = r.string(item, ik);
               if (auto it = kNames.find(name); it != kNames.end()) {
                 d.intents |= it->second;
               } else {
                 r.error(item, ik,
                         fmt::format("'{}' is not one of guilds, guild_members, guild_presences, "
                                     "guild_messages, direct_messages, message_content",
                                     name));
               }
             });
           }},
          {"respond_to",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"mentions", flag(d.respond_to.mentions)},
                           {"replies", flag(d.respond_to.replies)},
                           {"dms", flag(d.respond_to.dms)},
                           {"threads", flag(d.respond_to.threads)},
                           {"ambient_channels",
                            [&](const YAML::Node& v, const std::string& k) {
                              d.respond_to.ambient_channels = parse_ids(r, v, k);
                            }},
                       });
           }},
          {"guilds",
           [&](const YAML::Node& v, const std::string& k) { d.guilds = parse_ids(r, v, k); }},
          {"channels",
           [&](const YAML::Node& v, const std::string& k) { d.channels = parse_ids(r, v, k); }},
          {"admins",
           [&](const YAML::Node& v, const std::string& k) { d.admins = parse_ids(r, v, k); }},
          {"memory_channels",
           [&](const YAML::Node& v, const std::string& k) {
             d.memory_channels = parse_ids(r, v, k);
           }},
          {"allow_bots", flag(d.allow_bots)},
          {"shards",
           [&](const YAML::Node& n, const std::string& p) {
             if (n.IsScalar()) {
               if (n.Scalar() != "auto") {
                 r.error(n, p,
                         fmt::format("expected auto or {{ids: [..], count: N}}, found '{}'",
                                     n.Scalar()));
               }
               d.shards = {};
               return;
             }
             YAML::Node ids_node;
             r.mapping(n, p,
                       {
                           {"ids",
                            [&](const YAML::Node& v, const std::string& k) {
                              ids_node = v;
                              d.shards.ids.clear();
                              r.sequence(v, k, [&](const YAML::Node& item, const std::string& ik) {
                                d.shards.ids.push_back(to_int(r.integer(item, ik, 0, 65'535)));
                              });
                            }},
                           {"count",
                            [&](const YAML::Node& v, const std::string& k) {
                              d.shards.count = to_int(r.integer(v, k, 1, 65'536));
                            }},
                       });
             if (d.shards.count == 0) {
               r.error(n, p, "expected count: N beside ids (the total number of shards)");
             }
             for (const int id : d.shards.ids) {
               if (id >= d.shards.count && d.shards.count > 0) {
                 r.error(ids_node, p + ".ids",
                         fmt::format("shard {} is not below count {}", id, d.shards.count));
               }
             }
             if (d.shards.ids.empty() && d.shards.count > 0) {
               for (int i = 0; i < d.shards.count; ++i) d.shards.ids.push_back(i);
             }
           }},
      });
}

void parse_llm(Reader& r, const YAML::Node& node, const std::string& path, llm::LlmSettings& llm) {
  auto ms = [&](std::chrono::milliseconds& out, int64_t min, int64_t max) {
    return [&out, &r, min, max](const YAML::Node& v, const std::string& k) {
      out = std::chrono::milliseconds(r.integer(v, k, min, max));
    };
  };
  const auto builtin = llm::builtin_providers();
  // Role entries are checked against the providers once the whole section is read.
  std::vector<std::pair<YAML::Node, std::string>> provider_refs;
  YAML::Node default_provider_node;
  r.mapping(
      node, path,
      {
          {"provider",
           [&](const YAML::Node& v, const std::string& k) {
             llm.provider = r.string(v, k);
             default_provider_node = v;
           }},
          {"default_role",
           [&](const YAML::Node& v, const std::string& k) { llm.default_role = r.string(v, k); }},
          {"providers",
           [&](const YAML::Node& n, const std::string& p) {
             r.named(
                 n, p, [&](const std::string& name, const YAML::Node& pn, const std::string& pp) {
                   llm::ProviderConfig cfg;
                   if (auto it = builtin.find(name); it != builtin.end()) cfg = it->second;
                   cfg.name = name;
                   r.mapping(
                       pn, pp,
                       {
                           {"base_url",
                            [&](const YAML::Node& v, const std::string& k) {
                              cfg.base_url = r.string(v, k);
                              if (!cfg.base_url.starts_with("http://") &&
                                  !cfg.base_url.starts_with("https://")) {
                                r.error(v, k, "expected an http:// or https:// URL");
                              }
                            }},
                           {"api_key_env",
                            [&](const YAML::Node& v, const std::string& k) {
                              if (v.IsNull() || (v.IsScalar() && v.Scalar().empty())) {
                                cfg.api_key_env.clear();
                                return;
                              }
                              const std::string name_of_var = r.string(v, k);
                              // Never echo the value: it may be a key pasted by mistake.
                              if (!env_var_name(name_of_var)) {
                                r.error(v, k,
                                        "expected the NAME of an environment variable (like "
                                        "OPENROUTER_API_KEY), not the key itself; keys never go in "
                                        "this file");
                              }
                              cfg.api_key_env = name_of_var;
                            }},
                           {"headers",
                            [&](const YAML::Node& hn, const std::string& hp) {
                              r.named(
                                  hn, hp,
                                  [&](const std::string& h, const YAML::Node& v,
                                      const std::string& k) { cfg.headers[h] = r.string(v, k); });
                            }},
                       });
                   if (cfg.base_url.empty()) r.error(pn, pp, "base_url is required");
                   llm.providers[name] = std::move(cfg);
                 });
           }},
          {"roles",
           [&](const YAML::Node& n, const std::string& p) {
             r.named(n, p,
                     [&](const std::string& role, const YAML::Node& rn, const std::string& rp) {
                       auto& list = llm.roles[role];
                       list.clear();
                       auto add = [&](const YAML::Node& item, const std::string& k) {
                         llm::ModelRef ref;
                         if (item.IsMap()) {
                           r.mapping(item, k,
                                     {
                                         {"provider",
                                          [&](const YAML::Node& v, const std::string& kk) {
                                            ref.provider = r.string(v, kk);
                                            provider_refs.emplace_back(v, kk);
                                          }},
                                         {"model",
                                          [&](const YAML::Node& v, const std::string& kk) {
                                            ref.model = r.string(v, kk);
                                          }},
                                     });
                           if (ref.model.empty()) r.error(item, k, "model is required");
                         } else {
                           ref.model = r.string(item, k);
                         }
                         list.push_back(std::move(ref));
                       };
                       if (rn.IsSequence()) {
                         r.sequence(rn, rp, add);
                       } else {
                         add(rn, rp);
                       }
                       if (list.empty()) r.error(rn, rp, "expected at least one model");
                     });
           }},
          {"models",
           [&](const YAML::Node& n, const std::string& p) {
             r.named(n, p,
                     [&](const std::string& model, const YAML::Node& mn, const std::string& mp) {
                       if (!mn.IsMap()) r.error(mn, mp, "expected a mapping of request fields");
                       llm.model_options[model] = r.yaml().json(mn, mp).value_or(nullptr);
                     });
           }},
          {"timeouts",
           [&](const YAML::Node& n, const std::string& p) {
             auto& t = llm.timeouts;
             r.mapping(n, p,
                       {
                           {"connect_ms", ms(t.connect, 100, 600'000)},
                           {"first_byte_ms", ms(t.first_byte, 100, 3'600'000)},
                           {"idle_ms", ms(t.idle, 100, 3'600'000)},
                           {"call_ms", ms(t.call, 100, 3'600'000)},
                           {"turn_ms", ms(t.turn, 100, 3'600'000)},
                       });
           }},
          {"retry",
           [&](const YAML::Node& n, const std::string& p) {
             auto& rp = llm.retry;
             r.mapping(n, p,
                       {
                           {"max_attempts",
                            [&](const YAML::Node& v, const std::string& k) {
                              rp.max_attempts = to_int(r.integer(v, k, 1, 20));
                            }},
                           {"base_backoff_ms", ms(rp.base_backoff, 1, 600'000)},
                           {"max_backoff_ms", ms(rp.max_backoff, 1, 3'600'000)},
                       });
           }},
      });
  auto known = [&](const std::string& name) {
    return builtin.count(name) != 0 || llm.providers.count(name) != 0;
  };
  auto known_list = [&] {
    std::string out;
    for (const auto& [n, _] : builtin) out += (out.empty() ? "" : ", ") + n;
    for (const auto& [n, _] : llm.providers) {
      if (builtin.count(n) == 0) out += ", " + n;
    }
    return out;
  };
  if (!llm.provider.empty() && !known(llm.provider)) {
    r.error(default_provider_node, path + ".provider",
            fmt::format("unknown provider '{}' (known: {})", llm.provider, known_list()));
  }
  for (const auto& [n, k] : provider_refs) {
    if (!known(n.Scalar())) {
      r.error(n, k, fmt::format("unknown provider '{}' (known: {})", n.Scalar(), known_list()));
    }
  }
}

}  // namespace

Config default_config() { return Config{}; }

Config parse_config(const std::string& yaml, const std::string& name) {
  Reader r(name);
  const auto document = r.yaml().parse(yaml);
  if (!document) throw ConfigError(describe_all(r.yaml().problems()));
  const YAML::Node& root = *document;
  Config cfg = default_config();
  auto& s = cfg.storage;
  constexpr int64_t kMiB = 1 << 20;

  r.mapping(
      root, "",
      {
          {"storage",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(
                 n, p,
                 {
                     {"path",
                      [&](const YAML::Node& v, const std::string& k) { s.path = r.string(v, k); }},
                     {"readers",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.readers = to_size(r.integer(v, k, 1, 64));
                      }},
                     {"history_messages",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.history_messages = to_size(r.integer(v, k, 1, 10'000));
                      }},
                     {"busy_timeout_ms",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.busy_timeout_ms = to_int(r.integer(v, k, 0, 600'000));
                      }},
                     {"page_cache_kib",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.page_cache_kib = to_int(r.integer(v, k, 64, 16 * kMiB));
                      }},
                     {"checkpoint_pages",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.checkpoint_pages = to_int(r.integer(v, k, 0, 1'000'000));
                      }},
                     {"wal_alert_mib",
                      [&](const YAML::Node& v, const std::string& k) {
                        cfg.wal_alert_bytes = r.integer(v, k, 0, 1 << 20) << 20;
                      }},
                     {"slow_commit_ms",
                      [&](const YAML::Node& v, const std::string& k) {
                        cfg.slow_commit = std::chrono::milliseconds(r.integer(v, k, 0, 3'600'000));
                      }},
                     {"synchronous",
                      [&](const YAML::Node& v, const std::string& k) {
                        const std::string mode = r.string(v, k);
                        if (mode == "normal" || mode == "full") {
                          s.connection.synchronous = mode == "full" ? "FULL" : "NORMAL";
                        } else {
                          r.error(v, k, fmt::format("'{}' is not one of normal, full", mode));
                        }
                      }},
                     {"mmap_size_mib",
                      [&](const YAML::Node& v, const std::string& k) {
                        s.connection.mmap_size_bytes = r.integer(v, k, 0, 1 << 20) * kMiB;
                      }},
                     {"cache",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"max_entries",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.cache.max_entries = to_size(r.integer(v, k, 0));
                                       }},
                                      {"max_bytes_mib",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.cache.max_bytes =
                                             to_size(r.integer(v, k, 0, 1 << 20) * kMiB);
                                       }},
                                  });
                      }},
                     {"write_queue",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"max_batch",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.max_batch = to_size(r.integer(v, k, 1, 100'000));
                                       }},
                                      {"max_wait_us",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.max_wait = std::chrono::microseconds(
                                             r.integer(v, k, 0, 1'000'000));
                                       }},
                                      {"capacity",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         s.queue.capacity = to_size(r.integer(v, k, 1));
                                       }},
                                  });
                      }},
                 });
           }},
          {"llm", [&](const YAML::Node& n, const std::string& p) { parse_llm(r, n, p, cfg.llm); }},
          {"channels",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"http",
                            [&](const YAML::Node& v, const std::string& k) {
                              parse_http_channel(r, v, k, cfg.channels.http);
                            }},
                           {"discord",
                            [&](const YAML::Node& v, const std::string& k) {
                              parse_discord_channel(r, v, k, cfg.channels.discord);
                            }},
                           {"email",
                            [&](const YAML::Node& v, const std::string& k) {
                              parse_email_channel(r, v, k, cfg.channels.email);
                            }},
                       });
           }},
          // Before `channels:` existed; still read, with a line saying where it moved.
          {"http",
           [&](const YAML::Node& n, const std::string& p) {
             spdlog::warn(
                 "{}:{}:{}: `http:` is deprecated: move it under `channels:` as `channels.http:`",
                 name, n.Mark().line + 1, n.Mark().column + 1);
             parse_http_channel(r, n, p, cfg.channels.http);
           }},
          {"access",
           [&](const YAML::Node& n, const std::string& p) {
             auto& a = cfg.access;
             auto senders = [&](const YAML::Node& v, const std::string& k) {
               std::vector<std::string> out;
               r.sequence(v, k, [&](const YAML::Node& item, const std::string& ik) {
                 out.push_back(r.string(item, ik));
               });
               return out;
             };
             r.mapping(
                 n, p,
                 {
                     {"mode",
                      [&](const YAML::Node& v, const std::string& k) {
                        const std::string mode = r.string(v, k);
                        if (mode == "open") {
                          a.mode = pipeline::AccessPolicy::Mode::open;
                        } else if (mode == "private") {
                          a.mode = pipeline::AccessPolicy::Mode::private_bot;
                        } else {
                          r.error(v, k, fmt::format("'{}' is not one of open, private", mode));
                        }
                      }},
                     {"allow",
                      [&](const YAML::Node& v, const std::string& k) {
                        a.allow.clear();
                        r.named(
                            v, k,
                            [&](const std::string& channel, const YAML::Node& list,
                                const std::string& lk) { a.allow[channel] = senders(list, lk); });
                      }},
                     {"admins",
                      [&](const YAML::Node& v, const std::string& k) {
                        a.admins.clear();
                        r.sequence(v, k, [&](const YAML::Node& item, const std::string& ik) {
                          const std::string admin = r.string(item, ik);
                          const auto colon = admin.find(':');
                          if (colon == std::string::npos || colon == 0 ||
                              colon + 1 == admin.size()) {
                            r.error(
                                item, ik,
                                fmt::format(
                                    "'{}': expected CHANNEL:SENDER, e.g. console:* or http:alice",
                                    admin));
                          }
                          a.admins.push_back(admin);
                        });
                      }},
                     {"rate_limit",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"messages",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         a.rate_messages = to_int(r.integer(v, k, 0, 1'000'000));
                                       }},
                                      {"per_seconds",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         a.rate_window =
                                             std::chrono::seconds(r.integer(v, k, 1, 86'400));
                                       }},
                                  });
                      }},
                     {"refusal", [&](const YAML::Node& v,
                                     const std::string& k) { a.refusal = r.string(v, k); }},
                 });
           }},
          {"lanes",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(
                 n, p,
                 {
                     {"debounce_ms",
                      [&](const YAML::Node& v, const std::string& k) {
                        cfg.lanes.debounce = std::chrono::milliseconds(r.integer(v, k, 0, 60'000));
                      }},
                     {"max_wait_ms",
                      [&](const YAML::Node& v, const std::string& k) {
                        cfg.lanes.max_wait = std::chrono::milliseconds(r.integer(v, k, 0, 600'000));
                      }},
                     {"max_active",
                      [&](const YAML::Node& v, const std::string& k) {
                        cfg.lanes.max_active = static_cast<size_t>(r.integer(v, k, 0, 10'000'000));
                      }},
                 });
           }},
          {"memory",
           [&](const YAML::Node& n, const std::string& p) {
             auto& m = cfg.memory;
             r.mapping(
                 n, p,
                 {
                     {"dimensions",
                      [&](const YAML::Node& v, const std::string& k) {
                        m.dimensions = to_int(r.integer(v, k, 8, 8192));
                      }},
                     {"extraction",
                      [&](const YAML::Node& e, const std::string& ep) {
                        auto& x = m.extraction;
                        r.mapping(
                            e, ep,
                            {
                                {"enabled",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   x.enabled = r.yaml().boolean(v, k).value_or(x.enabled);
                                 }},
                                {"quiet_s",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   x.quiet = std::chrono::seconds(r.integer(v, k, 0, 86'400));
                                 }},
                                {"max_tokens",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   x.max_tokens = to_int(r.integer(v, k, 64, 8192));
                                 }},
                                {"daily_calls_per_user",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   x.daily_calls_per_user = to_int(r.integer(v, k, 0, 100'000));
                                 }},
                                {"role", [&](const YAML::Node& v,
                                             const std::string& k) { x.role = r.string(v, k); }},
                            });
                      }},
                 });
           }},
          {"outbox",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"retry_ms",
                            [&](const YAML::Node& v, const std::string& k) {
                              cfg.outbox_retry =
                                  std::chrono::milliseconds(r.integer(v, k, 100, 86'400'000));
                            }},
                           {"unanswered_within_minutes",
                            [&](const YAML::Node& v, const std::string& k) {
                              cfg.answer_unanswered_within =
                                  std::chrono::minutes(r.integer(v, k, 0, 7 * 24 * 60));
                            }},
                       });
           }},
          {"capabilities",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"file",
                            [&](const YAML::Node& v, const std::string& k) {
                              cfg.capabilities_file = r.string(v, k);
                            }},
                       });
           }},
          {"money",
           [&](const YAML::Node& n, const std::string& p) {
             auto& m = cfg.money;
             auto usd = [&](const YAML::Node& v, const std::string& k) -> int64_t {
               const auto parsed =
                   v.IsScalar() ? money::PriceTable::parse_usd(v.Scalar()) : std::nullopt;
               if (!parsed) {
                 r.error(v, k,
                         fmt::format("expected an amount of USD such as 5 or 0.25, got '{}'",
                                     v.IsScalar() ? v.Scalar() : std::string("a collection")));
               }
               return parsed.value_or(0);
             };
             r.mapping(
                 n, p,
                 {
                     {"prices", [&](const YAML::Node& v,
                                    const std::string& k) { m.prices_file = r.string(v, k); }},
                     {"zone",
                      [&](const YAML::Node& v, const std::string& k) {
                        m.zone = r.string(v, k);
                        try {
                          money::Periods check(m.zone);
                        } catch (const std::runtime_error& e) {
                          r.error(v, k, e.what());
                        }
                      }},
                     {"unknown_price",
                      [&](const YAML::Node& v, const std::string& k) {
                        const std::string what = r.string(v, k);
                        if (what != "allow" && what != "refuse") {
                          r.error(v, k, fmt::format("'{}' is not one of allow, refuse", what));
                        }
                        m.refuse_unknown_price = what == "refuse";
                      }},
                     {"budgets",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(
                            n2, p2,
                            {
                                {"daily_usd", [&](const YAML::Node& v,
                                                  const std::string& k) { m.daily = usd(v, k); }},
                                {"monthly_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.monthly = usd(v, k);
                                 }},
                                {"user_daily_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.user_daily = usd(v, k);
                                 }},
                                {"user_monthly_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.user_monthly = usd(v, k);
                                 }},
                                {"per_turn_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.per_turn = usd(v, k);
                                 }},
                                {"soft_percent",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.soft_percent = to_int(r.integer(v, k, 1, 100));
                                 }},
                                {"cheaper_role",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.cheaper_role = r.string(v, k);
                                 }},
                                {"default_max_tokens",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.default_max_tokens = to_int(r.integer(v, k, 1, 1'000'000));
                                 }},
                                {"min_max_tokens",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.min_max_tokens = to_int(r.integer(v, k, 1, 1'000'000));
                                 }},
                            });
                      }},
                     {"alerts",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(
                            n2, p2,
                            {
                                {"daily_spend_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.alert_daily_spend = usd(v, k);
                                 }},
                                {"monthly_spend_usd",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.alert_monthly_spend = usd(v, k);
                                 }},
                                {"webhook_url_env",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.webhook_url_env = r.string(v, k);
                                   if (m.webhook_url_env.find("://") != std::string::npos) {
                                     r.error(v, k,
                                             "expected the NAME of an environment variable that "
                                             "holds the webhook URL "
                                             "(the URL is a secret: it does not go in this file)");
                                   }
                                 }},
                                {"deliver_to",
                                 [&](const YAML::Node& v, const std::string& k) {
                                   m.deliver_to.clear();
                                   r.sequence(
                                       v, k, [&](const YAML::Node& item, const std::string& ik) {
                                         std::string target = r.string(item, ik);
                                         const auto colon = target.find(':');
                                         if (colon == std::string::npos || colon == 0 ||
                                             colon + 1 == target.size()) {
                                           r.error(
                                               item, ik,
                                               fmt::format(
                                                   "'{}' is not CHANNEL:ID (e.g. console:alice)",
                                                   target));
                                         }
                                         m.deliver_to.push_back(std::move(target));
                                       });
                                 }},
                                {"rate_limit",
                                 [&](const YAML::Node& n3, const std::string& p3) {
                                   r.mapping(n3, p3,
                                             {
                                                 {"calls",
                                                  [&](const YAML::Node& v, const std::string& k) {
                                                    m.rate_limit_calls =
                                                        to_int(r.integer(v, k, 1, 1'000'000));
                                                  }},
                                                 {"per_minutes",
                                                  [&](const YAML::Node& v, const std::string& k) {
                                                    m.rate_limit_window = std::chrono::minutes(
                                                        r.integer(v, k, 1, kMinutesPerDay));
                                                  }},
                                             });
                                 }},
                            });
                      }},
                     {"credits",
                      [&](const YAML::Node& n2, const std::string& p2) {
                        r.mapping(n2, p2,
                                  {
                                      {"poll",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.credits = r.string(v, k);
                                         if (m.credits != "auto" && m.credits != "on" &&
                                             m.credits != "off") {
                                           r.error(v, k,
                                                   fmt::format("'{}' is not one of auto, on, off",
                                                               m.credits));
                                         }
                                       }},
                                      {"interval_s",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.credits_interval =
                                             std::chrono::seconds(r.integer(v, k, 10, 86'400));
                                       }},
                                      {"every_calls",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.credits_every_calls =
                                             to_int(r.integer(v, k, 0, 1'000'000));
                                       }},
                                      {"management_key_env",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.management_key_env = r.string(v, k);
                                       }},
                                      {"low_balance_warning_usd",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.low_balance_warning = usd(v, k);
                                       }},
                                      {"low_balance_critical_usd",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.low_balance_critical = usd(v, k);
                                       }},
                                      {"runway_hours",
                                       [&](const YAML::Node& v, const std::string& k) {
                                         m.runway_hours =
                                             static_cast<double>(r.integer(v, k, 1, kHoursPerYear));
                                       }},
                                  });
                      }},
                 });
           }},
          {"log",
           [&](const YAML::Node& n, const std::string& p) {
             r.mapping(n, p,
                       {
                           {"level",
                            [&](const YAML::Node& v, const std::string& k) {
                              const std::string level = r.string(v, k);
                              static constexpr std::array<std::string_view, 7> kLevels = {
                                  "trace", "debug", "info", "warn", "error", "critical", "off"};
                              const bool found =
                                  std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end();
                              if (!found) {
                                r.error(v, k,
                                        fmt::format("'{}' is not one of trace, debug, info, warn, "
                                                    "error, critical, off",
                                                    level));
                              }
                              cfg.log_level = level;
                            }},
                       });
           }},
      });
  if (!r.yaml().ok()) throw ConfigError(describe_all(r.yaml().problems()));
  for (const auto& id : cfg.channels.discord.admins) cfg.access.admins.push_back("discord:" + id);
  for (const auto& a : cfg.channels.email.admins) cfg.access.admins.push_back("email:" + a);
  return cfg;
}

Config load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the configuration file", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  Config cfg = parse_config(text.str(), file.string());
  cfg.source = file;
  return cfg;
}

}  // namespace parley::bot::config
