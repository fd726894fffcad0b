// `channels.http` in parley.yaml (read by config/). Plain data.
#pragma once

#include <string>

namespace parley::bot::channels {

struct HttpChannelOptions {
  std::string listen = "127.0.0.1:8787";        // HOST:PORT of the HTTP channel
  std::string token_env = "PARLEY_HTTP_TOKEN";  // the variable holding its bearer token
};

}  // namespace parley::bot::channels
