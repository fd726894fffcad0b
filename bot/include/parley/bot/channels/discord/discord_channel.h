// DiscordChannel: parley as a Discord bot. One gateway connection per shard (gateway.h) and
// REST within Discord's rate limits (rest.h), on the process's io_context and curl multi: no
// thread of its own. It answers a mention, a reply to one of its messages, a DM, a message in a
// thread it takes part in, and every message of an ambient channel (events.h).
//
// For each message answered: typing while the turn runs (every 8 s), then the reply split at
// 2,000 characters (reply_split.h), each part its own outbox entry (bracketed and sent on its
// own, so a crash between parts owes only the rest), the first a reply to the user's message,
// pinging nobody (`allowed_mentions: {parse: []}`), each with a nonce from its outbox id and
// `enforce_nonce`, so that a resent part returns the existing message rather than a second
// one. Redeliveries (a RESUME replay, a second connection) are recognised by the dispatcher's
// dedupe on the message id.
//
// Slash commands: the capabilities' /commands are registered as application commands; a use
// (INTERACTION_CREATE) is acknowledged at once with a deferred response ("thinking…"), runs
// through the same dispatcher as a message (access rules, rate limits, dedupe on the
// interaction id), and its reply edits the deferred response, further parts following up.
//
// The shards' sessions are persisted (channel_state, at most once a second and at stop), so a
// restart RESUMEs and Discord replays what was missed. A second process with the same token and
// shard set is refused at start (a lock file named by a hash of the token, never the token).
//
// Thread safety: the Channel methods from any thread; the channel's state lives on its strand.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/bot/channels/channel.h"
#include "parley/bot/channels/discord/options.h"
#include "parley/bot/clients/http/curl_multi.h"
#include "parley/storage/channel_state_repository.h"

namespace parley::bot::channels::discord {

// An application command parley registers with Discord: one of the capabilities' /commands.
struct SlashCommand {
  std::string name;         // lowercase letters, digits, '-' or '_'; 1–32 characters
  std::string description;  // one line (cut to Discord's 100 characters)
  std::string usage;        // "/remember TEXT": a command with arguments gets a "text" option
};

class DiscordChannel final : public Channel {
 public:
  struct Deps {
    net::Executor executor;
    http::CurlMulti& multi;
    storage::ChannelStateRepository& state;
    // An operator-facing problem (a refused token, a fatal gateway close): kind and one line.
    std::function<void(const std::string& kind, const std::string& line)> alert;
    // The /commands to register as Discord application commands once the first shard is
    // ready (guild-scoped for each listed guild, else global; sent again only when they
    // changed). Empty: none.
    std::function<std::vector<SlashCommand>()> commands;
  };
  // `token` is the bot token (never logged).
  DiscordChannel(Deps deps, DiscordOptions options, std::string token);
  ~DiscordChannel() override;
  DiscordChannel(const DiscordChannel&) = delete;
  DiscordChannel& operator=(const DiscordChannel&) = delete;

  [[nodiscard]] std::string_view name() const override { return "discord"; }
  [[nodiscard]] bool can_push() const override { return true; }
  Status start(Inbox& inbox) override;
  void stop() override;
  void send(OutboundMessage message, std::function<void(Status)> done) override;
  [[nodiscard]] size_t in_flight() const override;
  [[nodiscard]] std::string banner() const override;

  // Each shard's state, last event age, ACK latency, resumes, identifies and zombies; the
  // identifies today; REST requests, 429s by route, the invalid-request count and whether the
  // token is disabled.
  [[nodiscard]] std::vector<ChannelFigure> figures() const override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace parley::bot::channels::discord
