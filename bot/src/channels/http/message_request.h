// parse_message_request: what a POST /v1/messages asks for, read from the request target (its
// query: stream=1|0|true|false) and the JSON body ({"conversation", "user", "text", "id"?}), as
// the HTTP server checks it before any turn runs. Pure, so that the server and
// tests/fuzz/http_request_fuzz.cpp call the same code.
//
// Thread safety: safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "parley/base/result.h"
#include "parley/bot/channels/http/http_server.h"

namespace parley::bot::channels {

// The request (emit unset), or invalid_argument whose message is the 400's "error": an empty
// body, malformed JSON with its byte offset, not an object, a bad "stream", a missing,
// wrong-typed, blank or too long field (conversation, user and id at most
// HttpServer::kMaxKeyBytes; every field's problem, "; "-separated). Never throws.
Result<MessageRequest> parse_message_request(std::string_view target, const std::string& body);

}  // namespace parley::bot::channels
