// A file compiled into the binary (migrations, default prompts): see storage/embed_files.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace parley {

struct EmbeddedFile {
  std::string_view stem;  // file name without its extension
  std::string_view text;
};

}  // namespace parley
