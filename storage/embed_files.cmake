# Generates a C++ source that holds every file of a folder as a raw string, so that the binary
# carries them (migrations, default prompts). Run at build time with cmake -P and:
#   DIR       the folder        PATTERN   a glob, e.g. *.sql
#   OUTPUT    the .cpp to write HEADER    the header declaring the function (EmbeddedFile)
#   NAMESPACE C++ namespace     FUNCTION  the function returning the files, sorted by name
file(GLOB files RELATIVE "${DIR}" "${DIR}/${PATTERN}")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  file(READ "${DIR}/${f}" text)
  string(FIND "${text}" ")parley_embed\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${DIR}/${f} contains the raw-string delimiter )parley_embed\"")
  endif()
  get_filename_component(stem "${f}" NAME_WLE)
  string(APPEND body "      {\"${stem}\", R\"parley_embed(${text})parley_embed\"},\n")
endforeach()
set(content "// Generated from ${DIR}/${PATTERN} by storage/embed_files.cmake. Do not edit.
#include \"${HEADER}\"

namespace ${NAMESPACE} {
const std::vector<parley::EmbeddedFile>& ${FUNCTION}() {
  static const std::vector<parley::EmbeddedFile> kFiles = {
${body}  };
  return kFiles;
}
}  // namespace ${NAMESPACE}
")
file(WRITE "${OUTPUT}.tmp" "${content}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
