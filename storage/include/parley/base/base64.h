// Base64 (RFC 4648, standard alphabet, padded): binary files travel in JSON as base64 (a
// chart a capability draws, a BLOB in a user's export).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley {

std::string base64_encode(std::string_view bytes);

// The bytes `text` encodes; nullopt when it is not padded base64 of the standard alphabet
// (white space is not skipped: what parley decodes, parley encoded).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace parley
