// OutboxFile: a file that travels with a reply in the outbox (see outbox_repository.h); its own
// header so that code which only carries files (the email composer) needs nothing else of the
// store.
#pragma once

#include <string>

namespace parley::storage {

// A file sent with a reply: what the channel attaches (Discord, email), writes out (console) or
// serves under /files/<token>/<filename> (HTTP).
struct OutboxFile {
  std::string filename;    // a plain name: no directories, no control characters
  std::string media_type;  // e.g. "image/png"
  std::string content;     // the bytes
  std::string token;       // 32 hex digits, unguessable: new_file_token(), or made when stored
};

// 128 random bits as 32 hex digits (std::random_device: the kernel's getrandom), so that a
// file's URL cannot be guessed from another's.
std::string new_file_token();

}  // namespace parley::storage
